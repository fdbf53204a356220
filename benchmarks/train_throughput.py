"""Training throughput on MNIST-1D, in seed-epochs per second, three ways in one run.

  1. lossatlas ``sweep``: all seeds vmapped, every epoch and minibatch scanned,
     one compiled program (timed on a second call, compile time reported apart);
     on CPU every core is a JAX device and the seed axis is sharded over them;
  2. a jitted train step called from a Python loop, one seed at a time;
  3. a plain PyTorch per-seed loop (skipped when torch is absent).

Model and recipe as in the MNIST-1D paper: MLP 40-100-100-10 (ReLU), Adam
(lr 1e-2), batch 100, 4000 training examples (40 steps/epoch); every method also
evaluates the 1000 test examples once per epoch. Ratios are measured in the same
run on the same device.

Usage:
  python benchmarks/train_throughput.py                       # CPU defaults: 16 seeds
  python benchmarks/train_throughput.py --seeds 256 4096 --epochs 20 --out results.json   # GPU
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import data as data_lib
from lossatlas.devices import use_all_cpu_cores
from lossatlas import losses
from _common import benchmark_record, write_report
from lossatlas.train import TrainConfig, make_train, program, sweep

BATCH, LR, WIDTHS = 100, 1e-2, (100, 100)


def config(epochs: int) -> TrainConfig:
    return TrainConfig(model="mlp", model_cfg={"widths": WIDTHS}, optimizer="adam", learning_rate=LR,
                       batch_size=BATCH, epochs=epochs, eval_train=False, eval_batch_size=1000)


def time_sweep(ds, seeds: int, epochs: int, repeats: int) -> dict:
    cfg = config(epochs)
    t0 = time.perf_counter()
    jax.block_until_ready(sweep(cfg, ds, seeds=seeds, key=jax.random.PRNGKey(0)))
    first = time.perf_counter() - t0
    best = np.inf
    for r in range(repeats):
        t0 = time.perf_counter()
        _, hist = sweep(cfg, ds, seeds=seeds, key=jax.random.PRNGKey(r + 1))
        jax.block_until_ready(hist)
        best = min(best, time.perf_counter() - t0)
    acc = float(np.mean(jax.device_get(hist["test_acc"])[:, -1]))
    return {"method": "lossatlas_sweep", "seeds": seeds, "epochs": epochs, "seconds": best,
            "compile_and_first_run_s": first, "seed_epochs_per_s": seeds * epochs / best,
            "final_test_acc": acc}


def time_jitted_loop(ds, epochs: int) -> dict:
    """One seed: a jitted step called once per minibatch from Python, jitted eval per epoch."""
    cfg = config(epochs)
    prog = program(cfg, ds)
    model, tx = prog.model, optax.adam(LR)
    state0 = prog.init(jax.random.PRNGKey(0), prog.hparams())
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    xt, yt = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)

    @jax.jit
    def step(params, opt_state, xb, yb):
        loss, g = jax.value_and_grad(lambda p: losses.cross_entropy(model.apply({"params": p}, xb), yb))(params)
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def evaluate(params):
        return losses.accuracy(model.apply({"params": params}, xt), yt)

    def run(n_epochs, key):
        params, opt_state = state0.params, tx.init(state0.params)
        spe = ds.num_train // BATCH
        for e in range(n_epochs):
            perm = jax.random.permutation(jax.random.fold_in(key, e), ds.num_train)
            for b in range(spe):
                idx = perm[b * BATCH:(b + 1) * BATCH]
                params, opt_state, _ = step(params, opt_state, x[idx], y[idx])
            acc = evaluate(params)
        return float(acc)

    run(1, jax.random.PRNGKey(0))  # compile
    t0 = time.perf_counter()
    acc = run(epochs, jax.random.PRNGKey(1))
    sec = time.perf_counter() - t0
    return {"method": "jitted_step_python_loop", "seeds": 1, "epochs": epochs, "seconds": sec,
            "seed_epochs_per_s": epochs / sec, "final_test_acc": acc}


def time_torch(ds, epochs: int, seeds: int, device: str) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    dev = torch.device(device)
    x = torch.tensor(np.asarray(ds.x_train), device=dev)
    y = torch.tensor(np.asarray(ds.y_train), dtype=torch.long, device=dev)
    xt = torch.tensor(np.asarray(ds.x_test), device=dev)
    yt = torch.tensor(np.asarray(ds.y_test), dtype=torch.long, device=dev)

    def one_seed(seed, n_epochs):
        torch.manual_seed(seed)
        layers, fan_in = [], 40
        for w in WIDTHS:
            layers += [torch.nn.Linear(fan_in, w), torch.nn.ReLU()]
            fan_in = w
        model = torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, 10)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        spe = ds.num_train // BATCH
        for _ in range(n_epochs):
            perm = torch.randperm(ds.num_train, device=dev)
            for b in range(spe):
                idx = perm[b * BATCH:(b + 1) * BATCH]
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                acc = (model(xt).argmax(-1) == yt).float().mean().item()  # syncs once per epoch
        return acc

    one_seed(0, 1)  # warm up
    t0 = time.perf_counter()
    accs = [one_seed(s + 1, epochs) for s in range(seeds)]
    sec = time.perf_counter() - t0
    return {"method": "pytorch_per_seed_loop", "seeds": seeds, "epochs": epochs, "seconds": sec,
            "seed_epochs_per_s": seeds * epochs / sec, "final_test_acc": float(np.mean(accs)),
            "torch": torch.__version__, "device": str(dev),
            "note": "per-seed loop; throughput is independent of the seed count, so a few seeds are timed"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seed counts for the sweep")
    p.add_argument("--epochs", type=int, default=None, help="epochs per timed run")
    p.add_argument("--baseline-epochs", type=int, default=None, help="epochs for the two per-seed loops")
    p.add_argument("--torch-seeds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/train_throughput.json")
    args = p.parse_args(argv)
    use_all_cpu_cores()  # as the CLI does: one JAX device per CPU core, seeds sharded over them

    backend = jax.default_backend()
    gpu = backend in ("gpu", "cuda", "rocm")
    seeds = args.seeds or ([256, 4096] if gpu else [16])
    epochs = args.epochs or (20 if gpu else 10)
    base_epochs = args.baseline_epochs or (3 if gpu else 5)
    ds = data_lib.load("mnist1d")

    rows = [time_sweep(ds, s, epochs, args.repeats) for s in seeds]
    rows.append(time_jitted_loop(ds, base_epochs))
    torch_row = time_torch(ds, base_epochs, args.torch_seeds, "cuda" if gpu else "cpu")
    if torch_row:
        rows.append(torch_row)
    for r in rows:
        print(f"{r['method']:26s} seeds={r['seeds']:5d} epochs={r['epochs']:3d} {r['seconds']:8.3f}s "
              f"{r['seed_epochs_per_s']:12.1f} seed-epochs/s  acc={r['final_test_acc']:.3f}")

    by = {(r["method"], r["seeds"]): r["seed_epochs_per_s"] for r in rows}
    loop = by[("jitted_step_python_loop", 1)]
    ratios = {}
    for s in seeds:
        ratios[f"sweep{s}_vs_jitted_loop"] = by[("lossatlas_sweep", s)] / loop
        if torch_row:
            ratios[f"sweep{s}_vs_pytorch"] = by[("lossatlas_sweep", s)] / torch_row["seed_epochs_per_s"]
    targets = ({"sweep256_vs_pytorch >= 1000": ratios.get("sweep256_vs_pytorch", 0) >= 1000 if torch_row else None,
                "sweep4096 >= 40000 seed-epochs/s": by.get(("lossatlas_sweep", 4096), 0) >= 40000}
               if gpu else
               {"sweep16_vs_pytorch >= 5": (ratios.get("sweep16_vs_pytorch", 0) >= 5) if torch_row else None})
    for k, v in ratios.items():
        print(f"{k}: {v:.1f}x")
    print("targets:", targets)
    out = {**benchmark_record("train_throughput"), "rows": rows, "ratios": ratios, "targets": targets}
    write_report(args.out, out)
    return out


if __name__ == "__main__":
    main()

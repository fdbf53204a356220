"""Continual-learning stream throughput: lossatlas's compiled stream program vs a PyTorch per-step loop.

The issue-6 workload: a 5-task permuted stream (MNIST-1D or 8x8 digits, domain-IL), an MLP
(100-100, ReLU), plain SGD (lr 0.05, batch 32, ``--epochs`` per task), five seeds.

  1. lossatlas ``run_stream``: each strategy is one compiled program (tasks x epochs x
     minibatches in ``lax.scan``, the seeds vmapped; on CPU every core is a JAX device and the
     seed axis is sharded over them). The six strategies naive, EWC (empirical Fisher),
     SI, experience replay, A-GEM and LwF are timed: with compilation (first call) and
     without (second call, new key).
  2. a plain PyTorch loop, one seed and one optimiser step at a time (skipped when torch
     is absent), for naive fine-tuning and for EWC with the same empirical per-example
     Fisher (``torch.func.vmap(grad)``) and penalty.

The speed ratio compares the same work (naive + EWC, same seeds, epochs, evaluations of
the accuracy matrix after every task) measured in this run on this device.

Usage:
  python benchmarks/continual.py                          # CPU defaults
  python benchmarks/continual.py --dataset digits --seeds 5 --out results.json
  python benchmarks/continual.py --seeds 64 --epochs 5     # GPU
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from lossatlas import continual as cl
from lossatlas import data as data_lib
from lossatlas.devices import use_all_cpu_cores
from _common import benchmark_record, compile_events, write_report

TASKS, WIDTHS, LR, BATCH = 5, (100, 100), 0.05, 32
EWC_LAM = 10.0  # SGD with lr * lam * max(F) > 2 diverges; 10 is stable here


def strategies():
    return {"naive": (cl.naive(), 0.0), "ewc": (cl.ewc(fisher="empirical"), EWC_LAM), "si": (cl.si(), 1.0),
            "replay": (cl.replay(500), 0.0), "agem": (cl.agem(500), 0.0), "lwf": (cl.lwf(), 1.0)}


def stream_config(epochs: int) -> cl.StreamConfig:
    return cl.StreamConfig(model="mlp", model_cfg={"widths": WIDTHS}, optimizer="sgd", learning_rate=LR,
                           batch_size=BATCH, epochs=epochs)


def time_lossatlas(stream, seeds: int, epochs: int) -> list[dict]:
    rows = []
    cfg = stream_config(epochs)
    for name, (strat, lam) in strategies().items():
        t0 = time.perf_counter()
        with compile_events() as split:
            cl.run_stream(stream, strat, cfg, key=jax.random.PRNGKey(0), seeds=seeds, lams=[lam])
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = cl.run_stream(stream, strat, cfg, key=jax.random.PRNGKey(1), seeds=seeds, lams=[lam])
        sec = time.perf_counter() - t0
        rows.append({"method": "lossatlas_run_stream", "strategy": name, "seeds": seeds, "epochs": epochs,
                     "seconds": sec, "compile_and_first_run_s": first,
                     "final_avg_acc": float(cl.average_accuracy(out["R"][0]).mean()),
                     "R_mean": np.asarray(out["R"][0]).mean(0).tolist(), "R": np.asarray(out["R"][0]).tolist(),
                     "first_call_split": split})
    return rows


def time_stack(stream, seeds: int, epochs: int, names=None) -> dict:
    """The strategies ``names`` (default all six) as ONE ``run_stream`` call on ``stack_strategies``.

    Same strategies, lambdas, seeds and keys as :func:`time_lossatlas` (a flat member axis, each
    member with its own lambda): first call (compile or cache load + run) and second call (key 1).

    Returns:
      ``{"members", "seconds", "compile_and_first_run_s", "first_call_split", "rows"}`` with one
      row per member (``strategy``, ``final_avg_acc``, ``R_mean``, ``R`` per seed) of the second call.
    """
    chosen = {k: v for k, v in strategies().items() if names is None or k in names}
    stack = cl.stack_strategies({k: s for k, (s, _) in chosen.items()})
    lams = {k: [lam] for k, (_, lam) in chosen.items()}
    cfg = stream_config(epochs)
    t0 = time.perf_counter()
    with compile_events() as split:
        cl.run_stream(stream, stack, cfg, key=jax.random.PRNGKey(0), seeds=seeds, lams=lams)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = cl.run_stream(stream, stack, cfg, key=jax.random.PRNGKey(1), seeds=seeds, lams=lams)
    sec = time.perf_counter() - t0
    rows = []
    for p, name in enumerate(chosen):
        assert out["members"][int(out["member"][p])] == name
        r = np.asarray(out["R"][p])
        rows.append({"strategy": name, "final_avg_acc": float(cl.average_accuracy(r).mean()),
                     "R_mean": r.mean(0).tolist(), "R": r.tolist()})
    return {"method": "lossatlas_run_stream_stacked", "members": list(chosen), "seeds": seeds, "epochs": epochs,
            "seconds": sec, "compile_and_first_run_s": first, "first_call_split": split, "rows": rows}


def time_torch(stream, seeds: int, epochs: int, device: str, threads: int | None = None) -> list[dict] | None:
    try:
        import torch
        from torch.func import functional_call, grad, vmap
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    x = torch.tensor(np.asarray(stream.x_train), device=dev).flatten(2)
    y = torch.tensor(np.asarray(stream.y_train), dtype=torch.long, device=dev)
    xt = torch.tensor(np.asarray(stream.x_test), device=dev).flatten(2)
    yt = torch.tensor(np.asarray(stream.y_test), dtype=torch.long, device=dev)
    t_total, n = x.shape[0], x.shape[1]

    def make(seed):
        torch.manual_seed(seed)
        layers, fan_in = [], x.shape[-1]
        for w in WIDTHS:
            layers += [torch.nn.Linear(fan_in, w), torch.nn.ReLU()]
            fan_in = w
        return torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, stream.num_outputs)).to(dev)

    def fisher(model, xs, ys):
        params = {k: v.detach() for k, v in model.named_parameters()}

        def logp(p, xi, yi):
            out = functional_call(model, p, (xi[None],))
            return torch.log_softmax(out, -1)[0].gather(0, yi.reshape(1))[0]

        g = vmap(grad(logp), in_dims=(None, 0, 0))(params, xs, ys)
        return {k: (v ** 2).mean(0) for k, v in g.items()}

    def one_seed(seed, method):
        model = make(seed)
        opt = torch.optim.SGD(model.parameters(), lr=LR)
        anchors = []  # (fisher, params) per finished task
        r = np.zeros((t_total, t_total))
        for t in range(t_total):
            for _ in range(epochs):
                perm = torch.randperm(n, device=dev)
                for b in range(n // BATCH):
                    idx = perm[b * BATCH:(b + 1) * BATCH]
                    loss = torch.nn.functional.cross_entropy(model(x[t, idx]), y[t, idx])
                    for f, p0 in anchors:
                        for k, v in model.named_parameters():
                            loss = loss + EWC_LAM / 2 * (f[k] * (v - p0[k]) ** 2).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            if method == "ewc":
                anchors.append((fisher(model, x[t], y[t]),
                                {k: v.detach().clone() for k, v in model.named_parameters()}))
            with torch.no_grad():
                r[t] = [(model(xt[j]).argmax(-1) == yt[j]).float().mean().item() for j in range(t_total)]
        return r

    one_seed(0, "ewc")  # warm up (allocator, kernels, torch.func tracing)
    rows = []
    for method in ("naive", "ewc"):
        t0 = time.perf_counter()
        rs = [one_seed(s + 1, method) for s in range(seeds)]
        sec = time.perf_counter() - t0
        rows.append({"method": "pytorch_per_step_loop", "strategy": method, "seeds": seeds, "epochs": epochs,
                     "seconds": sec, "final_avg_acc": float(np.mean([r[-1].mean() for r in rs])),
                     "R_mean": np.mean(rs, 0).tolist(),
                     "torch": torch.__version__, "device": str(dev), "torch_threads": torch.get_num_threads()})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist1d", choices=["mnist1d", "digits"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1, help="epochs per task")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch.set_num_threads for the PyTorch loop (default: torch's own; 1 is fastest for this "
                        "tiny MLP on a busy CPU)")
    p.add_argument("--out", default="benchmarks/results/continual.json")
    args = p.parse_args(argv)
    use_all_cpu_cores()  # as the CLI does: one JAX device per CPU core, seeds sharded over them

    backend = jax.default_backend()
    gpu = backend in ("gpu", "cuda", "rocm")
    stream = cl.permuted(data_lib.load(args.dataset), TASKS, jax.random.PRNGKey(0))
    print(cl.describe(stream), f"| {args.seeds} seeds, {args.epochs} epoch(s)/task, MLP {WIDTHS}, SGD lr {LR}")
    t0 = time.perf_counter()
    rows = time_lossatlas(stream, args.seeds, args.epochs)
    wall = time.perf_counter() - t0
    for r in rows:
        print(f"{r['method']:22s} {r['strategy']:7s} seeds={r['seeds']} {r['seconds']:8.3f}s "
              f"(with compile {r['compile_and_first_run_s']:.2f}s) avg acc={r['final_avg_acc']:.3f}", flush=True)
    torch_rows = time_torch(stream, args.seeds, args.epochs, "cuda" if gpu else "cpu", args.torch_threads)
    rows += torch_rows or []
    for r in torch_rows or []:
        print(f"{r['method']:22s} {r['strategy']:7s} seeds={r['seeds']} {r['seconds']:8.3f}s "
              f"avg acc={r['final_avg_acc']:.3f}")
    la = {r["strategy"]: r for r in rows if r["method"] == "lossatlas_run_stream"}
    ratios = {}
    if torch_rows:
        pt = {r["strategy"]: r["seconds"] for r in torch_rows}
        ours = la["naive"]["seconds"] + la["ewc"]["seconds"]
        ours_c = la["naive"]["compile_and_first_run_s"] + la["ewc"]["compile_and_first_run_s"]
        ratios["naive+ewc_vs_pytorch"] = (pt["naive"] + pt["ewc"]) / ours
        ratios["naive+ewc_vs_pytorch_incl_compile"] = (pt["naive"] + pt["ewc"]) / ours_c
        ratios["naive_vs_pytorch"] = pt["naive"] / la["naive"]["seconds"]
        ratios["ewc_vs_pytorch"] = pt["ewc"] / la["ewc"]["seconds"]
    six = {"six_strategies_wall_s_incl_compile": wall,
           "six_strategies_run_s": sum(r["seconds"] for r in la.values())}
    target_ratio = 100 if gpu else 5
    targets = {f"naive+ewc_vs_pytorch >= {target_ratio}": (ratios["naive+ewc_vs_pytorch"] >= target_ratio)
               if torch_rows else None}
    if not gpu:
        targets["5 tasks x 6 strategies x 5 seeds < 120 s (incl. compile)"] = wall < 120
    for k, v in {**ratios, **six}.items():
        print(f"{k}: {v:.2f}")
    print("targets:", targets)
    out = {**benchmark_record("continual"), "stream": cl.describe(stream), "rows": rows, "ratios": ratios,
           "totals": six, "targets": targets}
    write_report(args.out, out)
    return out


if __name__ == "__main__":
    main()

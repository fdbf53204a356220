"""Avalanche's Naive and EWC on the continual benchmark's stream, run with Avalanche's own Python.

Run by ``benchmarks/run_all.py`` as a subprocess with the interpreter of a separate virtual
environment that has ``avalanche-lib`` (0.6.0) and torch (it needs neither jax nor lossatlas):

  AVALANCHE_PYTHON benchmarks/avalanche_continual.py STREAM.npz OUT.json --seeds 5 --epochs 1

``STREAM.npz`` holds ``x_train [T, N, ...]``, ``y_train [T, N]``, ``x_test [T, M, ...]``,
``y_test [T, M]`` (the permuted stream, written by run_all.py). The benchmark is built from the
in-memory tensors with Avalanche's ``tensors_benchmark`` (one experience per task, task label 0:
domain-incremental). Each strategy trains the same MLP (hidden widths ``--widths``, ReLU) with
SGD (``--lr``, minibatch ``--batch``, ``--epochs`` per experience); after every experience the
accuracy on every task's test set is measured with a plain no-grad forward (so the accuracy
matrix ``R[t, j]`` is the same quantity lossatlas reports; Avalanche's evaluation loop is not
timed). EWC uses Avalanche's ``EWC(mode="separate")``: its importance is the squared *minibatch*
gradient averaged over minibatches and its penalty is ``ewc_lambda * sum F (p - p0)^2``, so
``ewc_lambda = lam / 2`` matches lossatlas's ``lam / 2 * sum F (p - p0)^2`` penalty scale (the
Fisher estimates differ: lossatlas's is per-example).

torchvision's wheel on PyPI is built against CUDA torch; with a CPU-only torch its C extension
does not load and ``import torchvision`` fails while registering fake kernels for two detection
ops. Those two op schemas are declared here before the import (they are never called).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def _declare_torchvision_ops():
    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        return lib
    except RuntimeError:  # already defined (a working torchvision)
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stream")
    p.add_argument("out")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--widths", type=int, nargs="+", default=[100, 100])
    p.add_argument("--ewc-lambda", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    _lib = _declare_torchvision_ops()  # noqa: F841 (kept alive)
    import avalanche
    from avalanche.benchmarks.scenarios.deprecated.generators import tensors_benchmark
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.training.supervised import EWC, Naive

    d = np.load(args.stream)
    xtr = torch.from_numpy(d["x_train"].astype(np.float32)).flatten(2)
    ytr = torch.from_numpy(d["y_train"].astype(np.int64))
    xte = torch.from_numpy(d["x_test"].astype(np.float32)).flatten(2)
    yte = torch.from_numpy(d["y_test"].astype(np.int64))
    tasks, num_out = xtr.shape[0], int(max(ytr.max(), yte.max())) + 1
    t0 = time.perf_counter()
    bench = tensors_benchmark(train_tensors=[(xtr[t], ytr[t]) for t in range(tasks)],
                              test_tensors=[(xte[t], yte[t]) for t in range(tasks)], task_labels=[0] * tasks)
    build_s = time.perf_counter() - t0

    def make(seed):
        torch.manual_seed(seed)
        layers, fan_in = [], xtr.shape[-1]
        for w in args.widths:
            layers += [torch.nn.Linear(fan_in, w), torch.nn.ReLU()]
            fan_in = w
        return torch.nn.Sequential(*layers, torch.nn.Linear(fan_in, num_out))

    def run(seed, name):
        model = make(seed)
        opt = torch.optim.SGD(model.parameters(), lr=args.lr)
        common = dict(model=model, optimizer=opt, criterion=torch.nn.CrossEntropyLoss(),
                      train_mb_size=args.batch, train_epochs=args.epochs, eval_mb_size=1000, device="cpu",
                      evaluator=EvaluationPlugin(loggers=[]))
        strat = Naive(**common) if name == "naive" else EWC(ewc_lambda=args.ewc_lambda, mode="separate", **common)
        r = np.zeros((tasks, tasks))
        for t, exp in enumerate(bench.train_stream):
            strat.train(exp, num_workers=0)
            model.eval()
            with torch.no_grad():
                r[t] = [(model(xte[j]).argmax(-1) == yte[j]).float().mean().item() for j in range(tasks)]
        return r

    run(0, "ewc")  # warm up
    rows = []
    for name in ("naive", "ewc"):
        t0 = time.perf_counter()
        rs = [run(s + 1, name) for s in range(args.seeds)]
        sec = time.perf_counter() - t0
        rows.append({"method": "avalanche", "strategy": name, "seeds": args.seeds, "epochs": args.epochs,
                     "seconds": sec, "R_mean": np.mean(rs, 0).tolist(),
                     "final_avg_acc": float(np.mean([r[-1].mean() for r in rs]))})
        print(f"avalanche {name}: {sec:.2f}s, final avg acc {rows[-1]['final_avg_acc']:.3f}", flush=True)
    out = {"avalanche": avalanche.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "benchmark_build_s": build_s, "ewc_lambda": args.ewc_lambda, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

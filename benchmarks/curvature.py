"""Curvature and landscape speed: top Hessian eigenvalue vs PyHessian, and a 2-D plane vs point-by-point.

  1. Top Hessian eigenvalue of an MLP 40-1024-1024-1024-1024-10 (ReLU, 3.2M parameters) over
     the first ``--examples`` MNIST-1D training examples (default: all 4000 on GPU; 1000 on
     CPU, where 4000 takes minutes per method), by 50 Hessian-vector products:
       * lossatlas ``curvature.top_eigenvalues(method="lanczos", num_iters=50)`` (one compiled
         program: 50 forward-over-reverse HVPs + full reorthogonalisation);
       * with ``--with-power``, lossatlas ``method="power"`` with ``num_iters=50`` (for reference:
         it runs three power iterations of 50 steps each, to find the largest *algebraic*
         eigenvalue, so 150 HVPs);
       * PyHessian (Yao et al. 2020) ``hessian(...).eigenvalues(maxIter=50, tol=-1)``: 50 power
         iterations, each a double-backward HVP over the same 4000 examples in one batch, with
         the same weights (copied from the flax params). Optional peer, skipped when absent
         (``pip install pyhessian``).
     Both eigenvalue estimates are reported, as a cross-check of the two implementations.
  2. A 51x51 filter-normalised plane (Li et al. 2018) of the MNIST-1D MLP 40-100-100-10 over
     the 4000 training examples:
       * lossatlas ``landscape.plane``: all 2601 points in one compiled program;
       * the same points one by one from Python: a jitted ``loss(x, y)`` called per point,
         each result fetched to the host (what a per-point script does in JAX);
       * PyTorch per point, as Li et al.'s loss-landscape scripts do: set the weights to
         ``theta + x d1 + y d2``, one no-grad forward over the 4000 examples, ``.item()``
         (on CPU timed on the first 10 grid rows and extrapolated: it takes minutes).
     Every method's surface is compared with the plane's (max abs difference).

Every time is the best of ``--repeats`` calls after a warm-up call (compile time reported
apart); ratios are measured in the same run on the same device.

Usage:
  python benchmarks/curvature.py [--out benchmarks/results/curvature.json] [--skip-eig | --skip-plane]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import curvature, landscape, losses, models
from lossatlas import data as data_lib
from lossatlas.devices import use_all_cpu_cores
from _common import benchmark_record, write_report

EIG_WIDTHS = (1024, 1024, 1024, 1024)
PLANE_WIDTHS = (100, 100)
EIG_ITERS = 50
GRID = 51


def _best(fn, repeats: int):
    """(result, warm-up seconds incl. compile, best of ``repeats`` seconds)."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return out, first, best


def _mlp(widths, key):
    model = models.get_model("mlp", widths=widths, num_outputs=10)
    params = model.init(key, jnp.zeros((1, 40)))["params"]
    return model, params


def _layer_names(params):
    """Dense layers in order: dense_0, dense_1, ..., readout."""
    return sorted(params, key=lambda s: (s == "readout", int(s.split("_")[-1]) if s.startswith("dense_") else 0))


def _torch_mlp(params, widths):
    """The same MLP in PyTorch with the flax weights (Dense kernel [in, out] -> Linear weight [out, in])."""
    import torch
    layers, names = [], _layer_names(params)
    for i, name in enumerate(names):
        w, b = np.asarray(params[name]["kernel"]), np.asarray(params[name]["bias"])
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
        if i < len(names) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def bench_eigenvalue(ds, repeats: int, examples: int, methods: tuple) -> dict:
    model, params = _mlp(EIG_WIDTHS, jax.random.PRNGKey(0))
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    x_np, y_np = np.array(ds.x_train[:examples]), np.array(ds.y_train[:examples])
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)

    def loss(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    key = jax.random.PRNGKey(1)
    rows = []
    for method in methods:
        f = jax.jit(lambda p, k, xx, yy: curvature.top_eigenvalues(loss, p, 1, k, method=method,
                                                                   num_iters=EIG_ITERS, data=(xx, yy)))
        val, first, best = _best(lambda: f(params, key, x, y), repeats)
        rows.append({"method": f"lossatlas_{method}", "hvps": EIG_ITERS * (3 if method == "power" else 1),
                     "seconds": best, "compile_and_first_run_s": first, "lambda_max": float(val[0])})
        print(f"  lossatlas {method}: {best:.2f}s (first {first:.2f}s)", flush=True)
    try:
        import torch
        from pyhessian import hessian
    except ImportError:
        torch = None
    if torch is not None:
        torch.manual_seed(0)
        net = _torch_mlp(jax.device_get(params), EIG_WIDTHS).eval()
        xt, yt = torch.from_numpy(x_np), torch.from_numpy(y_np).long()

        def pyhessian_top(iters=EIG_ITERS):
            h = hessian(net, torch.nn.CrossEntropyLoss(), data=(xt, yt), cuda=False)
            eig, _ = h.eigenvalues(maxIter=iters, tol=-1.0, top_n=1)
            return eig[0]

        t0 = time.perf_counter()
        pyhessian_top(2)  # warm-up (no compilation in PyTorch: two iterations suffice)
        first = time.perf_counter() - t0
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            lam = pyhessian_top()
            best = min(best, time.perf_counter() - t0)
        print(f"  pyhessian: {best:.2f}s", flush=True)
        import pyhessian
        rows.append({"method": "pyhessian_power", "hvps": EIG_ITERS, "seconds": best,
                     "compile_and_first_run_s": first, "lambda_max": float(lam),
                     "torch": torch.__version__, "pyhessian": getattr(pyhessian, "__version__", "0.1"),
                     "torch_threads": torch.get_num_threads()})
    return {"model": f"mlp 40-{'-'.join(map(str, EIG_WIDTHS))}-10", "params": int(n_params),
            "examples": int(examples), "iterations": EIG_ITERS, "rows": rows}


def bench_plane(ds, repeats: int, point_batch: int | None, torch_rows: int) -> dict:
    model, params = _mlp(PLANE_WIDTHS, jax.random.PRNGKey(0))
    k1, k2 = jax.random.split(jax.random.PRNGKey(2))
    d1 = landscape.random_direction(k1, params, "filter")
    d2 = landscape.random_direction(k2, params, "filter")
    coords = jnp.linspace(-1.0, 1.0, GRID)
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)

    def loss(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    plane = jax.jit(lambda p, a, b, xx, yy: landscape.plane(loss, p, a, b, coords, coords, data=(xx, yy),
                                                              point_batch=point_batch))
    surface, first, best = _best(lambda: plane(params, d1, d2, x, y), repeats)
    surface = np.asarray(surface)
    rows = [{"method": "lossatlas_plane", "points": GRID * GRID, "seconds": best,
             "compile_and_first_run_s": first, "point_batch": point_batch}]

    @jax.jit
    def at(p, a, b, cx, cy, xx, yy):
        q = jax.tree_util.tree_map(lambda w, u, v: w + cx * u + cy * v, p, a, b)
        return loss(q, (xx, yy))

    host = np.asarray(coords)

    def one_by_one():
        return np.asarray([[float(at(params, d1, d2, cx, cy, x, y)) for cy in host] for cx in host])

    at(params, d1, d2, host[0], host[0], x, y).block_until_ready()  # compile
    t0 = time.perf_counter()
    loop = one_by_one()
    loop_s = time.perf_counter() - t0
    rows.append({"method": "jitted_loss_per_point_python_loop", "points": GRID * GRID, "seconds": loop_s,
                 "max_abs_diff_vs_plane": float(np.max(np.abs(loop - surface)))})
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        net = _torch_mlp(jax.device_get(params), PLANE_WIDTHS).eval()
        lin = [m for m in net if isinstance(m, torch.nn.Linear)]
        names = _layer_names(params)
        base = [(m.weight.detach().clone(), m.bias.detach().clone()) for m in lin]
        dirs = [(torch.from_numpy(np.asarray(d1[n]["kernel"]).T.copy()), torch.from_numpy(np.asarray(d2[n]["kernel"]).T.copy()),
                 torch.from_numpy(np.asarray(d1[n]["bias"]).copy()), torch.from_numpy(np.asarray(d2[n]["bias"]).copy()))
                for n in names]
        xt, yt = torch.from_numpy(np.array(ds.x_train)), torch.from_numpy(np.array(ds.y_train)).long()

        rows_timed = max(1, min(GRID, torch_rows))

        def torch_points():
            out = np.empty((rows_timed, GRID))
            with torch.no_grad():
                for i, cx in enumerate(host[:rows_timed]):
                    for j, cy in enumerate(host):
                        for m, (w, b), (u1, u2, v1, v2) in zip(lin, base, dirs):
                            m.weight.copy_(w + float(cx) * u1 + float(cy) * u2)
                            m.bias.copy_(b + float(cx) * v1 + float(cy) * v2)
                        out[i, j] = torch.nn.functional.cross_entropy(net(xt), yt).item()
            return out

        t0 = time.perf_counter()
        tor = torch_points()
        torch_s = time.perf_counter() - t0
        rows.append({"method": "pytorch_per_point", "points": rows_timed * GRID,
                     "seconds": torch_s * GRID / rows_timed, "measured_seconds": torch_s,
                     "note": f"timed on the first {rows_timed} of {GRID} grid rows; seconds extrapolated to the full grid",
                     "max_abs_diff_vs_plane": float(np.max(np.abs(tor - surface[:rows_timed]))),
                     "torch_threads": torch.get_num_threads()})
    return {"model": f"mlp 40-{'-'.join(map(str, PLANE_WIDTHS))}-10", "grid": f"{GRID}x{GRID}",
            "examples": int(ds.num_train), "normalization": "filter", "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--point-batch", type=int, default=None,
                   help="plane points per vmapped batch (default: 4 on CPU, where wide batched matmuls are "
                        "slow, all 2601 on GPU)")
    p.add_argument("--torch-rows", type=int, default=None,
                   help="grid rows the PyTorch per-point baseline evaluates (default: all on GPU, 10 on CPU); "
                        "its time is extrapolated to the full grid")
    p.add_argument("--examples", type=int, default=None,
                   help="examples for the eigenvalue benchmark (default: 4000 on GPU, 1000 on CPU)")
    p.add_argument("--with-power", action="store_true", help="also time lossatlas' power method (150 HVPs)")
    p.add_argument("--skip-eig", action="store_true")
    p.add_argument("--skip-plane", action="store_true")
    p.add_argument("--out", default="benchmarks/results/curvature.json")
    args = p.parse_args(argv)
    use_all_cpu_cores()
    backend = jax.default_backend()
    gpu = backend in ("gpu", "cuda", "rocm")
    if gpu:
        print("note: PyHessian runs with cuda=False here; pass a GPU torch build and edit cuda= to compare on GPU")
    ds = data_lib.load("mnist1d")
    out = {**benchmark_record("curvature"), "ratios": {}, "targets": {}}
    if not args.skip_eig:
        examples = args.examples or (4000 if gpu else 1000)
        methods = ("lanczos", "power") if args.with_power else ("lanczos",)
        eig = bench_eigenvalue(ds, args.repeats, min(examples, ds.num_train), methods)
        out["top_eigenvalue"] = eig
        by = {r["method"]: r for r in eig["rows"]}
        for r in eig["rows"]:
            print(f"eig  {r['method']:26s} {r['hvps']:4d} HVPs {r['seconds']:8.3f}s "
                  f"(first {r['compile_and_first_run_s']:.2f}s) lambda_max={r['lambda_max']:.5f}")
        if "pyhessian_power" in by:
            ref = by["pyhessian_power"]
            for m in [k for k in by if k.startswith("lossatlas_")]:
                out["ratios"][f"{m}_vs_pyhessian"] = ref["seconds"] / by[m]["seconds"]
            out["ratios"]["lambda_rel_diff_lanczos_vs_pyhessian"] = abs(
                by["lossatlas_lanczos"]["lambda_max"] - ref["lambda_max"]) / abs(ref["lambda_max"])
            need = 30 if gpu else 1.8
            out["targets"][f"lanczos_vs_pyhessian >= {need}"] = out["ratios"]["lossatlas_lanczos_vs_pyhessian"] >= need
    if not args.skip_plane:
        pb = args.point_batch or (None if gpu else 4)
        pl = bench_plane(ds, args.repeats, pb, args.torch_rows or (GRID if gpu else 10))
        out["plane"] = pl
        by = {r["method"]: r for r in pl["rows"]}
        for r in pl["rows"]:
            print(f"plane {r['method']:34s} {r['seconds']:8.3f}s for {GRID * GRID} points"
                  f"  max|diff| vs plane {r.get('max_abs_diff_vs_plane', 0.0):.2e}")
        ours = by["lossatlas_plane"]["seconds"]
        out["ratios"]["plane_vs_jitted_per_point"] = by["jitted_loss_per_point_python_loop"]["seconds"] / ours
        if "pytorch_per_point" in by:
            out["ratios"]["plane_vs_pytorch_per_point"] = by["pytorch_per_point"]["seconds"] / ours
        out["targets"]["plane_vs_jitted_per_point >= 20"] = out["ratios"]["plane_vs_jitted_per_point"] >= 20
    for k, v in out["ratios"].items():
        print(f"{k}: {v:.3g}")
    print("targets:", out["targets"])
    write_report(args.out, out)
    return out


if __name__ == "__main__":
    main()

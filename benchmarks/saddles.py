"""Critical-point search speed: one vmapped ``find_critical_points`` program vs a per-start Python loop.

The problem is the critical_points_index study's: a tanh MLP 4-4-10 (70 parameters) with MSE on
one-hot targets of ``--examples`` digits images projected on their top 4 principal components,
plus ``l2/2 ||theta||^2``, in float64; starts are random inits (std ``--init-std``). Both
methods run the same search (Newton-MR, ``--steps`` steps, ``--minres-iters`` MINRES iterations):

  * ``vmapped``: ``jax.jit(find_critical_points)`` on all ``--starts`` starts at once (one
    compiled program, starts a vmap axis);
  * ``loop``: the same function jitted for ONE start (a starts axis of 1), called from Python
    once per start, every result fetched to the host.

Reported: starts per second excluding compilation (best of ``--repeats`` calls after a warm-up)
and including it (the first call of a freshly jitted function, compile + run), and the ratio
vmapped / loop of both, measured in the same run. The two methods' results are compared
(max |grad-norm difference| over starts: vmapping may reorder floating-point sums).

Usage:
  python benchmarks/saddles.py [--starts 64] [--steps 50] [--out benchmarks/results/saddles.json]
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import data as data_lib
from lossatlas import losses, models, saddles, settings
from _common import benchmark_record, write_report

WIDTH, INPUT_DIM = 4, 4


def problem(examples: int, l2: float):
    ds = data_lib.load("digits")
    x = ds.x_train[:examples].astype(np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[:INPUT_DIM].T
    z = z / z.std(0)
    y = np.eye(10)[ds.y_train[:examples]]
    model = models.get_model("mlp", widths=(WIDTH,), activation="tanh", num_outputs=10)

    def loss(params, batch):
        sq = sum(jnp.sum(jnp.square(a)) for a in jax.tree_util.tree_leaves(params))
        return losses.mse(model.apply({"params": params}, batch[0]), batch[1]) + 0.5 * l2 * sq

    return model, loss, (jnp.asarray(z), jnp.asarray(y))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--starts", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--minres-iters", type=int, default=40)
    p.add_argument("--examples", type=int, default=300)
    p.add_argument("--l2", type=float, default=1e-3)
    p.add_argument("--init-std", type=float, default=0.5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/saddles.json")
    args = p.parse_args(argv)
    with settings.enable_x64():
        model, loss, batch = problem(args.examples, args.l2)
        shapes = model.init(jax.random.PRNGKey(0), batch[0][:1])["params"]
        leaves, tree = jax.tree_util.tree_flatten(shapes)
        ks = jax.random.split(jax.random.PRNGKey(1), len(leaves))
        params0 = jax.tree_util.tree_unflatten(tree, [args.init_std * jax.random.normal(k, (args.starts,) + a.shape,
                                                                                          jnp.float64)
                                                      for k, a in zip(ks, leaves)])
        key = jax.random.PRNGKey(2)

        def search(p0, k):
            return saddles.find_critical_points(loss, p0, k, "newton_mr", args.steps, grad_tol=1e-8,
                                                data=batch, minres_iters=args.minres_iters).grad_norm

        def vmapped(fn):
            return np.asarray(fn(params0, key))

        def loop(fn):
            return np.concatenate([np.asarray(fn(jax.tree_util.tree_map(lambda a: a[i:i + 1], params0), key))
                                   for i in range(args.starts)])

        rows, out_vals = {}, {}
        for name, call in (("vmapped", vmapped), ("loop", loop)):
            fn = jax.jit(search)
            t0 = time.perf_counter()
            out_vals[name] = call(fn)
            first = time.perf_counter() - t0
            best = np.inf
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                call(fn)
                best = min(best, time.perf_counter() - t0)
            rows[name] = {"seconds": best, "starts_per_s": args.starts / best, "first_call_s": first,
                          "starts_per_s_incl_compile": args.starts / first}
            print(f"{name:8s} {best:8.3f}s ({args.starts / best:8.1f} starts/s); first call incl. compile "
                  f"{first:8.3f}s ({args.starts / first:8.1f} starts/s)", flush=True)
    out = {**benchmark_record("saddles"),
           "problem": {"model": f"mlp {INPUT_DIM}-{WIDTH}-10 tanh", "params": int(sum(a.size for a in leaves)),
                       "examples": args.examples, "dtype": "float64", "method": "newton_mr", "steps": args.steps,
                       "minres_iters": args.minres_iters, "starts": args.starts},
           "rows": rows,
           "ratios": {"vmapped_vs_loop_excl_compile": rows["vmapped"]["starts_per_s"] / rows["loop"]["starts_per_s"],
                      "vmapped_vs_loop_incl_compile": rows["vmapped"]["starts_per_s_incl_compile"]
                      / rows["loop"]["starts_per_s_incl_compile"]},
           "max_abs_grad_norm_diff": float(np.max(np.abs(out_vals["vmapped"] - out_vals["loop"])))}
    for k, v in out["ratios"].items():
        print(f"{k}: {v:.3g}")
    write_report(args.out, out)
    return out


if __name__ == "__main__":
    main()

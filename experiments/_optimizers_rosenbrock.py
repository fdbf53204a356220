"""optimizers, study 2: the Rosenbrock function, each optimiser at its best learning rate from a grid."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import plotting
from lossatlas.optim import make_optimizer
from lossatlas.saddles import rosenbrock
from ._optimizers_quadratic import LABELS, METHODS, finish, steps_to

#: (1 - x)^2 + 100 (y - x^2)^2, minimum at (1, 1)
ROSENBROCK = rosenbrock(a=1.0, b=100.0)


def run(cfg):
    start = jnp.asarray(cfg.rosen_start, jnp.float32)
    lrs = jnp.asarray(cfg.rosen_learning_rates, jnp.float32)
    out = {"lr_grid": np.asarray(cfg.rosen_learning_rates), "best_lr": {}, "traj": {}, "dist": {}, "steps_to_1e-3": {},
           "final_dist": {}, "grid_steps": {}, "grid_final": {}}
    for m in METHODS:
        def one(lr, m=m):
            tx = make_optimizer(m, lr, momentum=cfg.rosen_momentum)

            def step(carry, _):
                p, st = carry
                u, st2 = tx.update(jax.grad(ROSENBROCK.loss)(p), st, p)
                p2 = optax.apply_updates(p, u)
                ok = jnp.all(jnp.isfinite(p2)) & jnp.all(jnp.abs(p2) < 1e6)
                bad = jnp.full_like(p, jnp.nan)
                p2 = jnp.where(ok & jnp.all(jnp.isfinite(p)), p2, bad)
                return (p2, st2), p2

            _, ps = jax.lax.scan(step, (start, tx.init(start)), None, length=cfg.rosen_steps)
            return jnp.concatenate([start[None], ps])

        traj = np.asarray(jax.jit(jax.vmap(one))(lrs))  # [G, T+1, 2]
        dist = np.linalg.norm(traj - np.ones(2), axis=-1)  # NaN once diverged
        steps = np.asarray([steps_to(np.log10(np.where(np.isfinite(d), d, np.inf)), 1e-3) for d in dist])
        final = np.where(np.isfinite(dist[:, -1]), dist[:, -1], np.inf)
        best = int(np.nanargmin(steps)) if np.isfinite(steps).any() else int(np.argmin(final))
        out["best_lr"][m] = float(cfg.rosen_learning_rates[best])
        out["traj"][m] = traj[best]
        out["dist"][m] = dist[best]
        out["steps_to_1e-3"][m] = steps[best]
        out["final_dist"][m] = float(final[best])
        out["grid_steps"][m], out["grid_final"][m] = steps, final
    out["start"] = np.asarray(cfg.rosen_start)
    return out


def figure(res: dict, cfg):
    """Trajectories on the contours and distance to (1, 1) by step (``res["rosen"]``)."""
    r = res["rosen"]
    fig, axes = plotting.figure(ncols=2, width=4.2, height=3.4)
    ax = axes[0, 0]
    xs, ys = np.linspace(-2.0, 2.0, 300), np.linspace(-1.0, 3.0, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = np.asarray(ROSENBROCK.loss(np.stack([X, Y], -1)))
    ax.contour(X, Y, np.log10(Z + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    for i, m in enumerate(METHODS):
        tr = r["traj"][m]
        tr = tr[np.all(np.isfinite(tr), axis=1)]
        ax.plot(tr[:, 0], tr[:, 1], color=f"C{i}", lw=1.0, label=f"{LABELS[m]} (lr {r['best_lr'][m]:g})")
    ax.plot(*r["start"], "ko", ms=5, label="(a) start")
    ax.plot(1, 1, "r*", ms=10, label="(a) minimum (1, 1)")
    ax.set(xlabel="x", ylabel="y", xlim=(-2, 2), ylim=(-1, 3),
           title=f"Rosenbrock, momentum {cfg.rosen_momentum:g}")
    ax = axes[0, 1]
    for i, m in enumerate(METHODS):
        d = r["dist"][m]
        ax.plot(np.arange(1, d.shape[0] + 1), d, color=f"C{i}")
    ax.axhline(1e-3, color="gray", ls="--", lw=0.8, label="(b) target distance 1e-3")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="distance to minimum (1, 1)", title="convergence")
    return finish(fig, axes, ncol=3)

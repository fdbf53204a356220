"""optimizers, study 1: an ill-conditioned quadratic, every optimiser x every kappa.

Also the method list, labels and the convergence measures (``fit_rate``, ``steps_to``) the
other sub-studies of ``optimizers`` use.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import plotting
from lossatlas.optim import make_optimizer

METHODS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
LABELS = {"sgd": "GD/SGD", "momentum": "heavy ball", "nesterov": "Nesterov", "rmsprop": "RMSProp", "adam": "Adam"}
FREEZE = -20.0  # log10 relative error at which a quadratic run is frozen (avoids denormals)
TARGET = 1e-6  # relative error for the steps-vs-kappa law


def quad_hparams(kappa: float) -> dict:
    """Theory-optimal (lr, momentum) per method for eigenvalues in [1/kappa, 1], and the rates."""
    L, mu = 1.0, 1.0 / kappa
    sk = np.sqrt(kappa)
    return {
        "sgd": (2.0 / (L + mu), 0.0),
        "momentum": (4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2, ((sk - 1) / (sk + 1)) ** 2),
        "nesterov": (1.0 / L, (sk - 1) / (sk + 1)),
        "rate_gd": (kappa - 1) / (kappa + 1),
        "rate_hb": (sk - 1) / (sk + 1),
    }


def _quadratic(method, lrs, moms, eigs, x0, steps):
    """[K, steps+1] log10 ||x_t|| / ||x_0|| for each (lr, momentum, eigenvalues) row."""
    def one(lr, mom, eig):
        tx = make_optimizer(method, lr, momentum=mom)
        norm0 = jnp.linalg.norm(x0)

        def step(carry, _):
            x, st = carry
            u, st2 = tx.update(eig * x, st, x)
            err = jnp.log10(jnp.maximum(jnp.linalg.norm(x) / norm0, 1e-30))
            live = err > FREEZE
            x2 = jnp.where(live, optax.apply_updates(x, u), x)
            st2 = jax.tree_util.tree_map(lambda a, b: jnp.where(live, a, b), st2, st)
            return (x2, st2), err

        (x, _), errs = jax.lax.scan(step, (x0, tx.init(x0)), None, length=steps)
        last = jnp.log10(jnp.maximum(jnp.linalg.norm(x) / norm0, 1e-30))
        return jnp.concatenate([errs, last[None]])

    return np.asarray(jax.jit(jax.vmap(one))(lrs, moms, eigs))


def fit_rate(log_err: np.ndarray, hi: float = -3.0, lo: float = -15.0) -> float:
    """Per-step linear rate 10^slope of log10 error over the window where it falls from 10^hi to 10^lo."""
    t = np.arange(log_err.shape[0])
    below_hi = np.nonzero(log_err <= hi)[0]
    if below_hi.size == 0:
        return float("nan")
    t1 = below_hi[0]
    below_lo = np.nonzero(log_err <= lo)[0]
    t2 = below_lo[0] if below_lo.size else log_err.shape[0] - 1
    if t2 - t1 < 5:
        return float("nan")
    slope = np.polyfit(t[t1:t2 + 1], log_err[t1:t2 + 1], 1)[0]
    return float(10.0 ** slope)


def steps_to(log_err: np.ndarray, target: float = TARGET) -> float:
    hit = np.nonzero(log_err <= np.log10(target))[0]
    return float(hit[0]) if hit.size else float("nan")


def run(cfg):
    kappas = np.asarray(cfg.kappas, float)
    eigs = np.stack([np.linspace(1.0 / k, 1.0, cfg.dim) for k in kappas]).astype(np.float32)
    x0 = jnp.ones((cfg.dim,), jnp.float32) / np.sqrt(cfg.dim)
    hp = [quad_hparams(k) for k in kappas]
    curves, lrs_used, moms_used = {}, {}, {}
    for m in METHODS:
        if m in ("sgd", "momentum", "nesterov"):
            lrs = np.asarray([h[m][0] for h in hp], np.float32)
            moms = np.asarray([h[m][1] for h in hp], np.float32)
        else:
            lrs = np.full(len(kappas), cfg.adaptive_learning_rate, np.float32)
            moms = np.zeros(len(kappas), np.float32)
        curves[m] = _quadratic(m, jnp.asarray(lrs), jnp.asarray(moms), jnp.asarray(eigs), x0, cfg.quad_steps)
        lrs_used[m], moms_used[m] = lrs, moms
    rate = {m: np.asarray([fit_rate(c) for c in curves[m]]) for m in METHODS}
    steps = {m: np.asarray([steps_to(c) for c in curves[m]]) for m in METHODS}
    final = {m: curves[m][:, -1] for m in METHODS}
    stride = max(1, cfg.quad_steps // 4000)
    return {"kappas": kappas,
            "curves": {m: c[:, ::stride] for m, c in curves.items()},
            "curve_steps": np.arange(cfg.quad_steps + 1)[::stride],
            "rate": rate, "steps_to_1e-6": steps, "final_log10_err": final,
            "lr": lrs_used, "momentum": moms_used,
            "rate_theory": {"sgd": np.asarray([h["rate_gd"] for h in hp]),
                            "momentum": np.asarray([h["rate_hb"] for h in hp])}}


def finish(fig, axes, ncol: int = 4):
    """The figures' common end: one legend below all panels (every labelled artist, each label
    once, so a method's colour is named once for the whole figure), 10 pt titles, panel letters."""
    handles, labels = [], []
    for ax in np.asarray(axes).ravel():
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    plotting.panel_letters(axes, title_size=10)
    fig.tight_layout()
    plotting.figure_legend(fig, handles, labels, where="below", ncol=ncol)
    return fig


def figure(res: dict, cfg):
    """Error curves at kappa ~ 1e3, steps vs kappa, measured vs theoretical rates (``res["quad"]``)."""
    q = res["quad"]
    kap = q["kappas"]
    fig, axes = plotting.figure(ncols=3, width=3.6, height=3.0)
    ax = axes[0, 0]
    ki = int(np.argmin(np.abs(kap - 1000))) if np.any(kap >= 1000) else len(kap) - 1
    t = q["curve_steps"][1:]
    for i, m in enumerate(METHODS):
        ax.plot(t, q["curves"][m][ki][1:], color=f"C{i}", label=LABELS[m])
    th = q["rate_theory"]
    ax.plot(t, t * np.log10(th["sgd"][ki]), "k--", lw=0.8, label="(a) GD theory")
    ax.plot(t, t * np.log10(th["momentum"][ki]), "k:", lw=1.0, label="(a) heavy-ball theory")
    ax.set(xlabel="step t", ylabel="log10 ||x_t|| / ||x_0||", ylim=(-16, 1), xscale="log",
           title=f"quadratic, kappa = {kap[ki]:g}")
    ax = axes[0, 1]
    for i, m in enumerate(METHODS):
        st = q["steps_to_1e-6"][m]
        if np.isfinite(st).any():
            ax.plot(kap, st, "o-", color=f"C{i}", ms=4, label=LABELS[m])
    base_gd, base_hb = q["steps_to_1e-6"]["sgd"][0], q["steps_to_1e-6"]["momentum"][0]
    ax.plot(kap, base_gd * kap / kap[0], color="k", ls=(0, (6, 2)), lw=0.8, label="(b) ~ kappa")
    ax.plot(kap, base_hb * np.sqrt(kap / kap[0]), color="k", ls=(0, (1, 2)), lw=1.0, label="(b) ~ sqrt(kappa)")
    plotting.log_xticks(ax, kap)
    ax.set(yscale="log", xlabel="condition number kappa", ylabel="steps to 1e-6 relative error",
           title="steps vs conditioning")
    ax = axes[0, 2]
    for i, m in enumerate(("sgd", "momentum")):
        ax.plot(kap, -np.log10(q["rate"][m]), "o", color=f"C{i}", ms=6, label="(c) measured rate" if i == 0 else None)
        ax.plot(kap, -np.log10(th[m]), "-", color=f"C{i}", lw=1, label="(c) theoretical rate" if i == 0 else None)
    for i, m in enumerate(METHODS):
        if m == "nesterov":
            ok = np.isfinite(q["rate"][m])
            ax.plot(kap[ok], -np.log10(q["rate"][m][ok]), "s", color=f"C{i}", ms=4, mfc="none",
                    label="(c) Nesterov measured (hollow)")
    plotting.log_xticks(ax, kap)
    ax.set(yscale="log", xlabel="condition number kappa", ylabel="-log10(rate) per step (higher = faster)",
           title="linear convergence rate")
    return finish(fig, axes)

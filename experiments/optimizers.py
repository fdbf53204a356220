"""Optimisers compared: SGD, heavy-ball momentum, Nesterov, RMSProp and Adam.

  1. An ill-conditioned quadratic f(x) = 0.5 x^T A x, A diagonal with eigenvalues evenly
     spaced in [mu, L] = [1/kappa, 1], kappa = 10 ... 1e4, every optimiser x every kappa as
     one ``vmap`` (over kappa) of a ``lax.scan`` (over steps). Gradient descent with its
     optimal step 2/(L+mu) converges like ((kappa-1)/(kappa+1))^t; heavy ball (Polyak 1964)
     with lr = 4/(sqrt L + sqrt mu)^2 and momentum ((sqrt kappa-1)/(sqrt kappa+1))^2 like
     ((sqrt kappa-1)/(sqrt kappa+1))^t. Nesterov uses lr = 1/L, momentum
     (sqrt kappa-1)/(sqrt kappa+1); RMSProp and Adam a fixed lr (on a *diagonal* A their
     per-coordinate scaling removes most of the conditioning, but with a constant lr they
     stall at an lr-sized error floor instead of converging linearly).
     The empirical linear rate is the slope of log10 ||x_t||/||x_0|| over the window where
     the error falls from 1e-3 to 1e-15 (or to the last step).
  2. The Rosenbrock function from the classic start (-1.2, 1): each optimiser's learning rate
     is picked from a log grid (fewest steps to within 1e-3 of (1, 1), else the smallest
     final distance; the whole grid is one vmapped program), trajectories drawn on contours.
  3. The MNIST-1D MLP (40-100-100-10), each optimiser trained over vmapped seeds
     (``lossatlas.train.sweep``) at a standard learning rate.
  4. Adam's effective step: a synthetic linear loss whose per-parameter gradients are
     g_it = s_i (1 + sigma_i eps_it) with known scales s_i (1e-3 ... 10) and noise sigma_i
     (consistency). Adam's |update|/lr is ~1 whatever the scale (for consistent gradients),
     so its step per unit gradient, |update|/|g|, falls like 1/sqrt(v) ~ 1/s: parameters with
     consistently large gradients get smaller steps per unit of gradient; noisy (inconsistent)
     gradients get smaller updates too.

Command:    lossatlas run optimizers [--quick]
Checks:     GD's and heavy ball's measured rates match theory; steps to 1e-6 grow like
            kappa^1 for GD and kappa^0.5 for heavy ball (log-log slopes); heavy ball needs
            far fewer steps at kappa >= 100; every optimiser gets near (1, 1) on Rosenbrock;
            every optimiser learns MNIST-1D above chance; Adam's update is scale invariant
            and its per-unit-gradient step falls like 1/gradient scale.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import data as data_lib
from lossatlas import plotting
from lossatlas.results import stat
from lossatlas.optim import make_optimizer
from lossatlas.train import TrainConfig, sweep

TABLE_TITLE = "Optimisers: quadratic rates vs theory, Rosenbrock, MNIST-1D, Adam's effective step"
METHODS = ("sgd", "momentum", "nesterov", "rmsprop", "adam")
LABELS = {"sgd": "GD/SGD", "momentum": "heavy ball", "nesterov": "Nesterov", "rmsprop": "RMSProp", "adam": "Adam"}
FREEZE = -20.0  # log10 relative error at which a quadratic run is frozen (avoids denormals)
TARGET = 1e-6  # relative error for the steps-vs-kappa law


@dataclasses.dataclass(frozen=True)
class Config:
    kappas: tuple = (10.0, 100.0, 1000.0, 10000.0)
    dim: int = 20
    quad_steps: int = 80000
    adaptive_lr: float = 1e-2  # RMSProp/Adam on the quadratic (||x_0|| = 1)
    rosen_start: tuple = (-1.2, 1.0)
    rosen_steps: int = 20000
    rosen_lrs: tuple = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    rosen_momentum: float = 0.9
    mnist_lrs: tuple = (("sgd", 0.1), ("momentum", 0.01), ("nesterov", 0.01), ("rmsprop", 1e-3), ("adam", 1e-3))
    mnist_momentum: float = 0.9
    epochs: int = 40
    batch_size: int = 100
    adam_scales: tuple = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    adam_sigmas: tuple = (0.1, 1.0, 4.0)
    adam_lr: float = 1e-3
    adam_steps: int = 2000
    adam_burn_in: int = 200
    seeds: int = 5
    seed: int = 0

    def __post_init__(self):
        if len(self.kappas) < 3 or min(self.kappas) <= 1:
            raise ValueError("Config.kappas needs >= 3 condition numbers > 1")
        if self.adam_burn_in >= self.adam_steps:
            raise ValueError("Config.adam_burn_in must be < adam_steps")


QUICK = {"epochs": 3, "seeds": 2, "rosen_steps": 10000, "adam_steps": 1000}


# ----------------------------------------------------------------------------- quadratic
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


def _run_quadratic(cfg):
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
            lrs = np.full(len(kappas), cfg.adaptive_lr, np.float32)
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


# ----------------------------------------------------------------------------- Rosenbrock
def rosenbrock(p):
    x, y = p[0], p[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x ** 2) ** 2


def _run_rosenbrock(cfg):
    start = jnp.asarray(cfg.rosen_start, jnp.float32)
    lrs = jnp.asarray(cfg.rosen_lrs, jnp.float32)
    out = {"lr_grid": np.asarray(cfg.rosen_lrs), "best_lr": {}, "traj": {}, "dist": {}, "steps_to_1e-3": {},
           "final_dist": {}, "grid_steps": {}, "grid_final": {}}
    for m in METHODS:
        def one(lr, m=m):
            tx = make_optimizer(m, lr, momentum=cfg.rosen_momentum)

            def step(carry, _):
                p, st = carry
                u, st2 = tx.update(jax.grad(rosenbrock)(p), st, p)
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
        out["best_lr"][m] = float(cfg.rosen_lrs[best])
        out["traj"][m] = traj[best]
        out["dist"][m] = dist[best]
        out["steps_to_1e-3"][m] = steps[best]
        out["final_dist"][m] = float(final[best])
        out["grid_steps"][m], out["grid_final"][m] = steps, final
    out["start"] = np.asarray(cfg.rosen_start)
    return out


# ----------------------------------------------------------------------------- MNIST-1D
def _run_mnist(cfg, key):
    """Each optimiser over vmapped seeds; SGD is heavy ball with momentum 0 (the same update), run in
    the heavy-ball program as a grid point (lr x momentum grid, the off-diagonal points unused), which
    saves one compilation."""
    ds = data_lib.load("mnist1d")
    lrs = dict(cfg.mnist_lrs)
    out = {"test_acc": {}, "train_loss": {}, "test_loss": {}, "lr": {}}

    def config(m):
        return TrainConfig(model="mlp", model_cfg={"widths": (100, 100)}, optimizer=m, learning_rate=lrs[m],
                           momentum=cfg.mnist_momentum, batch_size=cfg.batch_size, epochs=cfg.epochs)

    hists = {}
    _, h = sweep(config("momentum"), ds, seeds=cfg.seeds, key=key,
                 grid={"learning_rate": [lrs["sgd"], lrs["momentum"]], "momentum": [0.0, cfg.mnist_momentum]})
    h = jax.device_get(h)
    hists["sgd"] = {k: np.asarray(v)[0, 0] for k, v in h.items()}
    hists["momentum"] = {k: np.asarray(v)[1, 1] for k, v in h.items()}
    for m in ("nesterov", "rmsprop", "adam"):
        _, h = sweep(config(m), ds, seeds=cfg.seeds, key=key)
        hists[m] = {k: np.asarray(v) for k, v in jax.device_get(h).items()}
    for m in METHODS:
        for k in ("test_acc", "train_loss", "test_loss"):
            out[k][m] = hists[m][k]  # [seeds, epochs]
        out["lr"][m] = lrs[m]
    return out


# ----------------------------------------------------------------------------- Adam's effective step
def _run_adam(cfg, key):
    scales = np.asarray(cfg.adam_scales, np.float32)
    sigmas = np.asarray(cfg.adam_sigmas, np.float32)
    s = jnp.asarray(np.repeat(scales, len(sigmas)))  # [P]: every (scale, sigma) pair
    sig = jnp.asarray(np.tile(sigmas, len(scales)))
    tx = optax.adam(cfg.adam_lr)
    theta = jnp.zeros_like(s)

    def step(carry, k):
        th, st = carry
        g = s * (1.0 + sig * jax.random.normal(k, s.shape))  # gradient of sum_i g_i theta_i
        u, st = tx.update(g, st, th)
        return (optax.apply_updates(th, u), st), (g, u)

    keys = jax.random.split(key, cfg.adam_steps)
    (_, st), (g, u) = jax.jit(lambda th, ks: jax.lax.scan(step, (th, tx.init(th)), ks))(theta, keys)
    g, u = np.asarray(g)[cfg.adam_burn_in:], np.asarray(u)[cfg.adam_burn_in:]
    g_rms = np.sqrt((g ** 2).mean(0))  # the gradient history Adam's sqrt(v) tracks
    step_rel = np.abs(u).mean(0) / cfg.adam_lr  # |update| / lr
    per_unit = np.abs(u).mean(0) / np.abs(g).mean(0) / cfg.adam_lr  # |update| / |g| / lr
    sqrt_v = np.asarray(jnp.sqrt(st[0].nu))
    shape = (len(scales), len(sigmas))
    return {"scales": scales, "sigmas": sigmas, "g_rms": g_rms.reshape(shape), "step_rel": step_rel.reshape(shape),
            "per_unit": per_unit.reshape(shape), "sqrt_v": sqrt_v.reshape(shape),
            "g_mean_abs": np.abs(g).mean(0).reshape(shape)}


def run(cfg: Config, key) -> dict:
    k_mnist, k_adam = jax.random.split(key)
    return {"quad": _run_quadratic(cfg), "rosen": _run_rosenbrock(cfg),
            "mnist": _run_mnist(cfg, k_mnist), "adam": _run_adam(cfg, k_adam)}


# ----------------------------------------------------------------------------- summaries
def _loglog_slope(kappas, steps):
    ok = np.isfinite(steps)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log10(kappas[ok]), np.log10(steps[ok]), 1)[0])


def _fmt_steps(v):
    return f"{int(v)}" if np.isfinite(v) else "-"


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    q = res["quad"]
    ks = "/".join(f"{k:g}" for k in q["kappas"])
    for m in METHODS:
        val = f"steps {' / '.join(_fmt_steps(v) for v in q['steps_to_1e-6'][m])}"
        if m in q["rate_theory"]:
            val += "; rate " + " / ".join(f"{r:.5f} (th {t:.5f})" for r, t in zip(q["rate"][m], q["rate_theory"][m]))
        else:
            val += "; rate " + " / ".join(f"{r:.5f}" if np.isfinite(r) else "-" for r in q["rate"][m])
            val += "; final rel. err " + " / ".join("< 1e-20" if v <= FREEZE else f"{10 ** v:.1e}"
                                                    for v in q["final_log10_err"][m])
        rows.append({"setting": f"quadratic, {LABELS[m]}", "measure": f"kappa {ks}: steps to 1e-6, rate", "value": val})
    for m in ("sgd", "momentum"):
        rows.append({"setting": f"quadratic, {LABELS[m]}", "measure": "log-log slope of steps vs kappa",
                     "value": f"{_loglog_slope(q['kappas'], q['steps_to_1e-6'][m]):.3f} (theory {1.0 if m == 'sgd' else 0.5})"})
    r = res["rosen"]
    for m in METHODS:
        rows.append({"setting": f"Rosenbrock, {LABELS[m]} (lr {r['best_lr'][m]:g})",
                     "measure": f"steps to distance < 1e-3 from (1,1); final distance after {cfg.rosen_steps}",
                     "value": f"{_fmt_steps(r['steps_to_1e-3'][m])}; {r['final_dist'][m]:.2e}"})
    mn = res["mnist"]
    for m in METHODS:
        acc = mn["test_acc"][m][:, -1]
        rows.append({"setting": f"MNIST-1D MLP, {LABELS[m]} (lr {mn['lr'][m]:g})",
                     "measure": f"test acc after {cfg.epochs} epochs ({cfg.seeds} seeds)", "value": stat(acc, digits=3)})
        rows.append({"setting": f"MNIST-1D MLP, {LABELS[m]} (lr {mn['lr'][m]:g})",
                     "measure": f"train loss after {cfg.epochs} epochs ({cfg.seeds} seeds)",
                     "value": stat(mn["train_loss"][m][:, -1], digits=3)})
    a = res["adam"]
    for j, sg in enumerate(a["sigmas"]):
        rows.append({"setting": f"Adam, gradient noise sigma={sg:g}",
                     "measure": "abs(update)/lr ; abs(update)/abs(g)/lr at scale " + "/".join(f"{s:g}" for s in a["scales"]),
                     "value": " / ".join(f"{v:.3f}" for v in a["step_rel"][:, j]) + " ; "
                              + " / ".join(f"{v:.3g}" for v in a["per_unit"][:, j])})
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    q = res["quad"]
    kap = q["kappas"]
    gd_err = np.abs(np.log(q["rate"]["sgd"]) / np.log(q["rate_theory"]["sgd"]) - 1)
    hb_err = np.abs(np.log(q["rate"]["momentum"]) / np.log(q["rate_theory"]["momentum"]) - 1)
    s_gd = _loglog_slope(kap, q["steps_to_1e-6"]["sgd"])
    s_hb = _loglog_slope(kap, q["steps_to_1e-6"]["momentum"])
    big = kap >= 100
    ratio = q["steps_to_1e-6"]["sgd"][big] / q["steps_to_1e-6"]["momentum"][big]
    need = 0.3 * np.sqrt(kap[big])
    r = res["rosen"]
    rosen_ok = {m: r["final_dist"][m] < 1e-2 for m in METHODS}
    mn = res["mnist"]
    accs = {m: float(mn["test_acc"][m][:, -1].mean()) for m in METHODS}
    a = res["adam"]
    cons = int(np.argmin(a["sigmas"]))
    spread = float(a["step_rel"][:, cons].max() / a["step_rel"][:, cons].min())
    pu_slope = float(np.polyfit(np.log10(a["g_rms"][:, cons]), np.log10(a["per_unit"][:, cons]), 1)[0])
    noisy = int(np.argmax(a["sigmas"]))
    cons_vs_noisy = float(np.min(a["step_rel"][:, cons] / a["step_rel"][:, noisy]))
    return [
        {"name": "GD rate matches ((kappa-1)/(kappa+1))^t", "value": float(np.nanmax(gd_err)),
         "passed": bool(np.all(gd_err < 0.05)),
         "detail": "relative error of the measured log-rate per kappa: " + ", ".join(f"{e:.3f}" for e in gd_err) + " (< 0.05)"},
        {"name": "heavy-ball rate matches ((sqrt k-1)/(sqrt k+1))^t", "value": float(np.nanmax(hb_err)),
         "passed": bool(np.all(hb_err < 0.15)),
         "detail": "relative error of the measured log-rate per kappa: " + ", ".join(f"{e:.3f}" for e in hb_err)
                   + " (< 0.15; the double eigenvalue at the spectrum's edges adds a t factor)"},
        {"name": "GD steps to 1e-6 grow ~ kappa", "value": s_gd, "passed": bool(abs(s_gd - 1.0) < 0.1),
         "detail": f"log-log slope {s_gd:.3f} (1 +- 0.1)"},
        {"name": "heavy-ball steps to 1e-6 grow ~ sqrt(kappa)", "value": s_hb, "passed": bool(abs(s_hb - 0.5) < 0.1),
         "detail": f"log-log slope {s_hb:.3f} (0.5 +- 0.1)"},
        {"name": "heavy ball beats GD widely at kappa >= 100", "value": float(np.min(ratio)),
         "passed": bool(np.all(ratio > need)),
         "detail": "GD/heavy-ball steps " + ", ".join(f"kappa {k:g}: {v:.1f}x (> {n:.1f})" for k, v, n in zip(kap[big], ratio, need))},
        {"name": "every optimiser reaches (1, 1) on Rosenbrock", "value": float(max(r["final_dist"].values())),
         "passed": all(rosen_ok.values()),
         "detail": ", ".join(f"{LABELS[m]} {r['final_dist'][m]:.1e}" for m in METHODS) + " (final distance < 1e-2)"},
        {"name": "every optimiser learns MNIST-1D", "value": min(accs.values()), "passed": min(accs.values()) > 0.2,
         "detail": ", ".join(f"{LABELS[m]} {v:.3f}" for m, v in accs.items()) + " mean test acc (> 0.2; chance 0.1); "
                   f"smallest margin {min(accs.values()) - 0.2:+.3f} ({LABELS[min(accs, key=accs.get)]}), lowest seed "
                   f"{min(float(mn['test_acc'][m][:, -1].min()) for m in METHODS):.3f}"},
        {"name": "Adam's update is ~lr whatever the gradient scale", "value": spread, "passed": spread < 1.2,
         "detail": f"consistent gradients (sigma={a['sigmas'][cons]:g}): |update|/lr "
                   + " / ".join(f"{v:.3f}" for v in a["step_rel"][:, cons])
                   + f" over scales {a['scales'].min():g}..{a['scales'].max():g}; max/min {spread:.3f} (< 1.2)"},
        {"name": "Adam's step per unit gradient falls like 1/sqrt(v)", "value": pu_slope,
         "passed": bool(abs(pu_slope + 1.0) < 0.1),
         "detail": f"log-log slope of |update|/|g| vs gradient RMS {pu_slope:.3f} (-1 +- 0.1)"},
        {"name": "inconsistent gradients get smaller Adam steps", "value": cons_vs_noisy, "passed": cons_vs_noisy > 2,
         "detail": f"|update| at sigma={a['sigmas'][cons]:g} over sigma={a['sigmas'][noisy]:g}: min {cons_vs_noisy:.2f}x (> 2)"},
    ]


# ----------------------------------------------------------------------------- figures
def plot(res: dict, cfg: Config) -> dict:
    figs = {}
    q = res["quad"]
    kap = q["kappas"]
    fig, axes = plotting.figure(ncols=3, width=3.6, height=3.0)
    ax = axes[0, 0]
    ki = int(np.argmin(np.abs(kap - 1000))) if np.any(kap >= 1000) else len(kap) - 1
    t = q["curve_steps"][1:]
    for i, m in enumerate(METHODS):
        ax.plot(t, q["curves"][m][ki][1:], color=f"C{i}", label=LABELS[m])
    th = q["rate_theory"]
    ax.plot(t, t * np.log10(th["sgd"][ki]), "k--", lw=0.8, label="GD theory")
    ax.plot(t, t * np.log10(th["momentum"][ki]), "k:", lw=1.0, label="heavy-ball theory")
    ax.set(xlabel="step t", ylabel="log10 ||x_t|| / ||x_0||", ylim=(-16, 1), xscale="log",
           title=f"quadratic, kappa = {kap[ki]:g}")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for i, m in enumerate(METHODS):
        st = q["steps_to_1e-6"][m]
        if np.isfinite(st).any():
            ax.plot(kap, st, "o-", color=f"C{i}", ms=4, label=LABELS[m])
    base_gd, base_hb = q["steps_to_1e-6"]["sgd"][0], q["steps_to_1e-6"]["momentum"][0]
    ax.plot(kap, base_gd * kap / kap[0], "k--", lw=0.8, label="~ kappa")
    ax.plot(kap, base_hb * np.sqrt(kap / kap[0]), "k:", lw=1.0, label="~ sqrt(kappa)")
    plotting.log_xticks(ax, kap)
    ax.set(yscale="log", xlabel="condition number kappa", ylabel="steps to 1e-6 relative error",
           title="steps vs conditioning")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    for i, m in enumerate(("sgd", "momentum")):
        ax.plot(kap, -np.log10(q["rate"][m]), "o", color=f"C{i}", ms=6, label=f"{LABELS[m]} measured")
        ax.plot(kap, -np.log10(th[m]), "-", color=f"C{i}", lw=1, label=f"{LABELS[m]} theory")
    for i, m in enumerate(METHODS):
        if m == "nesterov":
            ok = np.isfinite(q["rate"][m])
            ax.plot(kap[ok], -np.log10(q["rate"][m][ok]), "s", color=f"C{i}", ms=4, mfc="none", label="Nesterov measured")
    plotting.log_xticks(ax, kap)
    ax.set(yscale="log", xlabel="condition number kappa", ylabel="-log10(rate) per step (higher = faster)",
           title="linear convergence rate")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["optimizers_quadratic"] = fig

    r = res["rosen"]
    fig, axes = plotting.figure(ncols=2, width=4.2, height=3.4)
    ax = axes[0, 0]
    xs, ys = np.linspace(-2.0, 2.0, 300), np.linspace(-1.0, 3.0, 300)
    X, Y = np.meshgrid(xs, ys)
    Z = (1 - X) ** 2 + 100 * (Y - X ** 2) ** 2
    ax.contour(X, Y, np.log10(Z + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    for i, m in enumerate(METHODS):
        tr = r["traj"][m]
        tr = tr[np.all(np.isfinite(tr), axis=1)]
        ax.plot(tr[:, 0], tr[:, 1], color=f"C{i}", lw=1.0, label=f"{LABELS[m]} (lr {r['best_lr'][m]:g})")
    ax.plot(*r["start"], "ko", ms=5)
    ax.plot(1, 1, "r*", ms=10)
    ax.set(xlabel="x", ylabel="y", xlim=(-2, 2), ylim=(-1, 3),
           title=f"Rosenbrock from ({r['start'][0]:g}, {r['start'][1]:g}), momentum {cfg.rosen_momentum:g}")
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[0, 1]
    for i, m in enumerate(METHODS):
        d = r["dist"][m]
        ax.plot(np.arange(1, d.shape[0] + 1), d, color=f"C{i}", label=LABELS[m])
    ax.axhline(1e-3, color="gray", ls="--", lw=0.8, label="1e-3")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="distance to minimum (1, 1)", title="convergence")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["optimizers_rosenbrock"] = fig

    mn = res["mnist"]
    fig, axes = plotting.figure(ncols=2, width=3.6, height=2.9)
    ep = np.arange(1, cfg.epochs + 1)
    for i, m in enumerate(METHODS):
        lab = f"{LABELS[m]} (lr {mn['lr'][m]:g})"
        plotting.mean_band(axes[0, 0], ep, mn["test_acc"][m], label=lab, color=f"C{i}")
        plotting.mean_band(axes[0, 1], ep, mn["train_loss"][m], label=lab, color=f"C{i}", band=False)
    axes[0, 0].set(xlabel="epoch", ylabel="test accuracy", title=f"MNIST-1D MLP 40-100-100-10, {cfg.seeds} seeds")
    axes[0, 1].set(xlabel="epoch", ylabel="train loss (cross-entropy)", title="training loss")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    figs["optimizers_mnist1d"] = fig

    a = res["adam"]
    fig, axes = plotting.figure(ncols=2, width=3.6, height=3.0)
    markers = "osD^v"
    for j, sg in enumerate(a["sigmas"]):
        axes[0, 0].plot(a["g_rms"][:, j], a["step_rel"][:, j], markers[j % 5] + "-", color=f"C{j}", ms=5,
                        label=f"noise sigma={sg:g}")
        axes[0, 1].plot(a["g_rms"][:, j], a["per_unit"][:, j], markers[j % 5], color=f"C{j}", ms=5,
                        label=f"noise sigma={sg:g}")
    gr = np.sort(a["g_rms"].ravel())
    axes[0, 0].plot(gr, gr, "k:", lw=0.8, label="SGD: |update| / lr = |g|")
    axes[0, 0].set(xscale="log", yscale="log", xlabel="gradient RMS of the parameter (~ sqrt(v))",
                   ylabel="Adam |update| / lr", title="update size is ~lr at any scale")
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].plot(gr, 1.0 / gr, "k--", lw=0.8, label="1 / sqrt(v)")
    axes[0, 1].set(xscale="log", yscale="log", xlabel="gradient RMS of the parameter (~ sqrt(v))",
                   ylabel="|update| / |g| / lr (step per unit gradient)", title="large gradients get smaller steps")
    axes[0, 1].legend(fontsize=7)
    fig.tight_layout()
    figs["adam_effective_step"] = fig
    return figs

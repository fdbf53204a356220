"""Hessian eigenvalue density at initialisation and after training, with and without batch norm.

Ghorbani, Krishnan & Xiao 2019 ("An Investigation into Neural Net Optimization via Hessian
Eigenvalue Density") estimate the full Hessian spectrum of a network by stochastic Lanczos
quadrature (SLQ) and find, after training, a bulk concentrated near zero plus a few large
isolated outliers (about one per class, as Sagun et al. 2017 and Papyan 2019 also report),
and that networks with batch norm have no such outliers.

Here an MLP (``widths``, ReLU) with ``norm="none"`` and ``norm="batch"`` is trained on
``dataset`` (SGD with momentum, seeds vmapped by ``lossatlas.train.sweep``). At
initialisation and after training, for every seed (one compiled, vmapped program per
model, initial and trained parameters stacked on the seed axis):

* SLQ (``curvature.lanczos_quadrature``, ``num_probes`` Rademacher probes x ``num_steps``
  Lanczos steps) gives the spectral measure; it is broadened by Gaussians of width
  ``sigma_frac`` x (range of the nodes and top eigenvalues of that model and phase)
  (Ghorbani et al.'s eq. 7, ``curvature.broadened_density``) on one grid per (model,
  phase), and plotted as log-density against eigenvalue: one panel per model and phase,
  all on one eigenvalue axis (so batch norm's far smaller trained lambda_max shows as a
  narrow spike at 0) and one log-density axis floored at 1e-6 of the highest peak (the
  Gaussian tails between isolated outliers would otherwise run down to 1e-10 and below);
  each panel gives lambda_max (seed mean), the outliers per seed and its sigma;
* ``curvature.top_eigenvalues`` (Lanczos, ``num_iters`` steps) gives the ``top_k = 2C``
  largest eigenvalues. Outliers: the bulk edge is taken as the ``top_k``-th eigenvalue
  (inside the bulk when there are fewer than ``top_k`` outliers) and an eigenvalue is an
  outlier when it exceeds ``outlier_factor`` x the bulk edge.

The Hessian is that of the mean training loss over the whole training set (all
``num_train`` examples in one batch). For batch norm it is taken in training mode: the
batch statistics of the whole training set, differentiated through, i.e. the objective
the network was trained on with the batch being the training set.

Command:    lossatlas run hessian_spectrum [--quick]
Checks:     after training without batch norm the number of outliers is about the number of
            classes (within C/2 of C); with batch norm it is at most half that; an outlier
            from top_eigenvalues has a Ritz value of the SLQ probes next to it (within 3% of
            lambda_max) in at least half the probes, for the median outlier pooled over models,
            phases and seeds (the density's support holds the outliers; the minimum over single
            outliers is reported, not checked: a step of 1/num_probes on one eigenvalue).
Runtime:    quick (digits, 400 examples, MLP 32-32, 40 epochs, 2 seeds, 60 Lanczos steps),
            2026-11-30, 2 shared CPU cores under load: 8 s (13 s wall with start-up; JAX's
            compilation cache warm). Full (all digits, MLP 64-64, 3 seeds, 80 steps): 155 s on 2 CPU
            cores under load (README; measured before the 2026-11-30 engine refactor).
Result:     quick, 2026-11-30 (seed 0): outliers (> 3 x lambda_20) per seed, no norm: 2 / 3 at init,
            10 / 10 trained (C = 10; lambda_max 2.75, 45.1 x the bulk edge); batch norm: 0 / 0 at
            init, 3 / 2 trained (lambda_max 0.097, 4.1 x the edge; <= half of 10); every one of the
            30 outliers has an SLQ Ritz value within 3% in all 8 probes (median fraction 1.00). Test
            accuracy 0.932 / 0.946. All checks pass. Full run (README; before the refactor):
            outliers no norm 3, 2, 2 at init and 9, 9, 10 trained; batch norm 0, 0, 0 and 1, 2, 2;
            trained lambda_max / edge 34.3 (no norm) vs 4.23 (batch norm).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import curvature
from lossatlas import losses, plotting
from lossatlas.train import TrainConfig, model_fns, sweep

from . import kit

FIGURE = "Ghorbani, Krishnan & Xiao 2019, Fig. 1"
TABLE_TITLE = "Hessian spectrum (SLQ + Lanczos top eigenvalues): outliers vs classes, with and without batch norm (Ghorbani et al. 2019)"

NORMS = ("none", "batch")
PHASES = ("init", "trained")
DATASETS = ("digits", "mnist1d")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    num_train: int = 0              # 0: the whole training set
    widths: tuple = (64, 64)
    learning_rate: float = 0.05     # SGD with momentum 0.9
    batch_size: int = 64
    epochs: int = 30
    num_steps: int = 80             # SLQ Lanczos steps per probe
    num_probes: int = 8
    top_k: int = 20                 # 2C for 10 classes
    num_iters: int = 80             # Lanczos steps for top_eigenvalues
    outlier_factor: float = 3.0     # outlier: > outlier_factor x bulk edge (the top_k-th eigenvalue)
    sigma_frac: float = 0.01        # Gaussian broadening, fraction of the spectrum's range
    grid_points: int = 600
    seeds: int = 3
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Config.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.num_train < 0:
            raise ValueError(f"Config.num_train must be >= 0 (0: all), got {self.num_train!r}")
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"Config.widths must be positive hidden widths, got {self.widths!r}")
        if self.top_k < 2 or self.num_iters < self.top_k:
            raise ValueError(f"Config.top_k must be >= 2 and num_iters >= top_k, got {self.top_k}, {self.num_iters}")
        if self.num_steps < 2 or self.num_probes < 1:
            raise ValueError("Config.num_steps must be >= 2 and num_probes >= 1")
        if self.outlier_factor <= 1:
            raise ValueError(f"Config.outlier_factor must be > 1, got {self.outlier_factor!r}")
        if not 0 < self.sigma_frac < 1:
            raise ValueError(f"Config.sigma_frac must lie in (0, 1), got {self.sigma_frac!r}")


QUICK = {"seeds": 2, "num_train": 400, "widths": (32, 32), "epochs": 40, "num_steps": 60, "num_iters": 60, "num_probes": 8,
         "grid_points": 300}


def _dataset(cfg):
    return kit.dataset(cfg)


def _train_config(cfg, norm):
    return TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths), "norm": norm}, optimizer="momentum",
                       learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, epochs=cfg.epochs)


def _analyse(cfg, tcfg, ds):
    """jit(vmap((params, model_state, key) -> (nodes [P, m], weights [P, m], top [k])))."""
    apply = model_fns(tcfg, ds).apply
    data = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))

    def one(params, model_state, key):
        def loss_fn(p, batch):
            # batch norm in training mode: statistics of the batch, differentiated through
            return losses.cross_entropy(apply(p, model_state, batch[0], train=bool(model_state)), batch[1])

        k_slq, k_top = jax.random.split(key)
        nodes, weights = curvature.lanczos_quadrature(loss_fn, params, k_slq, cfg.num_steps, cfg.num_probes, data=data)
        top = curvature.top_eigenvalues(loss_fn, params, cfg.top_k, k_top, num_iters=cfg.num_iters, data=data)
        return nodes, weights, top

    return jax.jit(jax.vmap(one))


#: The broadened SLQ density of every seed: ([S, P, m] nodes, weights; [G] grid; sigma) -> [S, G].
_broaden = jax.jit(jax.vmap(curvature.broadened_density, (0, 0, None, None)))


def run(cfg: Config, key) -> dict:
    ds = _dataset(cfg)
    out = {}
    for i, norm in enumerate(NORMS):
        tcfg = _train_config(cfg, norm)
        k_train, k_eig = jax.random.split(jax.random.fold_in(key, i))
        state, hist, state0 = sweep(tcfg, ds, seeds=cfg.seeds, key=k_train, return_init=True)
        both = jax.device_get(((state0.params, state0.model_state), (state.params, state.model_state)))
        both = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), *both)   # [init seeds..., trained seeds...]
        keys = jax.random.split(k_eig, 2 * cfg.seeds)
        nodes, weights, top = (np.asarray(a) for a in _analyse(cfg, tcfg, ds)(*both, keys))
        n = int(sum(a.size for a in jax.tree_util.tree_leaves(state.params)) // cfg.seeds)
        res = {"train_loss": np.asarray(hist["train_loss"][:, -1]), "train_acc": np.asarray(hist["train_acc"][:, -1]),
               "test_acc": np.asarray(hist["test_acc"][:, -1]), "num_params": np.asarray(n)}
        for j, phase in enumerate(PHASES):
            sl = slice(j * cfg.seeds, (j + 1) * cfg.seeds)
            nd, w, tp = nodes[sl], weights[sl], top[sl]
            lo, hi = min(nd.min(), tp.min()), max(nd.max(), tp.max())
            sigma = cfg.sigma_frac * (hi - lo)
            grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, cfg.grid_points)
            dens = np.asarray(_broaden(nd, w, grid, sigma))
            edge = tp[:, -1]
            res[phase] = {"nodes": nd, "weights": w, "top": tp, "grid": grid, "density": dens,
                          "sigma": np.asarray(sigma), "edge": edge,
                          "outliers": (tp > cfg.outlier_factor * edge[:, None]).sum(1)}
        out[norm] = res
    out["num_classes"] = np.asarray(ds.num_classes)
    return out


def _near_fraction(ph, tol_frac=0.03):
    """Per seed and outlier: the fraction of SLQ probes with a Ritz value within tol_frac * lambda_max."""
    fr = []
    for s in range(len(ph["top"])):
        m = int(ph["outliers"][s])
        tol = tol_frac * ph["top"][s, 0]
        d = np.abs(ph["nodes"][s][None] - ph["top"][s, :m, None, None]).min(-1)   # [m, P]
        fr.append((d < tol).mean(-1))
    return fr


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    for norm in NORMS:
        r = res[norm]
        for phase in PHASES:
            ph = r[phase]
            rows.append({
                "norm": "batch norm" if norm == "batch" else "no norm", "phase": phase,
                "params": int(r["num_params"]),
                "train loss / test acc": f"{r['train_loss'].mean():.4f} / {r['test_acc'].mean():.3f}" if phase == "trained" else "",
                "lambda_max": float(ph["top"][:, 0].mean()),
                "bulk edge (lambda_{%d})" % cfg.top_k: float(ph["edge"].mean()),
                "lambda_max / edge": float((ph["top"][:, 0] / ph["edge"]).mean()),
                f"outliers (> {cfg.outlier_factor:g} x edge) per seed": " ".join(str(int(c)) for c in ph["outliers"]),
                "SLQ mass above edge": float(np.mean([(w[nd > e]).sum() / len(w)
                                                      for nd, w, e in zip(ph["nodes"], ph["weights"], ph["edge"])])),
            })
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    C = int(res["num_classes"])
    plain, bn = res["none"]["trained"], res["batch"]["trained"]
    c_plain, c_bn = float(plain["outliers"].mean()), float(bn["outliers"].mean())
    fr = [f for norm in NORMS for ph in PHASES for f in _near_fraction(res[norm][ph])]
    near = np.concatenate(fr + [np.ones(1)])
    pooled = np.concatenate(fr) if sum(f.size for f in fr) else np.ones(1)
    top_half = np.concatenate([f[: C // 2] for f in fr] + [np.ones(1)])   # each model/phase/seed's C/2 largest outliers
    return [
        {"name": "about one outlier per class after training", "value": c_plain, "passed": bool(abs(c_plain - C) <= C / 2),
         "detail": f"no norm, trained: {c_plain:.1f} eigenvalues above {cfg.outlier_factor:g} x the bulk edge (mean over "
                   f"{cfg.seeds} seeds; per seed {plain['outliers'].tolist()}), C = {C} classes (need |count - C| <= C/2); "
                   f"at init {res['none']['init']['outliers'].tolist()}"},
        {"name": "batch norm suppresses the outliers", "value": c_bn, "passed": bool(c_bn <= c_plain / 2),
         "detail": f"trained with batch norm: {c_bn:.1f} outliers (per seed {bn['outliers'].tolist()}) vs {c_plain:.1f} without "
                   f"(need <= half); lambda_max / bulk edge {np.mean(bn['top'][:, 0] / bn['edge']):.3g} vs "
                   f"{np.mean(plain['top'][:, 0] / plain['edge']):.3g}"},
        {"name": "the SLQ density's support holds the Lanczos outliers", "value": float(np.median(pooled)),
         "passed": bool(np.median(pooled) >= 0.5),
         "detail": f"fraction of the {cfg.num_probes} SLQ probes with a Ritz value within 3% of lambda_max of an outlier "
                   f"of top_eigenvalues, over all {pooled.size} outliers of every model, phase and seed: median "
                   f"{np.median(pooled):.2f} (need >= 0.5), mean {pooled.mean():.2f}; min over each run's C/2 largest "
                   f"outliers {top_half.min():.2f}, min over all {near.min():.2f} (reported)"},
    ]


NORM_LABEL = {"none": "no norm", "batch": "batch norm"}
NORM_COLOR = {"none": "C0", "batch": "C2"}
FLOOR = 1e-6        # log-density axis floor, relative to the highest peak of all panels


def plot(res: dict, cfg: Config) -> dict:
    from matplotlib.lines import Line2D

    fig, axes = plotting.figure(ncols=2, nrows=2, width=3.4, height=2.3, sharex=True)
    peak = max(float(res[n][p]["density"].max()) for n in NORMS for p in PHASES)
    for r, norm in enumerate(NORMS):
        for c, phase in enumerate(PHASES):
            ax, ph = axes[r, c], res[norm][phase]
            color = NORM_COLOR[norm]
            for s in range(cfg.seeds):
                ax.plot(ph["grid"], np.maximum(ph["density"][s], FLOOR * peak / 10), color=color,
                        lw=1.3 if s == 0 else 0.8, alpha=1.0 if s == 0 else 0.45)
            edge = cfg.outlier_factor * ph["edge"][0]
            top = ph["top"][0]
            marks = ax.get_xaxis_transform()        # x in data, y in axes coordinates
            ax.plot(top[top > edge], np.full(int((top > edge).sum()), 0.05), "v", color="C3", ms=5, transform=marks)
            ax.plot(top[top <= edge], np.full(int((top <= edge).sum()), 0.05), "|", color="k", ms=6, transform=marks)
            ax.axvline(edge, color="C3", ls=":", lw=0.8)
            ax.set_title(f"{NORM_LABEL[norm]}, {phase}", fontsize=10)
            ax.set_ylim(FLOOR * peak, 3 * peak)
            plotting.log_axis(ax, "y")
            if c == 0:
                ax.set_ylabel("eigenvalue density")
            if r == len(NORMS) - 1:
                ax.set_xlabel("Hessian eigenvalue")
    lo, hi = axes[0, 0].get_xlim()
    for r, norm in enumerate(NORMS):       # the numbers on the side away from the bulk edge line
        for c, phase in enumerate(PHASES):
            ph = res[norm][phase]
            left = (cfg.outlier_factor * ph["edge"][0] - lo) / (hi - lo) > 0.55
            axes[r, c].text(0.02 if left else 0.98, 0.95, f"$\\lambda_{{max}}$ = {ph['top'][:, 0].mean():.3g}\n"
                            "outliers/seed: " + ", ".join(str(int(k)) for k in ph["outliers"])
                            + f"\n$\\sigma$ = {float(ph['sigma']):.2g}", transform=axes[r, c].transAxes,
                            ha="left" if left else "right", va="top", fontsize=7.5)
    plotting.panel_letters(axes)
    handles = [Line2D([], [], color=NORM_COLOR[n], lw=1.3) for n in NORMS] + [
        Line2D([], [], color="0.5", lw=0.8, alpha=0.45),
        Line2D([], [], ls="", marker="v", color="C3", ms=5), Line2D([], [], ls="", marker="|", color="k", ms=6),
        Line2D([], [], color="C3", ls=":", lw=0.8)]
    labels = [f"SLQ density, {NORM_LABEL[n]} (seed 0)" for n in NORMS] + [
        "other seeds", f"outliers (seed 0, Lanczos; C = {int(res['num_classes'])} classes)", f"other top-{cfg.top_k} (seed 0)",
        f"{cfg.outlier_factor:g} x bulk edge (seed 0)"]
    fig.tight_layout()
    plotting.figure_legend(fig, handles, labels, where="below", ncol=3)
    return {"hessian_spectrum": fig}

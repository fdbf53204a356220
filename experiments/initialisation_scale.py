"""Order to chaos: trainability of deep tanh networks against weight variance and depth.

Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017 ("Deep information
propagation"; Poole et al. 2016): for tanh networks with weights
W ~ N(0, sigma_w^2 / fan_in) and zero biases, signals propagate through depth only
near the critical point sigma_w^2 = 1 between the ordered phase (inputs collapse
together, gradients vanish) and the chaotic phase (inputs decorrelate, gradients
explode); the trainable band around it narrows as depth grows. Here every sigma_w^2
on the grid is a vmap axis of one compiled program per depth (``init_scale`` =
sigma_w times LeCun's 1/sqrt(fan_in)); the heatmap is training accuracy after a
fixed budget of SGD steps on MNIST-1D.

Command:    lossatlas run initialisation_scale [--quick]
Checks:     the band comes from the theory, not from our accuracies: the mean-field depth scale
            xi_c(sigma_w^2) (``depth_scale``), and Schoenholz et al.'s trainable region depth <~ 6 xi_c
            with a factor-2 margin. At the largest depth the grid points with 6 xi_c >= 2 x depth
            train (seed-mean accuracy over them >= 0.2, twice chance, and the best point is one
            of them), those with 6 xi_c <= depth / 2 stay at chance (every one < 0.15); fewer grid
            points train (>= 0.2) at the largest depth than at the smallest. (With a finite
            budget the best value sits slightly on the chaotic side of 1, as in their Fig. 5.)
Runtime:    quick (sigma_w^2 = 0.5/1/2/4, depths 5 and 50, 12 epochs, 2 seeds), 2026-11-30, 2 shared
            CPU cores under load: 44 s (51 s wall with start-up; JAX's compilation cache warm). Full
            (11 sigma_w^2 values, depths 5-40, 20 epochs): not measured.
Result:     quick, 2026-11-30 (seed 0), train accuracy (seed mean) at depth 50: sigma_w^2 = 0.5 /
            1 / 2 / 4 -> 0.10 / 0.34 / 0.29 / 0.13 (mean-field 6 xi_c = 9 / inf / 130 / 48); inside
            the band (1, 2) mean 0.32 >= 0.2, best at 1; outside (0.5) 0.10 < 0.15; depth 5: 0.35 /
            0.48 / 0.63 / 0.73, so 4 grid points train at depth 5 and 2 at depth 50. All checks
            pass. Full: no full-run numbers recorded; the README notes that with 20 SGD epochs no
            sigma_w^2 trained a depth-80 tanh MLP (best 0.18 on an H200), hence depths up to 40.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lossatlas import data as data_lib
from lossatlas import plotting
from lossatlas.train import TrainConfig, sweep

TABLE_TITLE = "Trainability of deep tanh MLPs: train accuracy by sigma_w^2 (columns) and depth (rows)"


@dataclasses.dataclass(frozen=True)
class Config:
    sigma_w2: tuple = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0)
    # Depth 80 was tried (H200, 20 epochs): nothing on the grid trained past 0.18 train
    # accuracy there, so the trainable depth at this budget ends between 40 and 80.
    depths: tuple = (5, 10, 20, 40)
    width: int = 100
    optimizer: str = "sgd"
    learning_rate: float = 5e-2
    batch_size: int = 100
    epochs: int = 20
    trainable_acc: float = 0.2  # seed-mean train accuracy that counts as "trains": twice chance (0.1)
    seeds: int = 2
    seed: int = 0

    def __post_init__(self):
        if min(self.sigma_w2) <= 0 or min(self.depths) < 2:
            raise ValueError("Config.sigma_w2 must be > 0 and depths >= 2")


QUICK = {"sigma_w2": (0.5, 1.0, 2.0, 4.0), "depths": (5, 50), "epochs": 12, "seeds": 2}


def run(cfg: Config, key) -> dict:
    ds = data_lib.load("mnist1d")
    scales = [float(np.sqrt(s)) for s in cfg.sigma_w2]
    acc, loss = [], []
    for i, depth in enumerate(cfg.depths):
        tcfg = TrainConfig(model="mlp", model_cfg=dict(widths=(cfg.width,) * depth, activation="tanh", init="lecun",
                                                       scan_layers=depth > 2),
                           optimizer=cfg.optimizer, learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                           epochs=cfg.epochs)
        _, hist = sweep(tcfg, ds, seeds=cfg.seeds, grid={"init_scale": scales}, key=jax.random.fold_in(key, i))
        hist = jax.device_get(hist)
        acc.append(np.asarray(hist["train_acc"][..., -1]))  # [sigma, seed]
        loss.append(np.asarray(hist["train_loss"][..., -1]))
    return {"train_acc": np.stack(acc), "train_loss": np.stack(loss),  # [depth, sigma, seed]
            "sigma_w2": np.asarray(cfg.sigma_w2), "depths": np.asarray(cfg.depths)}


def depth_scale(sigma_w2: float, num_points: int = 61, iters: int = 2000) -> float:
    """Mean-field correlation depth scale xi_c of a tanh network with zero biases (Schoenholz et al. 2017).

    Ordered phase (sigma_w^2 < 1): the variance fixed point is q* = 0 and chi_1 = sigma_w^2, so
    xi_c = -1 / log sigma_w^2. Chaotic phase: q* > 0, the correlation map's stable fixed point c*
    (0 for an odd activation without bias), and xi_c = -1 / log chi_c* with
    chi_c* = sigma_w^2 E[phi'(u_1) phi'(u_2)] at c*. Gauss-Hermite quadrature; infinite at sigma_w^2 = 1.
    """
    z, w = np.polynomial.hermite_e.hermegauss(num_points)
    w = w / w.sum()
    if sigma_w2 < 1.0:
        return float(-1.0 / np.log(sigma_w2))
    if sigma_w2 == 1.0:
        return float("inf")
    q = 1.0
    for _ in range(iters):
        q = sigma_w2 * float((w * np.tanh(np.sqrt(q) * z) ** 2).sum())
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    ww = np.outer(w, w)

    def pair(c):
        return np.sqrt(q) * z1, np.sqrt(q) * (c * z1 + np.sqrt(max(1.0 - c * c, 0.0)) * z2)

    c = 0.5
    for _ in range(iters):
        u1, u2 = pair(c)
        c = sigma_w2 * float((ww * np.tanh(u1) * np.tanh(u2)).sum()) / q
    u1, u2 = pair(c)
    chi = sigma_w2 * float((ww / np.cosh(u1) ** 2 / np.cosh(u2) ** 2).sum())
    return float(-1.0 / np.log(chi))


def theory_bands(cfg, depth: int):
    """Grid indices well inside / well outside Schoenholz et al.'s trainable region depth <~ 6 xi_c.

    A factor-2 margin on both sides: inside when 6 xi_c >= 2 depth, outside when 6 xi_c <= depth / 2;
    points in between are not tested.
    """
    six_xi = 6.0 * np.asarray([depth_scale(s) for s in cfg.sigma_w2])
    return np.nonzero(six_xi >= 2 * depth)[0], np.nonzero(six_xi <= depth / 2)[0], six_xi


def table(res: dict, cfg: Config) -> list[dict]:
    acc = res["train_acc"].mean(-1)
    rows = []
    for d, depth in enumerate(cfg.depths):
        row = {"depth": int(depth)}
        row.update({f"{s:g}": round(float(acc[d, j]), 2) for j, s in enumerate(cfg.sigma_w2)})
        rows.append(row)
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    acc = res["train_acc"].mean(-1)                                     # [depth, sigma], seed mean
    s = np.asarray(cfg.sigma_w2)
    L = int(cfg.depths[-1])
    inside, outside, six_xi = theory_bands(cfg, L)
    deep, shallow = acc[-1], acc[0]
    n_seeds = res["train_acc"].shape[-1]
    chance = 0.1
    in_mean = float(deep[inside].mean()) if inside.size else float("nan")
    out_max = float(deep[outside].max()) if outside.size else float("nan")
    best = int(np.argmax(deep))
    trains_deep = s[deep >= cfg.trainable_acc]
    trains_shallow = s[shallow >= cfg.trainable_acc]
    fmt = lambda idx, row: ", ".join(f"{s[j]:g}: {row[j]:.2f}" for j in idx)
    return [
        {"name": "inside the mean-field trainable band the deep net trains", "value": in_mean,
         "paper": "trainable when depth <~ 6 xi_c (Schoenholz et al. 2017)",
         "passed": bool(inside.size and in_mean >= cfg.trainable_acc and best in inside),
         "detail": f"depth {L}, {n_seeds} seeds: sigma_w^2 with 6 xi_c >= 2 x depth: {fmt(inside, deep)}; mean {in_mean:.2f} "
                   f"(>= {cfg.trainable_acc:g}, twice chance); best sigma_w^2 {s[best]:g} ({deep[best]:.2f}) inside the band"},
        {"name": "outside the band the deep net stays at chance", "value": out_max,
         "paper": "untrainable when depth >> 6 xi_c (Schoenholz et al. 2017)",
         "passed": bool(outside.size and out_max < chance + 0.05),
         "detail": f"depth {L}, {n_seeds} seeds: sigma_w^2 with 6 xi_c <= depth / 2: {fmt(outside, deep)}; max {out_max:.2f} "
                   f"(< {chance + 0.05:.2f}, chance {chance}); 6 xi_c on the grid: "
                   + ", ".join(f"{v:g}: {x:.0f}" for v, x in zip(s, six_xi))},
        {"name": "trainable band narrows with depth", "value": [len(trains_shallow), len(trains_deep)],
         "passed": bool(len(trains_deep) < len(trains_shallow)),
         "detail": f"sigma_w^2 with seed-mean train acc >= {cfg.trainable_acc:g}: depth {cfg.depths[0]}: "
                   f"{[float(v) for v in trains_shallow]}; depth {L}: {[float(v) for v in trains_deep]}"},
    ]


def plot(res: dict, cfg: Config) -> dict:
    acc = res["train_acc"].mean(-1)
    fig, axes = plotting.figure(ncols=2, width=3.8, height=3.0)
    ax = axes[0, 0]
    im = ax.imshow(acc, origin="lower", aspect="auto", cmap="viridis", vmin=0.1, vmax=max(0.5, float(acc.max())))
    ax.set_xticks(range(len(cfg.sigma_w2)), [f"{s:g}" for s in cfg.sigma_w2], rotation=45)
    ax.set_yticks(range(len(cfg.depths)), [str(d) for d in cfg.depths])
    crit = int(np.argmin(np.abs(np.log(np.asarray(cfg.sigma_w2)))))
    ax.axvline(crit, color="w", ls="--", lw=0.8)
    ax.grid(False)
    ax.set(xlabel=r"$\sigma_w^2$ (weights $\sim N(0, \sigma_w^2/\mathrm{fan\_in})$)", ylabel="depth",
           title=f"tanh MLP train accuracy after {cfg.epochs} epochs")
    fig.colorbar(im, ax=ax, label="train accuracy (chance 0.1)")
    ax = axes[0, 1]
    for d, depth in enumerate(cfg.depths):
        ax.plot(cfg.sigma_w2, acc[d], marker="o", ms=3, label=f"depth {depth}")
    ax.axhline(cfg.trainable_acc, color="gray", ls=":", lw=0.8, label="'trains' threshold")
    ax.axvline(1.0, color="k", ls="--", lw=0.8)
    plotting.log_xticks(ax, cfg.sigma_w2)
    ax.set(xlabel=r"$\sigma_w^2$", ylabel="train accuracy", title="order (left) to chaos (right)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return {"initialisation_scale": fig}

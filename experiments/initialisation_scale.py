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
Checks:     at the largest depth the best sigma_w^2 lies in [0.5, 2] and trains while both
            ends of the grid stay near chance; the trainable band is narrower at the largest
            depth than at the smallest. (With a finite training budget the best value sits
            slightly on the chaotic side of 1, as in Schoenholz et al.'s Fig. 5.)
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
    trainable_acc: float = 0.3  # train accuracy that counts as "trains" (chance 0.1)
    seeds: int = 2
    seed: int = 0

    def __post_init__(self):
        if min(self.sigma_w2) <= 0 or min(self.depths) < 2:
            raise ValueError("Config.sigma_w2 must be > 0 and depths >= 2")


QUICK = {"sigma_w2": (0.25, 0.5, 1.0, 1.5, 2.0, 4.0), "depths": (5, 50), "epochs": 12, "seeds": 1}


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


def _band(acc_row, cfg):
    return np.asarray(cfg.sigma_w2)[acc_row >= cfg.trainable_acc]


def table(res: dict, cfg: Config) -> list[dict]:
    acc = res["train_acc"].mean(-1)
    rows = []
    for d, depth in enumerate(cfg.depths):
        row = {"depth": int(depth)}
        row.update({f"{s:g}": f"{acc[d, j]:.2f}" for j, s in enumerate(cfg.sigma_w2)})
        rows.append(row)
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    acc = res["train_acc"].mean(-1)
    s = np.asarray(cfg.sigma_w2)
    crit = int(np.argmin(np.abs(np.log(s))))
    deep, shallow = acc[-1], acc[0]
    band_deep, band_shallow = _band(deep, cfg), _band(shallow, cfg)
    best = int(np.argmax(deep))
    return [
        {"name": "near-critical init trains at depth", "value": float(s[best]),
         "passed": 0.5 <= s[best] <= 2.0 and deep[best] >= cfg.trainable_acc,
         "detail": f"depth {cfg.depths[-1]}: best sigma_w^2 = {s[best]:g} (in [0.5, 2]) with train acc "
                   f"{deep[best]:.2f} (>= {cfg.trainable_acc}); at sigma_w^2={s[crit]:g}: {deep[crit]:.2f}"},
        {"name": "ordered and chaotic ends fail at depth", "value": [float(deep[0]), float(deep[-1])],
         "passed": deep[0] < cfg.trainable_acc and deep[-1] < cfg.trainable_acc,
         "detail": f"depth {cfg.depths[-1]}: sigma_w^2={s[0]:g} acc {deep[0]:.2f}, sigma_w^2={s[-1]:g} acc {deep[-1]:.2f} "
                   f"(< {cfg.trainable_acc})"},
        {"name": "trainable band narrows with depth", "value": [len(band_shallow), len(band_deep)],
         "passed": len(band_deep) < len(band_shallow),
         "detail": f"trainable sigma_w^2 at depth {cfg.depths[0]}: {[float(v) for v in band_shallow]}; "
                   f"at depth {cfg.depths[-1]}: {[float(v) for v in band_deep]}"},
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

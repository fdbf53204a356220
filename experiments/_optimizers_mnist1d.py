"""optimizers, study 3: the MNIST-1D MLP trained by each optimiser over vmapped seeds."""
from __future__ import annotations

import jax
import numpy as np

from lossatlas import data as data_lib
from lossatlas import plotting
from lossatlas.train import TrainConfig, sweep
from ._optimizers_quadratic import LABELS, METHODS, finish


def run(cfg, key):
    """Each optimiser over vmapped seeds; SGD is heavy ball with momentum 0 (the same update), run in
    the heavy-ball program as a grid point (lr x momentum grid, the off-diagonal points unused), which
    saves one compilation."""
    ds = data_lib.load("mnist1d")
    lrs = dict(cfg.mnist_learning_rates)
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


def figure(res: dict, cfg):
    """Test accuracy and training loss by epoch (``res["mnist"]``)."""
    mn = res["mnist"]
    fig, axes = plotting.figure(ncols=2, width=3.6, height=2.9)
    ep = np.arange(1, cfg.epochs + 1)
    for i, m in enumerate(METHODS):
        lab = f"{LABELS[m]} (lr {mn['lr'][m]:g})"
        plotting.mean_band(axes[0, 0], ep, mn["test_acc"][m], label=lab, color=f"C{i}")
        plotting.mean_band(axes[0, 1], ep, mn["train_loss"][m], color=f"C{i}", band=False)
    axes[0, 0].set(xlabel="epoch", ylabel=f"test accuracy (mean +- sd, {cfg.seeds} seeds)",
                   title="MNIST-1D MLP 40-100-100-10")
    axes[0, 1].set(xlabel="epoch", ylabel="train loss (cross-entropy)", title="training loss (seed mean)")
    for ax in axes.flat:
        ax.set_xticks(ep)
    return finish(fig, axes, ncol=3)

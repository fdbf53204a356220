"""MNIST-1D benchmark table (Greydanus 2020, "Scaling down deep learning", Table 1 / Fig. 3).

Trains logistic regression, an MLP (40-100-100-10), the paper's CNN and its
bidirectional GRU on MNIST-1D (4000 train / 1000 test, the package's default
arguments) with the paper's recipe: Adam, learning rate 1e-2, batch 100, 8000
steps (200 epochs), no weight decay. Every model's seeds run as one vmapped,
scanned program.

Command:    lossatlas run mnist1d_benchmark [--quick] [--seeds N]
Reproduces: test accuracy logreg ~32%, MLP ~68%, CNN ~94%, GRU ~91% (paper).
Checks:     quick and full: logreg < MLP < GRU on the seed means (the paper's ordering; the margin in
            points and in standard errors of the difference is recorded) and every model above 20%
            (chance 10%). Full runs only: each model matches the paper within the 95% confidence
            half-width of our seed mean (Student t) + 0.5 points for the paper's whole-percent
            rounding (was a flat +-6 points); report-only, since by the README's full runs the CNN
            lies outside it on both machines.
Runtime:    quick (2 seeds, 25 epochs), 2026-11-30, 2 shared CPU cores under load: 38 s (43 s wall
            with start-up; JAX's compilation cache warm). Full (5 seeds, 200 epochs): 189 s wall on 2
            quiet CPU cores, 2026-11-30 (empty compilation cache after the quick run): logreg 31.6,
            MLP 66.9, CNN 91.6, GRU 89.9; every gating check passes, CNN vs paper 94 fails
            (report-only).
Result:     quick, 2026-11-30 (seed 0): test accuracy logreg 31.2 +- 1.3, MLP 64.4 +- 0.5, CNN
            91.1 +- 0.0, GRU 87.3 +- 0.2 (paper 32 / 68 / 94 / 91); logreg < MLP by 33.2 points (24
            standard errors of the difference), MLP < GRU by 23.0 (48); every model above 20%. All
            checks pass. Full run (README; 5 seeds; measured before the 2026-11-30 engine refactor):
            logreg / MLP / CNN / GRU 31.6 / 67.5 / 91.5 / 90.0 on 2 CPU cores, 31.5 / 67.0 / 91.4 /
            89.5 on an H100: the CNN 2.5-2.6 points below the paper, outside the report-only band.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lossatlas import data as data_lib
from lossatlas import plotting
from lossatlas.results import stat
from lossatlas.train import TrainConfig, sweep

FIGURE = "Greydanus 2020, Table 1 and Fig. 3"
TABLE_TITLE = "MNIST-1D test accuracy (%), final epoch, mean +- sd over seeds"

# Greydanus (2020), Table 1: test accuracy (%) on MNIST-1D.
PAPER_ACCURACY = {"logreg": 32.0, "mlp": 68.0, "cnn": 94.0, "gru": 91.0}

MODELS = {
    "logreg": ("mlp", {"widths": ()}),
    "mlp": ("mlp", {"widths": (100, 100), "activation": "relu"}),
    "cnn": ("cnn1d", {"channels": 25}),
    "gru": ("rnn", {"cell": "gru", "hidden": 6, "bidirectional": True, "readout": "flatten"}),
}


NUM_TRAIN = 4000  # MNIST-1D's training split (5000 examples, 80% train)


@dataclasses.dataclass(frozen=True)
class Config:
    """Paper recipe; ``QUICK`` shortens it for tests and smoke runs."""

    models: tuple = ("logreg", "mlp", "cnn", "gru")
    seeds: int = 5
    seed: int = 0
    epochs: int = 200
    batch_size: int = 100
    learning_rate: float = 1e-2
    optimizer: str = "adam"
    weight_decay: float = 0.0
    num_train: int | None = None  # None = all 4000 (the paper's split)
    # full run, "matches paper": |ours - paper| <= the 95% confidence half-width of our seed mean + tolerance
    # (0.5 points: the paper reports whole percent). It was a flat +-6 points before.
    tolerance: float = 0.5

    def __post_init__(self):
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"Config.models: unknown {unknown}; known: {', '.join(MODELS)}")
        if self.epochs < 1:
            raise ValueError(f"Config.epochs must be >= 1, got {self.epochs}")
        if self.num_train is not None and not (isinstance(self.num_train, int) and
                                               self.batch_size <= self.num_train <= NUM_TRAIN):
            raise ValueError(f"Config.num_train must be None (all {NUM_TRAIN}) or an integer in "
                             f"[batch_size={self.batch_size}, {NUM_TRAIN}], got {self.num_train!r}")


QUICK = {"seeds": 2, "epochs": 25}


def train_config(cfg: Config, name: str) -> TrainConfig:
    model, model_cfg = MODELS[name]
    return TrainConfig(model=model, model_cfg=model_cfg, optimizer=cfg.optimizer,
                       learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay,
                       batch_size=cfg.batch_size, epochs=cfg.epochs)


def run(cfg: Config, key) -> dict:
    """Train every model for ``cfg.seeds`` seeds; returns per-model histories [seed, epoch]."""
    ds = data_lib.load("mnist1d")
    if cfg.num_train is not None:
        ds = ds.subset(num_train=cfg.num_train)
    out = {"models": list(cfg.models), "paper": dict(PAPER_ACCURACY)}
    for i, name in enumerate(cfg.models):
        tcfg = train_config(cfg, name)
        state, hist = sweep(tcfg, ds, seeds=cfg.seeds, key=jax.random.fold_in(key, i))
        hist = jax.device_get(hist)
        n_params = sum(int(np.prod(p.shape[1:])) for p in jax.tree_util.tree_leaves(state.params))
        out[name] = {k: np.asarray(v) for k, v in hist.items()}
        out[name]["num_params"] = np.asarray(n_params)
    return out


def _final(res, name, key="test_acc"):
    return 100.0 * res[name][key][:, -1]


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    for name in res["models"]:
        acc = _final(res, name)
        rows.append({
            "model": name,
            "params": int(res[name]["num_params"]),
            "test acc (ours)": stat(acc, digits=1),
            "test acc (paper)": PAPER_ACCURACY[name],
            "diff": round(float(acc.mean() - PAPER_ACCURACY[name]), 1),
            "train acc": round(float(_final(res, name, 'train_acc').mean()), 1),
            "seeds": int(acc.shape[0]),
            "epochs": int(res[name]["test_acc"].shape[-1]),
        })
    return rows


def t_quantile_975(df: int) -> float:
    """Two-sided 95% Student-t quantile (scipy's, the tests' dependency)."""
    from scipy import stats
    return float(stats.t.ppf(0.975, df))


def checks(res: dict, cfg: Config) -> list[dict]:
    """Quick runs: the paper's ordering of models. Full runs: each model near the paper."""
    out = []
    accs = {n: _final(res, n) for n in res["models"]}
    means = {n: float(a.mean()) for n, a in accs.items()}
    sds = {n: float(a.std(ddof=1)) if a.size > 1 else float("nan") for n, a in accs.items()}
    order = [n for n in ("logreg", "mlp", "gru", "cnn") if n in means]
    for a, b in zip(order[:-1], order[1:]):
        if (a, b) == ("gru", "cnn"):
            continue  # the paper's GRU and CNN are within 3 points; no ordering claimed
        gap = means[b] - means[a]
        se = float(np.sqrt(sds[a] ** 2 / accs[a].size + sds[b] ** 2 / accs[b].size))
        out.append({"name": f"{a} < {b}", "value": [means[a], means[b]], "passed": means[a] < means[b],
                    "paper": f"{PAPER_ACCURACY[a]:.0f} < {PAPER_ACCURACY[b]:.0f}",
                    "detail": f"{a} {means[a]:.1f}% vs {b} {means[b]:.1f}% (paper {PAPER_ACCURACY[a]:.0f} vs "
                              f"{PAPER_ACCURACY[b]:.0f}); margin {gap:+.1f} points = {gap / se:.0f} standard errors of the "
                              f"difference ({se:.2f}); seeds {a} " + " / ".join(f"{v:.1f}" for v in accs[a])
                              + f", {b} " + " / ".join(f"{v:.1f}" for v in accs[b])})
    for n, m in means.items():
        out.append({"name": f"{n} above chance", "value": m, "passed": m > 20.0,
                    "detail": f"{m:.1f}% > 20% (chance 10%); margin {m - 20.0:+.1f} points, lowest seed {accs[n].min():.1f}%"})
    if cfg.epochs >= 200 and cfg.num_train is None:
        for n, m in means.items():
            d = m - PAPER_ACCURACY[n]
            # 95% confidence half-width of our mean over seeds, plus 0.5 for the paper's rounding to whole percent
            tol = (t_quantile_975(accs[n].size - 1) * sds[n] / np.sqrt(accs[n].size) + cfg.tolerance
                   if accs[n].size > 1 else np.inf)
            # Report-only: the README's full runs (5 seeds, 2 CPU cores and H100) put the CNN 2.5 / 2.6 points
            # below the paper, outside this interval (+-2.0 / +-1.5), and the GRU at 1.5 vs +-1.5 on the H100:
            # a paper claim our full runs refute, stated as failed where it fails (lossatlas.checks).
            out.append({"name": f"{n} matches paper", "value": d, "passed": bool(abs(d) <= tol), "gating": False,
                        "paper": PAPER_ACCURACY[n],
                        "detail": f"{m:.1f}% vs paper {PAPER_ACCURACY[n]:.0f}% (diff {d:+.1f}; allowed +-{tol:.1f} = the 95% "
                                  f"confidence half-width of our {accs[n].size}-seed mean + {cfg.tolerance:g} for the paper's rounding)"})
    return out


def plot(res: dict, cfg: Config) -> dict:
    """Test accuracy against epoch (mean +- sd), with the paper's final numbers dashed."""
    from matplotlib.lines import Line2D

    fig, axes = plotting.figure(ncols=2, width=3.6, height=2.8)
    ax_acc, ax_loss = axes[0]
    colors = {"logreg": "tab:gray", "mlp": "tab:blue", "cnn": "tab:green", "gru": "tab:orange"}
    handles, labels = [], []
    for name in res["models"]:
        acc = 100.0 * res[name]["test_acc"]
        epochs = np.arange(1, acc.shape[-1] + 1)
        line = plotting.mean_band(ax_acc, epochs, acc, color=colors[name])
        ax_acc.axhline(PAPER_ACCURACY[name], ls="--", lw=0.9, color=line.get_color(), alpha=0.7)
        plotting.mean_band(ax_loss, epochs, res[name]["test_loss"], color=colors[name], band=False)
        plotting.mean_band(ax_loss, epochs, res[name]["train_loss"], color=colors[name], ls=":", band=False)
        handles.append(Line2D([], [], color=colors[name], lw=1.6))
        labels.append(f"{name}: {acc[:, -1].mean():.1f}% (paper {PAPER_ACCURACY[name]:g}%)")
    seeds = res[res["models"][0]]["test_acc"].shape[0]
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(0, 100))
    ax_acc.set_title(f"test accuracy, mean +- sd over {seeds} seeds", fontsize=9)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy (nats), seed mean")
    ax_loss.set_title("test and train loss", fontsize=9)
    plotting.log_axis(ax_loss, "y")
    handles += [Line2D([], [], color="0.3", ls="--", lw=0.9), Line2D([], [], color="0.3"),
                Line2D([], [], color="0.3", ls=":")]
    labels += ["(a) paper's final accuracy", "(b) test loss", "(b) train loss"]
    plotting.figure_legend(fig, handles, labels, where="right", fontsize=8)
    plotting.panel_letters(axes)
    fig.tight_layout()
    return {"mnist1d_benchmark": fig}

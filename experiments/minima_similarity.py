"""Minima of wide networks are all alike: the spread of final test loss over seeds shrinks with width.

Choromanska, Henaff, Mathieu, Ben Arous & LeCun 2015 ("The Loss Surfaces of Multilayer
Networks", sec. 6 and Fig. 2) train one-hidden-layer networks of increasing size on (scaled
down) MNIST from many random initialisations and find that the test losses of the minima SGD
reaches concentrate in a narrow band as the network grows (their spin-glass picture: for
large networks the low-lying critical points have nearly the same loss), while small
networks land in minima of widely varying quality; the typical loss also falls with size.

Here a one-hidden-layer ReLU MLP of every width in ``widths`` is trained on ``dataset``
from ``seeds`` random initialisations with SGD + momentum for ``epochs`` epochs. Seeds are
a vmap axis (``lossatlas.train.sweep``): hundreds of seeds are one compiled program per
width. The final test loss of every seed gives one histogram per width (as the paper's
Fig. 2), and its spread (standard deviation and interquartile range) and mean per width.

Command:    lossatlas run minima_similarity [--quick]
Checks:     the spread of the final test loss shrinks with width (std at the widest net over the
            narrowest's: the upper end of its 95% bootstrap interval over seeds < 0.5; Choromanska
            et al. show the spread shrinking but give no factor, so the paper's claim is < 1 and
            the 0.5 has no source: the record says so); so does the spread relative to the mean
            (std / mean: upper end of the ratio's interval < 1), since the mean falls too; the mean
            final test loss falls from the narrowest to the widest net (mean ratio widest /
            narrowest: upper end of its 95% bootstrap interval < 1). Report-only "original check":
            the first version's std ratio < 0.5 and Spearman(width, std) <= -0.7.
Runtime:    quick (digits, widths 4 / 16 / 64, 32 seeds, 6 epochs), 2026-11-30, 2 shared CPU cores
            under load: 3 s (8 s wall with start-up; JAX's compilation cache warm). Full (widths
            2-128, 256 seeds, 20 epochs): 404 s on 2 CPU cores under load (README; measured before
            the 2026-11-30 engine refactor).
Result:     quick, 2026-11-30 (seed 0), final test loss over 32 seeds at width 4 / 16 / 64: mean
            1.241 / 0.244 / 0.189, std 0.369 / 0.022 / 0.0097; std ratio w64 / w4 0.026 (95%
            bootstrap [0.020, 0.036] < 0.5); std / mean 0.297 / 0.090 / 0.051, ratio 0.172 ([0.131,
            0.238] < 1); mean ratio w64 / w4 0.153 ([0.138, 0.171] < 1); original check (ratio
            0.026, Spearman -1.00): report-only PASS; no run diverged. All checks pass. Full run (README; before the refactor),
            width 2 / 4 / 8 / 16 / 32 / 64 / 128: mean 1.594 / 0.771 / 0.251 / 0.149 / 0.137 /
            0.130 / 0.124, std 0.464 / 0.381 / 0.128 / 0.016 / 0.012 / 0.011 / 0.010.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lossatlas import plotting
from lossatlas.train import TrainConfig, sweep

from . import kit

FIGURE = "Choromanska et al. 2015, Fig. 2"
TABLE_TITLE = "Spread of final test loss over seeds vs width (Choromanska et al. 2015)"

DATASETS = ("digits", "mnist1d")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "digits"
    widths: tuple = (2, 4, 8, 16, 32, 64, 128)
    learning_rate: float = 0.05       # SGD with momentum 0.9
    batch_size: int = 64
    epochs: int = 20
    bins: int = 40
    seeds: int = 256
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Config.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if len(self.widths) < 2 or min(self.widths) < 1 or list(self.widths) != sorted(set(self.widths)):
            raise ValueError(f"Config.widths must be at least two increasing positive widths, got {self.widths!r}")
        if self.bins < 2:
            raise ValueError(f"Config.bins must be >= 2, got {self.bins!r}")
        if self.seeds < 8:
            raise ValueError(f"Config.seeds must be >= 8 for a spread over seeds, got {self.seeds!r}")


QUICK = {"widths": (4, 16, 64), "seeds": 32, "epochs": 6}


def run(cfg: Config, key) -> dict:
    ds = kit.dataset(cfg)
    out = {k: [] for k in ("test_loss", "train_loss", "test_acc", "diverged")}   # train_loss: last epoch's minibatch mean
    for i, w in enumerate(cfg.widths):   # one compiled program per width; seeds are its vmap axis
        tcfg = TrainConfig(model="mlp", model_cfg={"widths": (w,)}, optimizer="momentum", learning_rate=cfg.learning_rate,
                           batch_size=cfg.batch_size, epochs=cfg.epochs, eval_train=False)
        _, h = sweep(tcfg, ds, seeds=cfg.seeds, key=jax.random.fold_in(key, i))
        out["test_loss"].append(np.asarray(h["test_loss"][:, -1]))
        steps = len(h["loss"][0]) // cfg.epochs
        out["train_loss"].append(np.asarray(h["loss"][:, -steps:]).mean(1))
        out["test_acc"].append(np.asarray(h["test_acc"][:, -1]))
        out["diverged"].append(np.asarray(h["diverged_at"]) >= 0)
    return {k: np.stack(v) for k, v in out.items()}           # [widths, seeds]


def _stats(res):
    x = res["test_loss"]
    q75, q25 = np.nanpercentile(x, [75, 25], axis=1)
    return {"mean": np.nanmean(x, 1), "std": np.nanstd(x, 1), "iqr": q75 - q25,
            "min": np.nanmin(x, 1), "max": np.nanmax(x, 1)}


def _spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def table(res: dict, cfg: Config) -> list[dict]:
    st = _stats(res)
    return [{"width": w, "seeds": cfg.seeds, "mean test loss": round(float(st["mean"][i]), 4),
             "std": round(float(st["std"][i]), 4), "IQR": round(float(st["iqr"][i]), 4),
             "min": round(float(st["min"][i]), 3), "max": round(float(st["max"][i]), 3),
             "mean test acc": round(float(np.nanmean(res["test_acc"][i])), 3),
             "mean train loss (last epoch)": round(float(np.nanmean(res["train_loss"][i])), 4),
             "diverged": int(res["diverged"][i].sum())}
            for i, w in enumerate(cfg.widths)]


def bootstrap_ratio(x_a, x_b, stat, num: int = 2000, seed: int = 0):
    """Percentile bootstrap of ``stat(x_b) / stat(x_a)`` (seeds resampled independently): (ratio, 2.5%, 97.5%)."""
    rng = np.random.default_rng(seed)
    x_a, x_b = x_a[np.isfinite(x_a)], x_b[np.isfinite(x_b)]
    ia = rng.integers(0, x_a.size, (num, x_a.size))
    ib = rng.integers(0, x_b.size, (num, x_b.size))
    r = stat(x_b[ib]) / stat(x_a[ia])
    lo, hi = np.percentile(r, [2.5, 97.5])
    return float(stat(x_b[None])[0] / stat(x_a[None])[0]), float(lo), float(hi)


def _sd(x):
    return x.std(-1)


def _cv(x):
    return x.std(-1) / x.mean(-1)


def _mean(x):
    return x.mean(-1)


def checks(res: dict, cfg: Config) -> list[dict]:
    st = _stats(res)
    x = res["test_loss"]
    ratio, lo, hi = bootstrap_ratio(x[0], x[-1], _sd)
    cv = st["std"] / st["mean"]
    rcv, rlo, rhi = bootstrap_ratio(x[0], x[-1], _cv)
    rmean, mlo, mhi = bootstrap_ratio(x[0], x[-1], _mean)
    rho = _spearman(np.asarray(cfg.widths, float), st["std"])
    w0, w1 = cfg.widths[0], cfg.widths[-1]
    return [
        # Choromanska et al. 2015 (sec. 6, the test-loss histograms per network size) show the spread over
        # initialisations shrinking with size but give no factor: the paper's claim is a ratio < 1. The 0.5
        # (the spread at least halves from the narrowest to the widest net) came from no paper or theory; it
        # has been in the check since its first version (cc07ab5).
        {"name": "the spread of final test loss shrinks with width", "value": ratio, "passed": bool(hi < 0.5),
         "paper": "spread of test losses over initialisations shrinks with network size (Choromanska et al. 2015, "
                  "sec. 6; no factor given)",
         "tolerance": "upper end of the 95% bootstrap interval < 0.5 (0.5 unsourced; the paper's claim is < 1)",
         "detail": f"std over {cfg.seeds} seeds: " + ", ".join(f"w{w}: {s:.4f}" for w, s in zip(cfg.widths, st["std"]))
                   + f"; std(w{w1}) / std(w{w0}) = {ratio:.3f}, 95% bootstrap interval [{lo:.3f}, {hi:.3f}] "
                   f"(upper end < 0.5: a factor with no paper or theory source, in the check since its first "
                   f"version; the paper shows the spread shrinking without a factor, i.e. < 1); Spearman(width, "
                   f"std) {rho:.2f} "
                   f"(reported); IQR " + ", ".join(f"{q:.4f}" for q in st["iqr"])},
        # The first version (cc07ab5) also required Spearman(width, std) <= -0.7; 6f9b349 dropped it (it had
        # passed) for the bootstrap interval. Kept as first written, report-only (-0.7 unsourced as well).
        {"name": "original check: the spread shrinks with width (ratio < 0.5 and Spearman <= -0.7)", "value": ratio,
         "passed": bool(ratio < 0.5 and rho <= -0.7), "gating": False,
         "tolerance": "std(widest) / std(narrowest) < 0.5 and Spearman(width, std) <= -0.7",
         "claim": "original check (replaced by the bootstrap interval above): std ratio widest / narrowest < 0.5 "
                  "and the std falls with width in rank order (Spearman <= -0.7)",
         "detail": f"std ratio {ratio:.3f} (< 0.5? {ratio < 0.5}), Spearman(width, std) {rho:.2f} (<= -0.7? "
                   f"{rho <= -0.7}); neither bar has a paper or theory source"},
        {"name": "the spread relative to the mean shrinks with width", "value": rcv, "passed": bool(rhi < 1.0),
         "tolerance": "upper end of the 95% bootstrap interval < 1",
         "detail": "std / mean: " + ", ".join(f"w{w}: {c:.3f}" for w, c in zip(cfg.widths, cv))
                   + f"; ratio w{w1} / w{w0} = {rcv:.3f}, 95% bootstrap interval [{rlo:.3f}, {rhi:.3f}] (upper end < 1); "
                   "IQR / median: " + ", ".join(f"{q / m:.3f}" for q, m in zip(st["iqr"], np.nanmedian(x, 1)))},
        # The typical loss also falls with size (Choromanska et al. 2015, sec. 6): ratio of the means < 1, with
        # the same percentile bootstrap over seeds as the spread checks (upper end of the 95% interval < 1).
        # Before 2026-11-30 this compared the two seed means without an interval.
        {"name": "the mean final test loss falls with width", "value": rmean,
         "passed": bool(mhi < 1.0), "tolerance": "upper end of the 95% bootstrap interval of mean ratio < 1",
         "paper": "the typical test loss falls with network size (Choromanska et al. 2015, sec. 6)",
         "detail": "mean test loss " + ", ".join(f"w{w}: {m:.4f}" for w, m in zip(cfg.widths, st["mean"]))
                   + f"; mean(w{w1}) / mean(w{w0}) = {rmean:.3f}, 95% bootstrap interval over seeds [{mlo:.3f}, "
                   f"{mhi:.3f}] (upper end < 1); difference {st['mean'][-1] - st['mean'][0]:+.4f}"},
    ]


def plot(res: dict, cfg: Config) -> dict:
    st = _stats(res)
    fig, axes = plotting.figure(ncols=2, width=4.2, height=3.2)
    ax = axes[0, 0]
    x = res["test_loss"]
    lo, hi = np.nanmin(x), np.nanmax(x)
    bins = np.geomspace(lo, hi, cfg.bins + 1) if lo > 0 else np.linspace(lo, hi, cfg.bins + 1)
    cmap = plotting.plt.get_cmap("viridis")
    for i, w in enumerate(cfg.widths):
        ax.hist(x[i][np.isfinite(x[i])], bins=bins, histtype="stepfilled", alpha=0.45,
                color=cmap(i / max(1, len(cfg.widths) - 1)), label=f"{w}")
    ax.set(xlabel="final test loss (cross-entropy)", ylabel=f"seeds (of {cfg.seeds})",
           title=f"{cfg.seeds} seeds per width")
    if lo > 0:
        plotting.log_axis(ax, "x")
    plotting.legend_outside(ax, "right", title="width")
    ax = axes[0, 1]
    ax.plot(cfg.widths, st["std"], "o-", label="std over seeds")
    ax.plot(cfg.widths, st["iqr"], "s--", label="IQR over seeds")
    ax.plot(cfg.widths, st["mean"], "^:", color="k", label="mean")
    ok = all(c["passed"] for c in checks(res, cfg) if c.get("gating", True))
    ax.set(yscale="log", xlabel="hidden width", ylabel="final test loss statistic",
           title="spread " + ("shrinks" if ok else "does NOT shrink as expected") + " with width")
    plotting.log_xticks(ax, cfg.widths)
    plotting.log_axis(ax, "y")
    plotting.legend_outside(ax, "right")
    plotting.panel_letters(axes)
    fig.suptitle(f"One-hidden-layer MLPs on {cfg.dataset}, SGD+momentum, {cfg.epochs} epochs", fontsize=10)
    fig.tight_layout()
    return {"minima_similarity": fig}

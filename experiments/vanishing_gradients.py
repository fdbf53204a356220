"""Vanishing gradients through depth, and the fixes (Glorot & Bengio 2010; He et al. 2016).

Three views of deep MLPs on MNIST-1D:
  1. at initialisation, the gradient norm of every layer's kernel against its depth,
     for sigmoid/tanh/ReLU with naive small-normal, Glorot, He and orthogonal init,
     plain vs residual + batch norm (log scale, float64 so tiny norms don't underflow);
  2. Glorot & Bengio-style histograms of activations and back-propagated gradients
     per layer, for tanh with naive vs Glorot init;
  3. a trainability map: final training loss against depth for plain, batch-norm
     and residual + batch-norm nets (He et al. 2016's degradation problem), with Adam;
     at the deepest depth the plain and residual batch-norm nets are also trained with
     SGD + heavy-ball momentum (He et al.'s optimiser: lr 0.1, momentum 0.9), so the
     result does not hinge on Adam. The residual MLP ends in BN + ReLU before the
     readout (He et al. 2016b's pre-activation design); without that final norm the
     depth-50 residual net stalled under SGD-momentum (train loss 2.6-46 after 5
     epochs over lr 0.003-0.1, above chance) while it trained under Adam.
Every variant's seeds run as one vmapped program.

Command:    lossatlas run vanishing_gradients [--quick]
Checks:     20-layer sigmoid + naive init: first-layer gradient >= 1e3x below the last;
            He + residual + batch norm: within 10x; at depth 50 the plain (batch-norm)
            net stays near chance (>= 0.9 ln 10) while the residual net trains (<= 0.7 ln 10),
            with Adam and with SGD-momentum; the SGD-momentum residual net's loss is within
            1.5x of Adam's.
Runtime:    quick (depth 50 only, plain vs residual+BN, 3 seeds, 5 epochs, Adam and SGD-momentum),
            2026-11-30, 2 shared CPU cores under load: 23 s (29 s wall with start-up; JAX's
            compilation cache warm). Full (depths 2-100, 5 variants, 20 epochs): 670 s on CPU
            (README, "full, CPU"; measured before the 2026-11-30 engine refactor and the residual
            final norm).
Result:     quick, 2026-11-30 (seed 0): first/last kernel-gradient ratio at init, depth 20:
            sigmoid+naive 1.5e-32, tanh+naive 1.8e-20, sigmoid+Glorot 6.4e-13, tanh+Glorot 0.94,
            ReLU+He 0.34, ReLU+orthogonal 0.24, ReLU+He+residual+BN 4.7; final train loss at depth
            50, Adam: plain+BN 2.443 +- 0.074 (chance ln 10 = 2.30) vs residual+BN 1.103 +- 0.010;
            SGD-momentum: 2.305 +- 0.019 vs 1.096 +- 0.037 (1.0x Adam's). All checks pass. Full run
            (README; before the refactor), train loss at depth 100: plain ReLU+He+BN 6.38, plain
            ReLU+He 2.03, residual+BN 0.62, residual+LN 1.09, sigmoid+naive 2.30 from depth 5 on.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import data as data_lib
from lossatlas import models, plotting
from lossatlas.results import stat
from lossatlas.settings import enable_x64
from lossatlas.grads import flow_fn, param_names
from lossatlas.train import TrainConfig, sweep

FIGURE = "Glorot & Bengio 2010, Fig. 6-7; He et al. 2016, Fig. 1"
TABLE_TITLE = "Vanishing gradients: first/last layer gradient ratio at init, and trainability by depth"

# name -> mlp fields (besides widths)
INIT_VARIANTS = {
    "sigmoid, naive": dict(activation="sigmoid", init="naive"),
    "sigmoid, glorot": dict(activation="sigmoid", init="glorot"),
    "tanh, naive": dict(activation="tanh", init="naive"),
    "tanh, glorot": dict(activation="tanh", init="glorot"),
    "relu, he": dict(activation="relu", init="he"),
    "relu, orthogonal": dict(activation="relu", init="orthogonal"),
    "relu, he, residual+BN": dict(activation="relu", init="he", residual=True, norm="batch"),
}
TRAIN_VARIANTS = {
    "sigmoid, naive": dict(activation="sigmoid", init="naive"),
    "relu, he": dict(activation="relu", init="he"),
    "relu, he, BN (plain)": dict(activation="relu", init="he", norm="batch"),
    "relu, he, residual+BN": dict(activation="relu", init="he", residual=True, norm="batch"),
    "relu, he, residual+LN": dict(activation="relu", init="he", residual=True, norm="layer"),
}
PLAIN, RESIDUAL = "relu, he, BN (plain)", "relu, he, residual+BN"
SGD = ", SGD-momentum"  # suffix of the variants trained with SGD + momentum instead of Adam


@dataclasses.dataclass(frozen=True)
class Config:
    width: int = 64
    flow_depth: int = 20
    flow_batch: int = 512
    hist_depth: int = 5
    train_depths: tuple = (2, 5, 10, 20, 50, 100)
    train_variants: tuple = tuple(TRAIN_VARIANTS)
    deep_only_variants: tuple = ()  # variants trained only at the deepest depth (quick mode)
    epochs: int = 20
    learning_rate: float = 1e-3  # Adam
    sgd_variants: tuple = (PLAIN, RESIDUAL)  # also trained with SGD-momentum at the deepest depth
    sgd_learning_rate: float = 0.1  # He et al. 2016's SGD: lr 0.1, momentum 0.9
    sgd_momentum: float = 0.9
    batch_size: int = 100
    seeds: int = 3
    seed: int = 0

    def __post_init__(self):
        bad = [v for v in self.train_variants + self.deep_only_variants + self.sgd_variants
               if v not in TRAIN_VARIANTS]
        if bad:
            raise ValueError(f"Config.train_variants: unknown {bad}; known: {list(TRAIN_VARIANTS)}")
        if self.flow_depth < 2 or min(self.train_depths) < 1:
            raise ValueError("Config.flow_depth must be >= 2 and train_depths >= 1")


# Quick mode trains only what its checks compare (plain vs residual + BN at depth 50, Adam and
# SGD-momentum), with 3 seeds: four programs, and a seed more behind the checks' means.
QUICK = {"train_depths": (50,), "train_variants": (PLAIN, RESIDUAL), "deep_only_variants": (),
         "epochs": 5, "seeds": 3, "flow_batch": 256}


def _init_flow(name, fields, depth, cfg, x, y, keys):
    """Per-seed flow statistics at initialisation, in float64 (one vmapped call)."""
    model = models.get_model("mlp", widths=(cfg.width,) * depth, num_outputs=10, **fields)
    with enable_x64():
        x64 = jnp.asarray(x, jnp.float64)
        variables = jax.vmap(lambda k: model.init(k, x64[:2]))(keys)
        variables = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), variables)
        state = {k: v for k, v in variables.items() if k == "batch_stats"}
        f = flow_fn(model, train=bool(state))
        out = jax.vmap(f, in_axes=(0, 0, None, None))(variables["params"], state, x64, jnp.asarray(y))
        names = param_names(model, variables["params"])  # flow's parameter order
        idx = [i for i, n in enumerate(names) if n.startswith("dense_")]
        return jax.device_get({"kernel_grad_norm": out["grad_norm"][:, np.asarray(idx)],
                               "activations": out["activations"], "backprop": out["backprop"],
                               "act_saturated": out["act_saturated"]})


def run(cfg: Config, key) -> dict:
    ds = data_lib.load("mnist1d")
    x, y = ds.x_train[: cfg.flow_batch], ds.y_train[: cfg.flow_batch]
    k_flow, k_hist, k_train = jax.random.split(key, 3)
    keys = jax.random.split(k_flow, cfg.seeds)
    out = {"flow": {}, "hist": {}, "train": {}}
    for name, fields in INIT_VARIANTS.items():
        r = _init_flow(name, fields, cfg.flow_depth, cfg, x, y, keys)
        out["flow"][name] = np.asarray(r["kernel_grad_norm"])  # [seed, layer]
    for name in ("tanh, naive", "tanh, glorot"):
        r = _init_flow(name, INIT_VARIANTS[name], cfg.hist_depth, cfg, x, y, jax.random.split(k_hist, 1))
        out["hist"][name] = {
            "activations": np.stack([np.asarray(r["activations"][f"layer_{i}"][0]) for i in range(cfg.hist_depth)]),
            "backprop": np.stack([np.asarray(r["backprop"][f"layer_{i}"][0]) for i in range(cfg.hist_depth)]),
        }
    deepest = max(cfg.train_depths + ((50,) if cfg.deep_only_variants else ()))
    adam = dict(optimizer="adam", learning_rate=cfg.learning_rate)
    sgd = dict(optimizer="momentum", learning_rate=cfg.sgd_learning_rate, momentum=cfg.sgd_momentum)
    plan = [(v, d, adam) for v in cfg.train_variants for d in cfg.train_depths]
    plan += [(v, deepest, adam) for v in cfg.deep_only_variants if (v, deepest, adam) not in plan]
    plan += [(v, max(cfg.train_depths), sgd) for v in cfg.sgd_variants]  # appended: Adam's keys unchanged
    for i, (variant, depth, opt) in enumerate(plan):
        # Training uses the scanned-layer MLP: the same function family, compile time flat in depth.
        tcfg = TrainConfig(model="mlp", model_cfg=dict(widths=(cfg.width,) * depth, scan_layers=depth > 2,
                                                       **TRAIN_VARIANTS[variant]),
                           batch_size=cfg.batch_size, epochs=cfg.epochs, **opt)
        _, hist = sweep(tcfg, ds, seeds=cfg.seeds, key=jax.random.fold_in(k_train, i))
        hist = jax.device_get(hist)
        name = variant + (SGD if opt is sgd else "")
        out["train"].setdefault(name, {})[str(depth)] = {
            "train_loss": np.asarray(hist["train_loss"][:, -1]), "train_acc": np.asarray(hist["train_acc"][:, -1]),
            "test_acc": np.asarray(hist["test_acc"][:, -1]), "curve": np.asarray(hist["train_loss"])}
    return out


def _ratio(g):
    """First over last hidden layer's kernel gradient norm, geometric mean over seeds."""
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(g[:, 0]) - np.log(g[:, -1]))))


def _deep(res, cfg, suffix=""):
    """The deepest depth the residual net was trained at, and the plain/residual results there."""
    depth = str(max(int(d) for d in res["train"][RESIDUAL]))
    get = lambda v: res["train"].get(v + suffix, {}).get(depth)  # noqa: E731
    return depth, get(PLAIN), get(RESIDUAL)


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    for name, g in res["flow"].items():
        rows.append({"variant": name, "what": f"grad ratio first/last at depth {cfg.flow_depth} (init)",
                     "value": float(_ratio(g)), "train acc": ""})
    for name, by_depth in res["train"].items():
        for depth in sorted(by_depth, key=int):
            r = by_depth[depth]
            rows.append({"variant": name, "what": f"final train loss, depth {depth}",
                         "value": stat(r["train_loss"], digits=3), "train acc": round(float(r["train_acc"].mean()), 2)})
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    chance = float(np.log(10))
    bad, good = _ratio(res["flow"]["sigmoid, naive"]), _ratio(res["flow"]["relu, he, residual+BN"])
    depth, plain, resid = _deep(res, cfg)
    out = [
        {"name": "sigmoid+naive vanishes", "value": bad, "passed": bad <= 1e-3,
         "detail": f"depth {cfg.flow_depth}: first/last layer gradient = {bad:.2e} (<= 1e-3)"},
        {"name": "He+residual+BN keeps gradients", "value": good, "passed": 0.1 <= good <= 10,
         "detail": f"depth {cfg.flow_depth}: first/last layer gradient = {good:.3g} (within 10x)"},
    ]
    for suffix, opt in (("", f"Adam lr {cfg.learning_rate:g}"),
                        (SGD, f"SGD lr {cfg.sgd_learning_rate:g} momentum {cfg.sgd_momentum:g}")):
        _, plain_o, resid_o = _deep(res, cfg, suffix)
        if int(depth) >= 50 and plain_o is not None and resid_o is not None:
            p, r = float(plain_o["train_loss"].mean()), float(resid_o["train_loss"].mean())
            out.append({"name": f"depth {depth}: plain fails, residual trains" + (" (SGD-momentum)" if suffix else ""),
                        "value": [p, r], "passed": p >= 0.9 * chance and r <= 0.7 * chance,
                        "detail": f"{opt}, final train loss plain+BN {p:.3f} (>= 0.9 ln10 = {0.9 * chance:.2f}) vs "
                                  f"residual+BN {r:.3f} (<= 0.7 ln10 = {0.7 * chance:.2f})"})
    _, _, resid_sgd = _deep(res, cfg, SGD)
    if int(depth) >= 50 and resid is not None and resid_sgd is not None:
        a, s = float(resid["train_loss"].mean()), float(resid_sgd["train_loss"].mean())
        out.append({"name": f"depth {depth}: residual+BN trains under SGD-momentum as under Adam", "value": [s, a],
                    "passed": s <= 1.5 * a,
                    "detail": f"final train loss SGD-momentum {s:.3f} <= 1.5 x Adam's {a:.3f} = {1.5 * a:.3f}"})
    return out


#: One colour per variant, the same in every panel (a variant in both panels keeps its colour).
VARIANT_COLORS = {name: f"C{i}" for i, name in enumerate(dict.fromkeys([*INIT_VARIANTS, *TRAIN_VARIANTS]))}
SGD_OFFSET = 1.06   # SGD-momentum points sit this factor right of Adam's at the same depth, so both show


def plot(res: dict, cfg: Config) -> dict:
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    figs = {}
    fig, axes = plotting.figure(ncols=2, width=3.6, height=2.9)
    ax = axes[0, 0]
    shown = []
    for name, g in res["flow"].items():
        layers = np.arange(1, g.shape[1] + 1)
        gm = np.exp(np.mean(np.log(np.maximum(g, 1e-300)), axis=0))
        ax.plot(layers, gm, marker="o", ms=2.5, color=VARIANT_COLORS[name])
        shown.append(name)
    ax.set(xlabel="layer (input -> output)", ylabel="||dL/dW_layer|| at init (float64)",
           title=f"gradient at init, {cfg.flow_depth} layers")
    ax.set_yscale("log")       # tens of decades: a label every few decades, not every one
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, numticks=8))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    ax = axes[0, 1]
    all_depths = sorted({int(d) for v in res["train"].values() for d in v})
    for name, by_depth in res["train"].items():
        sgd = name.endswith(SGD)
        variant = name[: -len(SGD)] if sgd else name
        depths = sorted(by_depth, key=int)
        d = np.array([int(v) for v in depths]) * (SGD_OFFSET if sgd else 1.0)
        losses = np.stack([by_depth[k]["train_loss"] for k in depths], axis=1)  # [seed, depth]
        m, sd = losses.mean(0), losses.std(0)
        color = VARIANT_COLORS[variant]
        ax.errorbar(d, m, yerr=sd, color=color, marker="s" if sgd else "o", ms=4, ls="--" if sgd else "-",
                    mfc="white" if sgd else color, capsize=2, lw=1.2)
        shown.append(variant)
    ax.axhline(np.log(10), ls=":", color="gray", lw=1)
    if len(all_depths) > 1:
        plotting.log_xticks(ax, all_depths)
    else:
        ax.set_xticks(all_depths)
        ax.set_xlim(all_depths[0] * 0.9, all_depths[0] * 1.1 * SGD_OFFSET)
    ax.set(xlabel="depth (hidden layers)", ylabel=f"train loss after {cfg.epochs} epochs",
           title=f"trainability ({cfg.seeds} seeds, mean $\\pm$ sd)")
    names = list(dict.fromkeys(shown))
    handles = [Line2D([], [], color=VARIANT_COLORS[n], marker="o", ms=3) for n in names] + [
        Line2D([], [], color="k", marker="o", ms=4, ls="-"),
        Line2D([], [], color="k", marker="s", ms=4, ls="--", mfc="white"),
        Line2D([], [], color="gray", ls=":", lw=1)]
    labels = names + [f"(b) Adam lr {cfg.learning_rate:g}",
                      f"(b) SGD lr {cfg.sgd_learning_rate:g}, momentum {cfg.sgd_momentum:g}", "(b) chance (ln 10)"]
    plotting.panel_letters(axes, title_size=10)
    fig.tight_layout()
    plotting.figure_legend(fig, handles, labels, where="below", ncol=3)
    figs["vanishing_gradients"] = fig

    fig, axes = plotting.figure(ncols=2, nrows=2, width=3.2, height=2.3, sharex="row", sharey="row")
    kinds = (("activations", "activation value"), ("backprop", "back-propagated gradient dL/dh"))
    for row, (kind, xlabel) in enumerate(kinds):
        lim = max(np.percentile(np.abs(res["hist"][n][kind]), 99.5) for n in ("tanh, naive", "tanh, glorot")) or 1.0
        bins = np.linspace(-lim, lim, 101)          # one binning per row: the two inits compare bin by bin
        for col, name in enumerate(("tanh, naive", "tanh, glorot")):
            ax, vals = axes[row, col], res["hist"][name][kind]
            for i in range(vals.shape[0]):
                ax.hist(vals[i].ravel(), bins=bins, histtype="step", density=True, color=f"C{i}")
            ax.set_yscale("log")
            ax.text(0.98, 0.97, "sd by layer:\n" + ", ".join(f"{v.std():.2g}" for v in vals), transform=ax.transAxes,
                    ha="right", va="top", fontsize=6.5)
            ax.set_xlabel(xlabel)
            if row == 0:
                ax.set_title(f"tanh, {name.split(', ')[1]} init, {cfg.hist_depth} layers")
            if col == 0:
                ax.set_ylabel(f"density ({kind})")
            ax.tick_params(labelleft=True)
    for row in range(2):
        lo, hi = axes[row, 0].get_ylim()
        axes[row, 0].set_ylim(lo, hi * (hi / lo) ** 0.4)      # an empty band on top for the sd text
        plotting.log_axis(axes[row, 0], "y")
    plotting.panel_letters(axes, title_size=10)
    fig.tight_layout()
    plotting.figure_legend(fig, [Line2D([], [], color=f"C{i}") for i in range(cfg.hist_depth)],
                           [f"layer {i + 1}" for i in range(cfg.hist_depth)], where="below")
    figs["glorot_bengio_histograms"] = fig
    return figs

"""Error specificity: the gradient of a class's mistakes corrects that class.

On a briefly trained MLP classifier (MNIST-1D by default, or digits), with the
misclassified training examples of each class c (``grads.class_gradients`` with
``mask = prediction != label``):

  1. Readout concentration: the share of the squared readout-kernel gradient norm
     that falls in column c (the output unit of class c; flax's Dense kernel is
     ``[in, out]``), against its algebraic floor 1/2 (not the uniform share 1/C; see Checks).
  2. Hidden-unit specificity: per class, the Pearson correlation over last-layer
     hidden units between the unit's selectivity for c (mean activation on class c
     minus mean activation on the other classes, training set) and the magnitude
     of the class-c mistake gradient (a) on the unit's readout weight to class c,
     ``|dL/dW_out[h, c]|``, (b) on the unit's whole readout row ``||dL/dW_out[h, :]||``,
     and (c) on its incoming weights ``||dL/dW_in[:, h]||``.
  3. The C x C cosine matrix of the per-class mistake gradients (all parameters):
     mean |off-diagonal| against the diagonal (1).
  4. One corrective SGD step ``theta - eta * g_c`` on class c's mistakes alone, for
     each c: the change of class c's training accuracy against the mean absolute
     change of the other classes' accuracies.

The consistency side (Fort et al. 2019; McCandlish et al. 2018):

  5. Relative error ``E||g_B - G|| / ||G||`` of minibatch gradients against the full
     training gradient: log-log slope against B ~ -1/2.
  6. Per-example gradient cosines within a class exceed those across classes.

Command:    lossatlas run error_specificity [--quick]
Checks:     mean selectivity correlation (own readout weight) > 0.3; mean |off-diagonal
            cosine| < 0.5; own-class accuracy gain (seed mean) > 0 for >= 9 of 10 classes
            (one-sided sign test p = 0.011) and > 3x the mean |change| of the other classes;
            minibatch error slope within 0.1 of -0.5; within-class alignment > between-class
            alignment. All numbers are means over seeds. The readout share of column c is no
            check: with cross-entropy and ReLU features it is >= 1/2 by algebra (the columns of
            dL/dW_out sum to zero and the other columns' inner products are >= 0), so it is
            reported against that bound and the bound is asserted in the tests as mathematics.
Runtime:    quick (MNIST-1D, MLP 64-64, 10 epochs, 4 seeds), 2026-11-30, 2 shared CPU cores under
            load: 8 s (13 s wall with start-up; JAX's compilation cache warm). Full (20 epochs, more
            batches and pairs, 4 batch sizes): not measured.
Result:     quick, 2026-11-30 (seed 0; train / test accuracy 0.69 / 0.56): selectivity-gradient
            correlation 0.434 (> 0.3; readout row 0.436, incoming weights 0.057); mean
            |off-diagonal| class cosine 0.095 (< 0.5); one corrective step raises the own class by
            +0.102, 10/10 classes > 0 (sign test p = 0.00098), others' mean |change| 0.018 (ratio
            5.5 > 3); minibatch error slope -0.496; within / between-class alignment 0.333 / -0.033;
            readout share of column c 0.80 (min 0.66; bound 1/2). All checks pass.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import losses, plotting
from lossatlas.grads import class_gradients, minibatch_gradient_error, within_between_alignment
from lossatlas.train import TrainConfig, model_fns, sweep

from . import kit

FIGURE = ("Fort et al. 2019, class stiffness; McCandlish et al. 2018, minibatch gradient noise (panel f); "
          "panels (a)-(e) have no paper figure")
TABLE_TITLE = "Error specificity: a class's mistakes correct that class (gradient structure on a trained MLP)"
DATASETS = ("mnist1d", "digits")


@dataclasses.dataclass(frozen=True)
class Config:
    dataset: str = "mnist1d"
    widths: tuple = (64, 64)
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    batch_size: int = 100
    epochs: int = 20
    correct_learning_rate: float = 0.005  # step size of the one corrective SGD step
    batch_sizes: tuple = (4, 16, 64, 256)
    num_batches: int = 64            # minibatches per batch size for the error curve
    num_pairs: int = 1000            # example pairs for within/between alignment
    seeds: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise ValueError(f"Config.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if len(self.widths) < 1 or min(self.widths) < 1:
            raise ValueError(f"Config.widths must be positive hidden widths, got {self.widths!r}")
        if len(self.batch_sizes) < 2 or min(self.batch_sizes) < 1:
            raise ValueError(f"Config.batch_sizes needs at least two positive sizes, got {self.batch_sizes!r}")
        if self.correct_learning_rate <= 0:
            raise ValueError(f"Config.correct_learning_rate must be > 0, got {self.correct_learning_rate!r}")


QUICK = {"epochs": 10, "seeds": 4, "num_batches": 32, "num_pairs": 400, "batch_sizes": (4, 32, 256)}


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


def run(cfg: Config, key) -> dict:
    k_train, k_err, k_pair = jax.random.split(key, 3)
    ds = kit.dataset(cfg)
    C = ds.num_classes
    tcfg = TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.widths)}, optimizer=cfg.optimizer,
                       learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, epochs=cfg.epochs)
    state, hist = sweep(tcfg, ds, seeds=cfg.seeds, key=k_train)
    model = model_fns(tcfg, ds).module
    last = f"layer_{len(cfg.widths) - 1}"
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)

    def loss_fn(params, batch):
        bx, by = batch
        return losses.cross_entropy(model.apply({"params": params}, bx), by)

    @jax.jit
    def forward(params):
        out, st = model.apply({"params": params}, x, mutable=["intermediates"])
        return jnp.argmax(out, -1), st["intermediates"][last][0]

    @jax.jit
    def class_acc(params):
        pred = jnp.argmax(model.apply({"params": params}, x), -1)
        hit = jax.nn.one_hot(y, C) * (pred == y)[:, None]
        return hit.sum(0) / jnp.maximum(jax.nn.one_hot(y, C).sum(0), 1)

    @jax.jit
    def corrected_acc(params, grads):  # [C step, C class]: accuracy after a step on class c's mistakes
        step = lambda g: jax.tree_util.tree_map(lambda p, d: p - cfg.correct_learning_rate * d, params, g)
        return jax.vmap(lambda g: class_acc(step(g)))(grads)

    keys = {"share": [], "corr_own": [], "corr_row": [], "corr_in": [], "cosine": [], "counts": [],
            "acc_before": [], "acc_delta": [], "mb_error": [], "within": [], "between": [],
            "selectivity": [], "g_own": []}
    in_name = f"dense_{len(cfg.widths) - 1}"
    for s in range(cfg.seeds):
        params = jax.tree_util.tree_map(lambda a: a[s], state.params)
        pred, h = forward(params)
        wrong = pred != y
        cg = class_gradients(loss_fn, params, (x, y), y, C, mask=wrong)
        g_out = np.asarray(cg.grads["readout"]["kernel"])      # [C, H, C]
        g_in = np.asarray(cg.grads[in_name]["kernel"])          # [C, H_prev, H]
        sq = (g_out ** 2).sum(1)                                 # [C, C] energy per output column
        share = np.diagonal(sq) / sq.sum(1)
        h = np.asarray(h)
        onehot = np.eye(C)[np.asarray(y)]
        mean_c = onehot.T @ h / onehot.sum(0)[:, None]           # [C, H]
        mean_not = (1 - onehot).T @ h / (1 - onehot).sum(0)[:, None]
        sel = mean_c - mean_not
        own = np.abs(g_out[np.arange(C), :, np.arange(C)])       # [C, H]  |dL/dW_out[h, c]|
        row = np.linalg.norm(g_out, axis=2)                      # [C, H]
        inc = np.linalg.norm(g_in, axis=1)                       # [C, H]
        keys["share"].append(share)
        keys["corr_own"].append([_corr(sel[c], own[c]) for c in range(C)])
        keys["corr_row"].append([_corr(sel[c], row[c]) for c in range(C)])
        keys["corr_in"].append([_corr(sel[c], inc[c]) for c in range(C)])
        keys["cosine"].append(np.asarray(cg.cosine))
        keys["counts"].append(np.asarray(cg.counts))
        before = np.asarray(class_acc(params))
        keys["acc_before"].append(before)
        keys["acc_delta"].append(np.asarray(corrected_acc(params, cg.grads)) - before[None])
        keys["mb_error"].append(np.asarray(minibatch_gradient_error(
            loss_fn, params, (x, y), cfg.batch_sizes, jax.random.fold_in(k_err, s), cfg.num_batches)))
        al = within_between_alignment(loss_fn, params, (x, y), y, C, cfg.num_pairs, jax.random.fold_in(k_pair, s))
        keys["within"].append(float(al["within"]))
        keys["between"].append(float(al["between"]))
        keys["selectivity"].append(sel)
        keys["g_own"].append(own)
    out = {k: np.asarray(v) for k, v in keys.items()}
    hist = jax.device_get(hist)
    out["train_acc"] = np.asarray(hist["train_acc"])[:, -1]
    out["test_acc"] = np.asarray(hist["test_acc"])[:, -1]
    out["num_classes"] = np.asarray(C)
    return out


def _summary(res, cfg):
    C = int(res["num_classes"])
    off = ~np.eye(C, dtype=bool)
    d = res["acc_delta"]                                          # [S, C, C]
    own = np.diagonal(d, axis1=1, axis2=2)                        # [S, C]
    others = np.abs(d[:, off]).reshape(d.shape[0], C, C - 1).mean(-1)  # [S, C]
    slope = np.polyfit(np.log(cfg.batch_sizes), np.log(res["mb_error"].mean(0)), 1)[0]
    return {
        "C": C,
        "share": float(np.nanmean(res["share"])),           # nan where a class has no mistakes
        "corr_own": float(np.nanmean(res["corr_own"])),
        "corr_row": float(np.nanmean(res["corr_row"])),
        "corr_in": float(np.nanmean(res["corr_in"])),
        "offdiag": float(np.nanmean(np.abs(res["cosine"][:, off]))),
        "own_gain": own.mean(0),                                  # [C]
        "other_change": others.mean(0),                           # [C]
        "slope": float(slope),
        "within": float(res["within"].mean()),
        "between": float(res["between"].mean()),
    }


def table(res: dict, cfg: Config) -> list[dict]:
    s = _summary(res, cfg)
    return [
        {"measure": "trained MLP accuracy (train / test)", "value": f"{res['train_acc'].mean():.3f} / {res['test_acc'].mean():.3f}",
         "reference": f"{cfg.dataset}, widths {tuple(cfg.widths)}, {cfg.epochs} epochs, {cfg.seeds} seeds"},
        {"measure": "misclassified training examples per class", "value": " ".join(str(int(v)) for v in res["counts"].mean(0)),
         "reference": "mean over seeds"},
        {"measure": "readout gradient energy in column c", "value": f"{s['share']:.3f} (min {np.nanmin(res['share']):.3f})",
         "reference": "algebraic lower bound 1/2 (cross-entropy, ReLU features); uniform 1/C = " f"{1 / s['C']:.3f}"},
        {"measure": "corr(selectivity, |dL/dW_out[h,c]|)", "value": f"{s['corr_own']:.3f}", "reference": "0 = no specificity"},
        {"measure": "corr(selectivity, ||dL/dW_out[h,:]||)", "value": f"{s['corr_row']:.3f}", "reference": "readout row of unit h"},
        {"measure": "corr(selectivity, ||dL/dW_in[:,h]||)", "value": f"{s['corr_in']:.3f}", "reference": "incoming weights of unit h"},
        {"measure": "class-gradient cosine: mean |off-diagonal|", "value": f"{s['offdiag']:.3f}", "reference": "diagonal = 1"},
        {"measure": f"one step (eta={cfg.correct_learning_rate:g}): own-class accuracy change", "value": f"{s['own_gain'].mean():+.3f}",
         "reference": "min over classes " + f"{s['own_gain'].min():+.3f}"},
        {"measure": "same step: mean |change| of the other classes", "value": f"{s['other_change'].mean():.3f}",
         "reference": f"ratio own / others {s['own_gain'].mean() / max(s['other_change'].mean(), 1e-12):.1f}"},
        {"measure": "minibatch gradient error slope (log-log)", "value": f"{s['slope']:.3f}", "reference": "-0.5 (1/sqrt(B))"},
        {"measure": "per-example gradient cosine within / between classes", "value": f"{s['within']:.3f} / {s['between']:.3f}",
         "reference": "within > between (Fort et al. 2019)"},
    ]


def checks(res: dict, cfg: Config) -> list[dict]:
    s = _summary(res, cfg)
    C = s["C"]
    ratio = s["own_gain"].mean() / max(s["other_change"].mean(), 1e-12)
    n_pos = int((s["own_gain"] > 0).sum())
    need = int(np.ceil(0.9 * C))
    p_sign = float(sum(math.comb(C, k) for k in range(n_pos, C + 1)) / 2 ** C)
    return [
        {"name": "mistake gradient concentrates on the class's selective hidden units", "value": s["corr_own"],
         "passed": s["corr_own"] > 0.3,
         "detail": f"corr(selectivity, |dL/dW_out[h,c]|) = {s['corr_own']:.3f} (> 0.3); readout row {s['corr_row']:.3f}, "
                   f"incoming {s['corr_in']:.3f} (reported)"},
        {"name": "class-by-class gradient cosine matrix is near-diagonal", "value": s["offdiag"],
         "passed": s["offdiag"] < 0.5, "detail": f"mean |off-diagonal| {s['offdiag']:.3f} vs diagonal 1 (< 0.5)"},
        {"name": "a corrective step raises the own class far more than the others", "value": float(ratio),
         "passed": bool(n_pos >= need and ratio > 3),
         "detail": f"own gain {s['own_gain'].mean():+.3f} (seed means per class: {n_pos}/{C} > 0, need >= {need}; "
                   f"one-sided sign test p = {p_sign:.2g}; min {s['own_gain'].min():+.3f}), others |change| "
                   f"{s['other_change'].mean():.3f}, ratio {ratio:.1f} (> 3); {res['acc_delta'].shape[0]} seeds"},
        {"name": "minibatch gradient error falls like 1/sqrt(B)", "value": s["slope"],
         "passed": abs(s["slope"] + 0.5) < 0.1, "detail": f"log-log slope {s['slope']:.3f} (|slope + 0.5| < 0.1)"},
        {"name": "per-example gradients align more within a class than across", "value": s["within"] - s["between"],
         "passed": s["within"] > s["between"], "detail": f"within {s['within']:.3f} > between {s['between']:.3f}"},
    ]


def plot(res: dict, cfg: Config) -> dict:
    s = _summary(res, cfg)
    C = s["C"]
    cls = np.arange(C)
    fig, axes = plotting.figure(ncols=3, nrows=2, width=4.0, height=3.2)

    ax = axes[0, 0]
    share = res["share"]
    ax.bar(cls, np.nanmean(share, 0), yerr=np.nanstd(share, 0) if share.shape[0] > 1 else None, color="C0", capsize=2)
    # the reference is the algebraic floor 1/2 (cross-entropy + ReLU features: column c holds at least half;
    # tests/test_exp_error_specificity.py asserts it), not the uniform 1/C, which every bar beats by algebra
    ax.axhline(0.5, ls="--", color="C3", lw=1.1, label="algebraic floor 1/2 (cross-entropy,\nReLU features)")
    ax.axhline(1 / C, ls=":", color="gray", lw=0.8, label=f"uniform 1/C = {1 / C:.2f} (beaten by algebra)")
    ax.set(xticks=cls, ylim=(0, 1.2), yticks=np.linspace(0, 1, 6), xlabel="class c",
           ylabel="share of readout grad. energy\nin output column c", title="readout gradient of c's mistakes")
    ax.legend(loc="upper center", ncol=1, fontsize=7)

    ax = axes[0, 1]
    sel, g = res["selectivity"][0], res["g_own"][0]
    for c in range(C):
        ax.scatter(sel[c], g[c] / g[c].max(), s=5, alpha=0.6, color=plt_color(c))
    ax.set(xlabel="hidden unit h: selectivity for class c\n(mean act. on c - on others; colour = c, seed 0)",
           ylabel="|dL/dW_out[h, c]| / max over h",
           title=f"selective units get the gradient\ncorr {s['corr_own']:.2f} (readout), {s['corr_in']:.2f} (input)")

    ax = axes[0, 2]
    cos = np.nanmean(res["cosine"], 0)
    im = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(xticks=cls, yticks=cls, xlabel="class", ylabel="class",
           title=f"cosine of class mistake grads\nmean |off-diag.| {s['offdiag']:.2f}")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)

    ax = axes[1, 0]
    d = res["acc_delta"].mean(0)
    lim = max(np.abs(d).max(), 1e-3)
    im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set(xticks=cls, yticks=cls, xlabel="class whose accuracy changes", ylabel="step on class c's mistakes",
           title=f"accuracy change\n(one step, eta {cfg.correct_learning_rate:g})")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)

    ax = axes[1, 1]
    w = 0.38
    ax.bar(cls - w / 2, s["own_gain"], w, label="own class c", color="C2")
    ax.bar(cls + w / 2, s["other_change"], w, label="others, mean |change|", color="C7")
    top = max(s["own_gain"].max(), s["other_change"].max())
    ax.set(xticks=cls, ylim=(min(0, s["own_gain"].min() * 1.1), 1.35 * top), xlabel="class c corrected",
           ylabel="training accuracy change", title="own-class gain vs the others")
    ax.legend(loc="upper center", ncol=2, fontsize=7)

    ax = axes[1, 2]
    b = np.asarray(cfg.batch_sizes, float)
    err = res["mb_error"]
    ax.plot(b, err.mean(0), "o-", ms=4, label=f"measured, slope {s['slope']:.2f}")
    ax.plot(b, err.mean(0)[0] * (b / b[0]) ** -0.5, "--", color="gray", label="1/sqrt(B)")
    plotting.log_xticks(ax, cfg.batch_sizes)
    plotting.log_axis(ax, "y")
    ax.set(xlabel="batch size B", ylabel="||g_B - G|| / ||G||", title="minibatch gradient error")
    ax.legend(loc="upper right", fontsize=7)
    ax.text(0.03, 0.04, f"per-example grad. cosine\nwithin class {s['within']:.2f}\nbetween classes {s['between']:.2f}",
            transform=ax.transAxes, fontsize=7, va="bottom", bbox=dict(fc="white", ec="0.8", alpha=0.9))
    fig.suptitle(f"MLP {tuple(cfg.widths)} on {cfg.dataset}, test acc {res['test_acc'].mean():.2f}, {cfg.seeds} seeds",
                 fontsize=9, y=0.995)
    plotting.panel_letters(axes, title_size=10)
    fig.tight_layout()
    return {"error_specificity": fig}


def plt_color(c):
    import matplotlib.pyplot as plt
    return plt.get_cmap("tab10")(c % 10)

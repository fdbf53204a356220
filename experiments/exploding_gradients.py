"""Exploding gradients and gradient clipping (Pascanu, Mikolov & Bengio 2013).

  1. A vanilla tanh RNN on the adding problem: the gradient norm at initialisation
     against sequence length, for recurrent weights of spectral radius 0.5 to 2
     (orthogonal times the radius); above 1 it grows exponentially with length.
  2. A deep ReLU MLP whose He init is multiplied by a gain > 1: the first layer's
     gradient grows like gain^depth.
  3. Training the radius-2 RNN with SGD on long sequences, with and without
     global-norm clipping at several thresholds, all seeds and thresholds in one
     vmapped program; a diverging member is frozen and flagged (NaN/Inf), not a crash.

Command:    lossatlas run exploding_gradients [--quick]
Checks:     gradient norm grows with length for radius > 1 (> 100x from the shortest to the
            longest T) and does not grow for radius < 1 (< 2x); without clipping most seeds
            blow up (some step's loss >= 10x the loss at initialisation, or NaN); with
            clipping significantly fewer do (blow-up rate's 95% upper bound < 0.5 and a
            one-sided Fisher exact test against no clipping at p < 0.01), and the median
            final loss is at most half the initial one. Seeds: 16 (quick and full), so the blow-up fraction is a proportion with
            a margin, not a coin toss over a handful of chaotic runs. Stated plainly: at
            T=100 the clipped vanilla RNN ends near the predict-the-mean MSE of 1/6, i.e.
            it does not solve the adding problem in this budget, and we do not claim it.
Runtime:    quick (T = 10/50/100, MLP depths 5/10/20, 16 seeds, 8 epochs), 2026-11-30, 2 shared CPU
            cores under load: 31 s (38 s wall with start-up; JAX's compilation cache warm). Full (T
            up to 200, depth up to 40, 30 epochs): not measured (the README's full numbers, on an
            H200, give no time).
Result:     quick, 2026-11-30 (seed 0): RNN gradient at init from T = 10 to 100: radius 2 x1.28e4
            (9.85 -> 1.27e5), radius 1.5 x2.0, radius 0.5 x1.05; ReLU MLP He x2 first-layer gradient
            x2.33e4 from depth 5 to 20. Radius-2 RNN, T = 100: no clipping 14/16 blow up (95% CI
            0.64-0.97; 12 NaN); clip 1 and clip 0.3: 0/16 (upper bound 0.19, Fisher exact
            p = 2.5e-7); clip 1 median final/initial MSE 0.215, final MSE 0.231 (predict-the-mean
            0.167); clip 0.3 brings only 7/16 seeds to half their initial loss (median final MSE
            1.16, not checked). All checks pass. Full run (README, H200, 8 seeds; measured before
            the 2026-11-30 engine refactor): T = 10 -> 200 radius 2 x1.7e9, 1.5 x10, 0.5 x1.09;
            He x2 x2.4e10 from depth 5 to 40; unclipped 5/8 diverged, clipped 0/8.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from lossatlas import data as data_lib
from lossatlas import losses, models, plotting
from lossatlas.grads.flow import flow_fn, layer_order
from lossatlas.treeutil import global_norm
from lossatlas.train import TrainConfig, sweep

TABLE_TITLE = "Exploding gradients: growth with length/depth, and clipping (Pascanu et al. 2013)"
NO_CLIP = 1e30  # a threshold no finite gradient reaches: clipping off
YMAX = 1e3  # loss chart ceiling; diverging runs are marked there


@dataclasses.dataclass(frozen=True)
class Config:
    seq_lens: tuple = (10, 25, 50, 100, 200)
    radii: tuple = (0.5, 1.0, 1.5, 2.0)
    hidden: int = 32
    mlp_depths: tuple = (5, 10, 20, 40)
    mlp_gains: tuple = (1.0, 1.5, 2.0)
    mlp_width: int = 64
    train_seq_len: int = 100
    train_radius: float = 2.0
    clip_norms: tuple = (NO_CLIP, 1.0, 0.3)
    learning_rate: float = 0.1
    batch_size: int = 50
    num_train: int = 2000
    epochs: int = 30
    seeds: int = 16
    seed: int = 0

    def __post_init__(self):
        if NO_CLIP not in self.clip_norms or len(self.clip_norms) < 2:
            raise ValueError(f"Config.clip_norms must include {NO_CLIP:g} (no clipping) and at least one threshold")
        if min(self.seq_lens) < 2 or min(self.radii) <= 0:
            raise ValueError("Config.seq_lens must be >= 2 and radii > 0")


BLOWUP = 10.0  # a loss "blows up" when some step reaches this multiple of its value at initialisation
QUICK = {"seq_lens": (10, 50, 100), "mlp_depths": (5, 10, 20), "epochs": 8, "seeds": 16}


def _rnn_grad_norms(cfg, seq_len, keys):
    """[radius, seed] global gradient norm at init on a batch of the adding problem."""
    ds = data_lib.load("adding", seq_len=seq_len, num_train=256, num_test=1)
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
    model = models.get_model("rnn", cell="tanh", hidden=cfg.hidden, num_outputs=1, readout="last",
                             recurrent_scale=1.0)

    def one(key, radius):
        params = model.init(key, x[:1])["params"]
        # the orthogonal recurrent kernel has every singular value 1: scaling sets the spectral radius
        params = dict(params, fwd=dict(params["fwd"], recurrent={"kernel": params["fwd"]["recurrent"]["kernel"] * radius}))
        g = jax.grad(lambda p: losses.mse(model.apply({"params": p}, x), y))(params)
        return global_norm(g)

    radii = jnp.asarray(cfg.radii, jnp.float32)
    return np.asarray(jax.jit(jax.vmap(jax.vmap(one, (0, None)), (None, 0)))(keys, radii))


def _mlp_first_layer(cfg, depth, keys, x, y):
    """[gain, seed] first-layer kernel gradient norm at init of a ReLU MLP with He init x gain."""
    model = models.get_model("mlp", widths=(cfg.mlp_width,) * depth, num_outputs=10, init="he")
    f = flow_fn(model)

    def one(key, gain):
        params = model.init(key, x[:1])["params"]
        params = {n: dict(m, kernel=m["kernel"] * gain) for n, m in params.items()}
        out = f(params, {}, x, y)
        return out["grad_norm"][0]  # dense_0 is first in layer order

    assert sorted(model.init(keys[0], x[:1])["params"], key=layer_order)[0] == "dense_0"
    gains = jnp.asarray(cfg.mlp_gains, jnp.float32)
    return np.asarray(jax.vmap(jax.vmap(one, (0, None)), (None, 0))(keys, gains))


def run(cfg: Config, key) -> dict:
    k_rnn, k_mlp, k_train = jax.random.split(key, 3)
    keys = jax.random.split(k_rnn, cfg.seeds)
    out = {"rnn_grad": np.stack([_rnn_grad_norms(cfg, t, keys) for t in cfg.seq_lens], axis=-1)}  # [R, S, T]
    mnist = data_lib.load("mnist1d")
    x, y = jnp.asarray(mnist.x_train[:256]), jnp.asarray(mnist.y_train[:256])
    mkeys = jax.random.split(k_mlp, cfg.seeds)
    out["mlp_grad"] = np.stack([_mlp_first_layer(cfg, d, mkeys, x, y) for d in cfg.mlp_depths], axis=-1)  # [G, S, D]
    ds = data_lib.load("adding", seq_len=cfg.train_seq_len, num_train=cfg.num_train, num_test=500)
    tcfg = TrainConfig(model="rnn", model_cfg=dict(cell="tanh", hidden=cfg.hidden, readout="last",
                                                   recurrent_scale=cfg.train_radius),
                       optimizer="sgd", learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                       epochs=cfg.epochs, clip_norm=1.0)
    _, hist = sweep(tcfg, ds, seeds=cfg.seeds, grid={"clip_norm": list(cfg.clip_norms)}, key=k_train)
    hist = jax.device_get(hist)
    out["train"] = {k: np.asarray(hist[k]) for k in ("loss", "grad_norm", "train_loss", "test_loss", "diverged_at")}
    out["baseline_mse"] = np.asarray(ds.meta["baseline_mse"])
    return out


def _outcomes(res, cfg):
    """Per threshold and seed: the initial loss, the final train loss, and three flags.

    ``diverged``: NaN/Inf (the run was frozen); ``blew_up``: diverged, or some step's
    loss reached ``BLOWUP`` x the loss of the first step (which is evaluated before any
    update, so it does not depend on the trajectory); ``fell``: did not blow up and the
    final train loss is below half the initial loss.
    """
    tr = res["train"]
    start = tr["loss"][..., 0]
    final = tr["train_loss"][..., -1]
    diverged = tr["diverged_at"] >= 0
    peak = np.nanmax(np.where(np.isfinite(tr["loss"]), tr["loss"], -np.inf), axis=-1)
    blew_up = diverged | (peak >= BLOWUP * start)
    fell = ~blew_up & (final <= 0.5 * start)
    return start, final, diverged, blew_up, fell


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion k/n."""
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def _label(c):
    return "no clipping" if c >= NO_CLIP else f"clip {c:g}"


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    g = res["rnn_grad"]
    for i, r in enumerate(cfg.radii):
        rows.append({"setting": f"RNN radius {r:g}", "measure": "grad norm at init, T=" + "/".join(map(str, cfg.seq_lens)),
                     "value": " / ".join(f"{v:.3g}" for v in np.exp(np.log(g[i]).mean(0)))})
    m = res["mlp_grad"]
    for i, gain in enumerate(cfg.mlp_gains):
        rows.append({"setting": f"MLP He x {gain:g}", "measure": "first-layer grad, depth " + "/".join(map(str, cfg.mlp_depths)),
                     "value": " / ".join(f"{v:.3g}" for v in np.exp(np.log(m[i]).mean(0)))})
    start, final, diverged, blew_up, fell = _outcomes(res, cfg)
    for i, c in enumerate(cfg.clip_norms):
        lo, hi = _wilson(int(blew_up[i].sum()), cfg.seeds)
        rows.append({"setting": f"RNN T={cfg.train_seq_len}, {_label(c)}", "measure": "blew up (NaN or loss >= 10x initial) / diverged / fell to <= half",
                     "value": f"{blew_up[i].sum()} / {diverged[i].sum()} / {fell[i].sum()} of {cfg.seeds} "
                              f"(blow-up rate 95% CI {lo:.2f}-{hi:.2f}); final train MSE "
                              f"{np.nanmedian(np.where(diverged[i], np.nan, final[i])):.3f} (median of survivors; "
                              f"predict-the-mean {float(res['baseline_mse']):.3f})"})
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    g = np.exp(np.log(res["rnn_grad"]).mean(1))  # [R, T]
    hi_r, lo_r = int(np.argmax(cfg.radii)), int(np.argmin(cfg.radii))
    grow = g[hi_r, -1] / g[hi_r, 0]
    shrink = g[lo_r, -1] / g[lo_r, 0]
    start, final, diverged, blew_up, fell = _outcomes(res, cfg)
    none = list(cfg.clip_norms).index(NO_CLIP)
    clipped = [i for i in range(len(cfg.clip_norms)) if i != none]
    n = cfg.seeds
    k_none = int(blew_up[none].sum())
    lo, hi = _wilson(k_none, n)
    clip_stats = {}  # per threshold: (blow-up rate, its 95% Wilson upper bound, Fisher exact p vs no clipping)
    for i in clipped:
        k = int(blew_up[i].sum())
        p = stats.fisher_exact([[k_none, n - k_none], [k, n - k]], alternative="greater").pvalue
        clip_stats[i] = (k / n, _wilson(k, n)[1], float(p))
    best = max(clipped, key=lambda i: fell[i].sum())
    ratio = float(np.median(np.where(blew_up[best], np.inf, final[best] / start[best])))
    mg = np.exp(np.log(res["mlp_grad"]).mean(1))  # [G, D]
    return [
        {"name": "RNN gradient explodes with length (radius > 1)", "value": float(grow), "passed": grow > 100,
         "detail": f"radius {cfg.radii[hi_r]:g}: grad norm x{grow:.3g} from T={cfg.seq_lens[0]} to T={cfg.seq_lens[-1]} (> 100)"},
        {"name": "RNN gradient does not grow for radius < 1", "value": float(shrink), "passed": shrink < 2,
         "detail": f"radius {cfg.radii[lo_r]:g}: x{shrink:.3g} over the same lengths (< 2)"},
        {"name": "MLP gradient grows with depth for gain > 1", "value": float(mg[-1, -1] / mg[-1, 0]),
         "passed": mg[-1, -1] / mg[-1, 0] > 100 and mg[-1, -1] / mg[0, -1] > 100,
         "detail": f"He x {cfg.mlp_gains[-1]:g}: first-layer grad x{mg[-1, -1] / mg[-1, 0]:.3g} from depth "
                   f"{cfg.mlp_depths[0]} to {cfg.mlp_depths[-1]}, x{mg[-1, -1] / mg[0, -1]:.3g} over gain 1"},
        {"name": "without clipping most seeds blow up", "value": k_none / n, "passed": k_none / n > 0.5,
         "detail": f"{k_none}/{n} seeds reached >= {BLOWUP:g}x their initial loss or NaN (95% CI {lo:.2f}-{hi:.2f}; "
                   f"{int(diverged[none].sum())} NaN); needs a majority (> 0.5)"},
        {"name": "clipping prevents blow-ups", "value": max(clip_stats[i][0] for i in clipped),
         "passed": all(clip_stats[i][1] < 0.5 and clip_stats[i][2] < 0.01 for i in clipped),
         "detail": "; ".join(f"clip {cfg.clip_norms[i]:g}: {int(blew_up[i].sum())}/{n} blew up (95% upper bound "
                             f"{clip_stats[i][1]:.2f} < 0.5; one-sided Fisher exact p = {clip_stats[i][2]:.1e} < 0.01 "
                             f"against no clipping)" for i in clipped)},
        {"name": "with clipping the loss falls", "value": ratio, "passed": ratio <= 0.5,
         "detail": f"clip {cfg.clip_norms[best]:g}: median final/initial train MSE {ratio:.3g} (<= 0.5); "
                   f"{int(fell[best].sum())}/{n} seeds fell to half. Median final MSE "
                   f"{float(np.median(final[best])):.3f} against predict-the-mean {float(res['baseline_mse']):.3f}: "
                   "the task itself is not solved"},
    ]


def plot(res: dict, cfg: Config) -> dict:
    fig, axes = plotting.figure(ncols=3, width=3.6, height=3.2)
    ax = axes[0, 0]
    for i, r in enumerate(cfg.radii):
        plotting.mean_band(ax, np.asarray(cfg.seq_lens), np.log10(res["rnn_grad"][i]), label=f"{r:g}", marker="o", ms=3)
    ax.set(xlabel="sequence length T", ylabel="log10 ||dL/dtheta|| at init", title="(a) tanh RNN, adding problem")
    ax.legend(fontsize=7, loc="upper left", title="spectral radius", title_fontsize=7)
    ax = axes[0, 1]
    for i, g in enumerate(cfg.mlp_gains):
        plotting.mean_band(ax, np.asarray(cfg.mlp_depths), np.log10(res["mlp_grad"][i]), label=f"He x {g:g}", marker="o", ms=3)
    ax.set(xlabel="depth (hidden layers)", ylabel="log10 ||dL/dW_1|| at init", title=f"(b) ReLU MLP width {cfg.mlp_width}, MNIST-1D")
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[0, 2]
    tr = res["train"]
    blew_up = _outcomes(res, cfg)[3]
    steps = np.arange(tr["loss"].shape[-1])
    for i, c in enumerate(cfg.clip_norms):
        curves = tr["loss"][i]
        color = f"C{i}"
        for s in range(curves.shape[0]):
            ax.plot(steps, curves[s], color=color, lw=0.6, alpha=0.45)
            d = int(tr["diverged_at"][i, s])
            if d >= 0:  # divergence: marked at the top edge, where the step's loss went off the chart
                ax.plot(d, 0.7 * YMAX, "x", color=color, ms=7, mew=1.5, clip_on=False)
        ax.plot([], [], color=color, label=f"{_label(c)}: {int(blew_up[i].sum())}/{cfg.seeds} blew up, "
                                           f"{int((tr['diverged_at'][i] >= 0).sum())} NaN (x)")
    ax.axhline(float(res["baseline_mse"]), ls="--", color="gray", lw=0.8,
               label="predict the mean (MSE 1/6): the task is not solved above this line")
    ax.set(yscale="log", ylim=(0.05, YMAX), xlabel="SGD step", ylabel="train MSE per SGD step",
           title=f"(c) SGD, radius {cfg.train_radius:g} RNN, T={cfg.train_seq_len}")
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    fig.suptitle("Exploding gradients and gradient clipping (after Pascanu, Mikolov & Bengio 2013)", fontsize=10)
    fig.tight_layout()
    return {"exploding_gradients": fig}

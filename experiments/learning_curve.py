"""Learning curves: loss against step, a power law, shrinking improvement, and what is learned first.

  1. MNIST-1D MLP (40-100-100-10, Adam), seeds vmapped (``lossatlas.train.sweep``): the
     per-step training loss (mean over ``mnist_seeds`` seeds, one vmapped sweep) averaged in
     log-spaced bins, a fitted power law L(t) = a t^-b + c (``scipy.optimize.curve_fit``,
     t = step, from 1; loss against training steps as a power law plus a constant is the form of
     Kaplan et al. 2020, Sec. 5) with its R^2, and a fitted exponential L(t) = a exp(-t / tau) + c on the
     same bins; the two (3 parameters each) are compared by AIC.
  2. A small causal transformer (``transformer_lm``) on ``markov_text`` (an order-k Markov
     character source whose entropy rate H is known exactly), trained by
     ``lossatlas.train.sweep`` (seeds vmapped) with parameter checkpoints at log-spaced
     multiples of ``ckpt_every`` steps kept inside the compiled run (``train.Checkpoints``),
     each evaluated on the test set afterwards. Its per-step loss gets the same power-law
     fit; H is drawn as the floor no model can beat.
  3. Per-step improvement -dL/dt: the least-squares slope of the per-step loss inside
     log-spaced windows (and in each quarter of training); it shrinks as training goes on.
  4. What is learned first (markov_text): at each checkpoint the mean test NLL of target
     tokens grouped by how frequent the target character is (unigram) and by how frequent
     the (previous character, target) bigram is. Groups are token-mass terciles: "frequent"
     = the most common types that together hold the first third of the test tokens, "rare" =
     the tail types holding the last third. A group's half-time is the first step at which
     its NLL has covered half the way from its initial to its final value.

Command:    lossatlas run learning_curve [--quick]
Checks:     the power law describes the curve better than an exponential (AIC lower by > 10 on
            the log-binned seed means, Burnham & Anderson's "no support" level for the loser,
            and b > 0; R^2 reported), report-only for both: the exponential wins on MNIST-1D
            (quick and full length) and on markov_text the sign flips with the seed; the
            improvement per step in the
            last quarter is < 25% of the first quarter's (both datasets); frequent characters
            and frequent bigrams reach half-way before rare ones; the final test NLL (positions
            with the full context) is not below the entropy rate (beyond 3 standard errors) and
            approaches it (gap < 25% of the initial gap log V - H). The two 25% bars have no
            paper or theory source (the claims themselves are < 100%); the records say so.
            Report-only "original check" (the first gating check, kept): power-law R^2 > 0.9 and
            b > 0 (0.9 unsourced; the exponential scores as high, so it tests no power law).
Runtime:    quick (MNIST-1D 8 epochs x 8 seeds; markov_text 600 steps x 2 seeds), 2026-11-30, 2
            shared CPU cores under load: 11 s (18 s wall with start-up; JAX's compilation cache
            warm). Full (20 epochs x 16 seeds, 1500 steps x 4 seeds): not measured.
Result:     quick, 2026-11-30 (seed 0): MNIST-1D: the exponential wins, AIC exp - AIC power = -48.0
            (power law b 0.196, c at its bound 0, R^2 0.940; exponential R^2 0.982): report-only
            FAIL; original check R^2 0.940 > 0.9: report-only PASS; last / first quarter
            improvement 0.123 (< 0.25; the fitted power law's own 0.060); test accuracy 0.575.
            markov_text: AIC difference +0.6 (power law R^2 0.962, exponential 0.962; not > 10):
            report-only FAIL; original check R^2 0.962: report-only PASS; improvement ratio 0.026 (per quarter 36.6 / 1.15 / 0.48 / 0.94 x1e-4 nats/step:
            the last quarter is not the smallest); half-time frequent vs rare characters 5 vs 38
            steps, bigrams 5 vs 48; final test NLL 1.3229 vs entropy rate 1.2459 (gap 0.077 = 4.2%
            of the initial 1.841). All gating checks pass. Before the 2026-11-30 engine refactor
            (README, when the markov run drew its own shuffles) the markov_text AIC difference was
            +37 at seed 0 and -41 at seed 1; the MNIST-1D part alone at the full 20 epochs (8 seeds,
            two keys): the exponential wins by 73-76.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import data as data_lib
from lossatlas import plotting
from lossatlas.train import Checkpoints, TrainConfig, model_fns, sweep
from ._learning_curve_fits import (compare_power_exponential, fit_power_law, half_time,
                                                         improvement, mass_terciles, power_law)

FIGURE = "Kaplan et al. 2020, Sec. 5 (power law in training steps; no single figure)"
TABLE_TITLE = "Learning curves: power-law fits, shrinking improvement, frequent patterns first, entropy floor"
GROUPS = ("frequent", "middle", "rare")
AIC_MARGIN = 10.0   # Burnham & Anderson 2002: a model 10 AIC units worse has essentially no support


@dataclasses.dataclass(frozen=True)
class Config:
    # MNIST-1D
    mnist_widths: tuple = (100, 100)
    mnist_learning_rate: float = 3e-3
    mnist_batch_size: int = 100
    mnist_epochs: int = 20
    mnist_seeds: int = 16  # seeds for the MNIST-1D curve (one vmapped sweep; cheap)
    # markov_text
    vocab_size: int = 16
    order: int = 1
    concentration: float = 0.3
    seq_len: int = 32
    num_train: int = 2048
    num_test: int = 256
    d_model: int = 32
    num_heads: int = 2
    num_layers: int = 1
    lm_learning_rate: float = 3e-3
    lm_batch_size: int = 32
    lm_steps: int = 1500
    ckpt_every: int = 10
    num_evals: int = 24  # log-spaced test evaluations among the lm_steps / ckpt_every checkpoints
    # analysis
    improvement_windows: int = 12
    fit_skip: int = 5  # steps left out of the power-law fit (the first few are transient)
    seeds: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.lm_steps % self.ckpt_every:
            raise ValueError("Config.lm_steps must be a multiple of ckpt_every")
        if self.lm_steps < 8 * self.ckpt_every:
            raise ValueError("Config.lm_steps must give at least 8 checkpoints")


QUICK = {"mnist_epochs": 8, "lm_steps": 600, "num_train": 1024, "seeds": 2, "mnist_seeds": 8}


# ----------------------------------------------------------------------------- MNIST-1D
def _run_mnist(cfg, key):
    ds = data_lib.load("mnist1d")
    tc = TrainConfig(model="mlp", model_cfg={"widths": tuple(cfg.mnist_widths)}, optimizer="adam",
                     learning_rate=cfg.mnist_learning_rate, batch_size=cfg.mnist_batch_size, epochs=cfg.mnist_epochs,
                     eval_train=False)
    _, h = sweep(tc, ds, seeds=cfg.mnist_seeds, key=key)
    h = jax.device_get(h)
    loss = np.asarray(h["loss"], float)  # [seeds, steps]
    mean = np.nanmean(loss, 0)
    return {"loss": loss, "test_loss": np.asarray(h["test_loss"]),
            "test_acc": np.asarray(h["test_acc"]), "steps_per_epoch": ds.num_train // cfg.mnist_batch_size,
            "fit": fit_power_law(mean, cfg.fit_skip), "improvement": improvement(mean, cfg.improvement_windows)}


# ----------------------------------------------------------------------------- markov_text
def checkpoints(n_ckpt: int, num: int) -> np.ndarray:
    """About ``num`` log-spaced checkpoint indices in 0..n_ckpt (0 = initialisation, n_ckpt = the end)."""
    return np.unique(np.concatenate([[0], np.round(np.geomspace(1, n_ckpt, num - 1)).astype(int)]))


def _markov_program(cfg, ds, key):
    """Per-step training loss [S, lm_steps], per-checkpoint summed test NLL per bigram [S, C+1, V*V]
    and summed squared NLL [S, C+1] (full-context positions), ``diverged_at`` [S] and the
    checkpoint indices. Training is ``lossatlas.train.sweep`` (the library's loop: its shuffles,
    steps and divergence freezing) with parameter checkpoints at the log-spaced steps kept by
    the engine's :class:`lossatlas.train.Checkpoints` hook; the run is whole epochs, so it may
    take up to one epoch of steps past ``lm_steps``, which are not reported."""
    V = ds.num_classes
    tc = TrainConfig(model="transformer_lm",
                     model_cfg={"d_model": cfg.d_model, "num_heads": cfg.num_heads, "num_layers": cfg.num_layers,
                                "max_len": cfg.seq_len},
                     optimizer="adam", learning_rate=cfg.lm_learning_rate, batch_size=cfg.lm_batch_size,
                     epochs=max(1, -(-cfg.lm_steps * cfg.lm_batch_size // ds.num_train)), eval_train=False)
    x_te, y_te = jnp.asarray(ds.x_test), jnp.asarray(ds.y_test)
    full = (jnp.arange(ds.x_test.shape[1]) >= ds.meta["full_context_start"]).astype(jnp.float32)
    seg = (x_te * V + y_te).reshape(-1)
    eval_at = checkpoints(cfg.lm_steps // cfg.ckpt_every, cfg.num_evals)
    state, hist = sweep(tc, ds, key=key, seeds=cfg.seeds,
                        checkpoints=Checkpoints(steps=tuple(int(i) * cfg.ckpt_every for i in eval_at)))
    apply = model_fns(tc, ds).apply

    def evaluate(params, model_state):
        """Summed NLL per (previous, target) bigram [V*V] and the sum of squared NLLs (full-context positions)."""
        logits = apply(params, model_state, x_te)
        nll = -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), y_te[..., None], -1)[..., 0] * full[None, :]
        return jax.ops.segment_sum(nll.reshape(-1), seg, num_segments=V * V), jnp.sum(nll ** 2)

    ck = jax.device_get(hist["checkpoints"])
    # checkpoints are evaluated by a separate (forward-only) program: two small compiles beat one big one
    evs, sq = jax.jit(jax.vmap(jax.vmap(evaluate)))(ck["params"], ck["model_state"])
    loss = np.asarray(hist["loss"], float)[:, :cfg.lm_steps]
    return loss, np.asarray(evs, float), np.asarray(sq, float), np.asarray(hist["diverged_at"]), eval_at


def _run_markov(cfg, key):
    ds = data_lib.load("markov_text", vocab_size=cfg.vocab_size, order=cfg.order, concentration=cfg.concentration,
                       seq_len=cfg.seq_len, num_train=cfg.num_train, num_test=cfg.num_test, seed=cfg.seed)
    V, H = ds.num_classes, float(ds.meta["entropy_rate"])
    loss, evs, sq, div, eval_at = _markov_program(cfg, ds, key)
    fcs = ds.meta["full_context_start"]
    bigram_counts = np.bincount((ds.x_test[:, fcs:] * V + ds.y_test[:, fcs:]).ravel(), minlength=V * V).astype(float)
    char_counts = bigram_counts.reshape(V, V).sum(0)  # by target character
    n_tok = bigram_counts.sum()
    steps = eval_at * cfg.ckpt_every
    test_nll = evs.sum(-1) / n_tok  # [S, C+1], positions with the full context
    char_sum = evs.reshape(evs.shape[:2] + (V, V)).sum(2)  # [S, C+1, V]
    groups = {}
    for kind, sums, counts in (("char", char_sum, char_counts), ("bigram", evs, bigram_counts)):
        g = mass_terciles(counts)
        curves = np.stack([sums[..., g == k].sum(-1) / counts[g == k].sum() for k in range(3)], -1)  # [S, C+1, 3]
        mean = curves.mean(0)
        groups[kind] = {"group": g, "curves": curves, "types": np.asarray([(g == k).sum() for k in range(3)]),
                        "half_time": np.asarray([half_time(steps, mean[:, k]) for k in range(3)]),
                        "initial": mean[0], "final": mean[-1]}
    mean_loss = np.nanmean(loss, 0)
    return {"loss": loss, "steps": steps, "test_nll": test_nll, "entropy_rate": H, "log_vocab": float(np.log(V)),
            "unigram": np.asarray(ds.meta["unigram"]), "char_counts": char_counts, "bigram_counts": bigram_counts,
            "n_test_tokens": n_tok, "test_nll_sq": sq / n_tok, "diverged_at": div, "groups": groups,
            "vocab": ds.meta["vocab"],
            "fit": fit_power_law(mean_loss, cfg.fit_skip), "improvement": improvement(mean_loss, cfg.improvement_windows)}


def run(cfg: Config, key) -> dict:
    k1, k2 = jax.random.split(key)
    return {"mnist": _run_mnist(cfg, k1), "markov": _run_markov(cfg, k2)}


# ----------------------------------------------------------------------------- summaries
def _final_gap(m):
    final = m["test_nll"][:, -1]
    return float(final.mean()), float(final.mean() - m["entropy_rate"])


def table(res: dict, cfg: Config) -> list[dict]:
    rows = []
    for name, label in (("mnist", "MNIST-1D MLP"), ("markov", "markov_text transformer")):
        r = res[name]
        f, imp = r["fit"], r["improvement"]
        rows.append({"setting": label, "measure": "power law L(t) = a t^-b + c (train loss, seed mean, log-binned)",
                     "value": f"a {f['a']:.3g}, b {f['b']:.3f}, c {f['c']:.4f}, R^2 {f['r2']:.4f}"})
        rows.append({"setting": label, "measure": "-dL/dt per quarter of training (x1e-4 nats/step)",
                     "value": " / ".join(f"{v * 1e4:.2f}" for v in imp["quarters"])
                              + f"; last/first {imp['ratio_last_first']:.3f}"})
    mn = res["mnist"]
    rows.append({"setting": "MNIST-1D MLP", "measure": f"final test acc / loss ({cfg.mnist_seeds} seeds)",
                 "value": f"{mn['test_acc'][:, -1].mean():.3f} / {mn['test_loss'][:, -1].mean():.4f}"})
    m = res["markov"]
    final, gap = _final_gap(m)
    rows.append({"setting": "markov_text", "measure": "final test NLL vs entropy rate H (nats/token)",
                 "value": f"{final:.4f} vs H {m['entropy_rate']:.4f}: gap {gap:.4f} "
                          f"(initial gap {m['test_nll'][:, 0].mean() - m['entropy_rate']:.3f}, log V {m['log_vocab']:.3f})"})
    for kind in ("char", "bigram"):
        g = m["groups"][kind]
        rows.append({"setting": f"markov_text, {kind} groups (frequent/middle/rare)",
                     "measure": "types; NLL initial -> final; half-time (steps)",
                     "value": "; ".join(f"{GROUPS[k]}: {g['types'][k]} types, {g['initial'][k]:.3f} -> {g['final'][k]:.3f},"
                                        f" t1/2 {g['half_time'][k]:.0f}" for k in range(3))})
    return rows


def checks(res: dict, cfg: Config) -> list[dict]:
    out = []
    for name, label in (("mnist", "MNIST-1D"), ("markov", "markov_text")):
        f, imp = res[name]["fit"], res[name]["improvement"]
        cmp = compare_power_exponential(f)
        ex, d = cmp["exp"], cmp["delta_aic"]
        rec = {"name": f"a power law describes the {label} learning curve better than an exponential", "value": d,
                    "passed": bool(np.isfinite(d) and d > AIC_MARGIN and f["b"] > 0),
                    "tolerance": "AIC exp - AIC power > 10 (Burnham & Anderson 2002: essentially no support for the "
                                 "loser) and b > 0",
                    "detail": f"AIC exp - AIC power = {d:.1f} (> 10) over {cmp['n_bins']} log-spaced bins of the "
                              f"{res[name]['loss'].shape[0]}-seed mean; power law a {f['a']:.3g}, b {f['b']:.3f} (> 0), "
                              f"c {f['c']:.4f}, R^2 {f['r2']:.4f}; exponential a {ex['a']:.3g}, tau {ex['tau']:.3g}, "
                              f"c {ex['c']:.4f}, R^2 {1 - ex['rss'] / np.sum((f['loss_bins'] - f['loss_bins'].mean()) ** 2):.4f}"}
        # Report-only: not established. MNIST-1D (8 seeds): the exponential wins, AIC exp - power = -48 / -42
        # in quick runs (seed=0 / 1) and -73 / -76 at the full 20 epochs (two keys): a plateau, then a drop
        # that keeps steepening in log t, which no a t^-b + c follows. markov_text (quick, 2 seeds): +37 at
        # seed=0, -41 at seed=1 (another Markov source), so its verdict would be a coin toss on the seed.
        # Recorded, stamped and shown as failed where it fails (lossatlas.checks).
        rec["gating"] = False
        out.append(rec)
        # The check that gated first (commit 99bf13d), kept as written, report-only: power-law R^2 > 0.9 and
        # b > 0. The 0.9 had no source, and the exponential scores as high on the same bins, so it tests no
        # power law.
        r2_exp = 1 - ex["rss"] / np.sum((f["loss_bins"] - f["loss_bins"].mean()) ** 2)
        out.append({"name": f"original check: power law fits the {label} learning curve", "value": f["r2"],
                    "passed": bool(f["r2"] > 0.9 and f["b"] > 0), "gating": False, "tolerance": "R^2 > 0.9 and b > 0",
                    "claim": "original check (replaced by the AIC comparison above): the power law a t^-b + c fits "
                             "the log-binned learning curve with R^2 > 0.9",
                    "detail": f"power-law R^2 {f['r2']:.4f} (> 0.9), b {f['b']:.3f} (> 0), a {f['a']:.3g}, c "
                              f"{f['c']:.4f}. Report-only: the 0.9 came from no paper or theory, and an exponential "
                              f"fits the same bins with R^2 {r2_exp:.4f}, so passing it says nothing for the power "
                              f"law"})
        # Threshold 0.25: no source (set when the check was first written, 99bf13d). The claim itself, that the
        # improvement per step shrinks, is a ratio < 1 (1: a constant rate); 0.25 is a margin below that with
        # no derivation. For comparison the detail gives the ratio the fitted power law itself would give.
        tt = np.arange(1, len(res[name]["loss"][0]) + 1, dtype=float)
        pl_ratio = improvement(power_law(tt, f["a"], f["b"], f["c"]), 4)["ratio_last_first"]
        out.append({"name": f"per-step improvement shrinks ({label})", "value": imp["ratio_last_first"],
                    "passed": bool(imp["quarters"][0] > 0 and imp["ratio_last_first"] < 0.25), "tolerance": "< 0.25",
                    "detail": f"-dL/dt last quarter / first quarter = {imp['ratio_last_first']:.4f} (< 0.25); "
                              f"first {imp['quarters'][0]:.2e}, last {imp['quarters'][-1]:.2e} nats/step. The 0.25 "
                              f"has no paper or theory source (shrinking means < 1; 0.25 is an unsourced margin); "
                              f"the fitted power law's own ratio over these steps is {pl_ratio:.3g}"})
    m = res["markov"]
    for kind, what in (("char", "characters"), ("bigram", "bigrams")):
        ht = m["groups"][kind]["half_time"]
        ok = bool(np.isfinite(ht[0]) and (not np.isfinite(ht[2]) or ht[0] < ht[2]))
        out.append({"name": f"frequent {what} are learned before rare ones", "value": float(ht[0]), "passed": ok,
                    "detail": f"half-time frequent {ht[0]:.0f} vs rare {ht[2]:.0f} steps (middle {ht[1]:.0f}); "
                              "rare nan = its NLL never falls below its initial value"})
    final, gap = _final_gap(m)
    # standard error of the final test NLL from the per-token spread (seed mean of per-seed variances)
    mean_sq = m["test_nll_sq"][:, -1].mean()
    se = float(np.sqrt(max(mean_sq - final ** 2, 0.0) / m["n_test_tokens"]))
    init_gap = float(m["test_nll"][:, 0].mean() - m["entropy_rate"])
    # Theory (Shannon): no predictor's expected NLL is below the source's entropy rate H; 3 standard errors of
    # the finite test set is the statistical margin.
    out.append({"name": "no model beats the entropy rate", "value": gap, "passed": bool(gap >= -3 * se),
                "paper": "theory: E[NLL] >= H for every predictor (Shannon)", "tolerance": ">= -3 SE",
                "detail": f"final test NLL {final:.4f} - H {m['entropy_rate']:.4f} = {gap:.4f} (>= -3 SE = {-3 * se:.4f})"})
    # Threshold 25%: no source (set when the check was first written, 99bf13d). "Approaches" only needs the
    # gap to shrink below the initial gap (< 100%); 25% is an unsourced margin.
    out.append({"name": "the test NLL approaches the entropy rate", "value": gap / init_gap,
                "passed": bool(gap < 0.25 * init_gap), "tolerance": "< 25% of the initial gap",
                "detail": f"gap {gap:.4f} nats = {gap / init_gap:.1%} of the initial gap {init_gap:.3f} (< 25%). "
                          f"The 25% has no paper or theory source (approaching means < 100%; 25% is an unsourced "
                          f"margin)"})
    out.append({"name": "no markov_text run diverged", "value": int((m["diverged_at"] >= 0).sum()),
                "passed": bool(np.all(m["diverged_at"] < 0)), "detail": f"diverged_at {m['diverged_at'].tolist()}"})
    return out


# ----------------------------------------------------------------------------- figures
def _smooth(y, w):
    if w <= 1:
        return y
    k = np.ones(w) / w
    return np.convolve(np.pad(y, (w // 2, w - 1 - w // 2), mode="edge"), k, mode="valid")


def _curve_panel(ax, r, title, color, floor=None):
    loss = r["loss"]
    t = np.arange(1, loss.shape[1] + 1)
    mean = np.nanmean(loss, 0)
    ax.plot(t, mean, color="0.75", lw=0.6, label=f"per-step loss (mean of {loss.shape[0]} seeds)")
    ax.plot(t, _smooth(mean, max(1, len(t) // 60)), color=color, lw=1.4, label="smoothed")
    f = r["fit"]
    cmp = compare_power_exponential(f)
    ex = cmp["exp"]
    ax.plot(t, power_law(t, f["a"], f["b"], f["c"]), "k--", lw=1.0,
            label=f"power law {f['a']:.2g} t^-{f['b']:.2f} + {f['c']:.3f} (R^2 {f['r2']:.3f})")
    if np.isfinite(ex["tau"]):
        ax.plot(t, ex["a"] * np.exp(-t / ex["tau"]) + ex["c"], color="0.35", ls="-.", lw=1.0,
                label=f"exponential {ex['a']:.2g} exp(-t / {ex['tau']:.3g}) + {ex['c']:.3f}")
    if floor is not None:
        ax.axhline(floor, color="C3", lw=1.2, label=f"entropy rate H = {floor:.3f} (floor)")
    d = cmp["delta_aic"]
    verdict = ("power law preferred" if d > AIC_MARGIN else
               "exponential preferred" if d < -AIC_MARGIN else "neither preferred")
    ax.set(xscale="log", xlabel="step t", ylabel="training loss (nats)")
    ax.set_title(f"{title}\nAIC exp - power {d:+.1f}: {verdict}", fontsize=9)
    plotting.legend_outside(ax, "below", ncol=1, bbox_to_anchor=(0.5, -0.16), fontsize=7)


def plot(res: dict, cfg: Config) -> dict:
    figs = {}
    mn, m = res["mnist"], res["markov"]
    colors = {"MNIST-1D": "C0", "markov_text": "C1"}
    fig, axes = plotting.figure(ncols=3, width=3.8, height=4.0)
    _curve_panel(axes[0, 0], mn, f"MNIST-1D MLP {'-'.join(map(str, cfg.mnist_widths))}, Adam", colors["MNIST-1D"])
    _curve_panel(axes[0, 1], m, f"markov_text (V={cfg.vocab_size}, order {cfg.order}), transformer",
                 colors["markov_text"], m["entropy_rate"])
    lo = min(m["entropy_rate"], np.nanmin(m["loss"])) - 0.1
    axes[0, 1].set_ylim(lo, max(m["log_vocab"], np.nanmax(np.nanmean(m["loss"], 0))) + 0.1)
    ax = axes[0, 2]
    for r, label in ((mn, "MNIST-1D"), (m, "markov_text")):
        imp, f = r["improvement"], r["fit"]
        ok = imp["window_rate"] > 0
        ax.plot(imp["window_t"][ok], imp["window_rate"][ok], "o-", color=colors[label], ms=4,
                label=f"{label}: -dL/dt (window slope)")
        tt = np.geomspace(1, len(np.nanmean(r["loss"], 0)), 100)
        ax.plot(tt, f["a"] * f["b"] * tt ** (-f["b"] - 1), "--", color=colors[label], lw=0.9,
                label=f"{label}: power law's a b t^-(b+1)")
    ax.set(xscale="log", xlabel="step t", ylabel="improvement per step -dL/dt (nats)")
    ax.set_title("the per-step improvement shrinks", fontsize=9)
    plotting.log_axis(ax, "y")
    plotting.legend_outside(ax, "below", ncol=1, bbox_to_anchor=(0.5, -0.16), fontsize=7)
    plotting.panel_letters(axes)
    fig.tight_layout()
    figs["learning_curve"] = fig

    fig, axes = plotting.figure(ncols=3, width=3.8, height=4.0)
    steps = np.maximum(m["steps"], 1)
    axes[0, 1].sharey(axes[0, 0])
    for j, (kind, what) in enumerate((("char", "target character"), ("bigram", "(previous, target) bigram"))):
        ax, g = axes[0, j], m["groups"][kind]
        mean = g["curves"].mean(0)
        for k in range(3):
            ax.plot(steps, mean[:, k], color=f"C{k}", label=f"{GROUPS[k]} ({g['types'][k]} types)")
            if np.isfinite(g["half_time"][k]):
                ax.axvline(g["half_time"][k], color=f"C{k}", ls=":", lw=0.9)
        ax.axhline(m["log_vocab"], color="0.5", ls="--", lw=0.8, label="log V (uniform)")
        ax.set(xscale="log", xlabel="step (checkpoint 0 drawn at 1)", ylabel="mean test NLL of the group (nats)")
        ax.set_title(f"grouped by {what} frequency", fontsize=9)
        plotting.legend_outside(ax, "below", ncol=2, bbox_to_anchor=(0.5, -0.16), title="dotted: half-time", fontsize=7,
                                title_fontsize=7)
    ax = axes[0, 2]
    tn = m["test_nll"]
    plotting.mean_band(ax, steps, tn, label="test NLL (full-context positions)", color="k")
    ax.axhline(m["entropy_rate"], color="C3", lw=1.2, label=f"entropy rate H = {m['entropy_rate']:.3f}")
    ax.axhline(m["log_vocab"], color="0.5", ls="--", lw=0.8, label="log V (uniform)")
    final, gap = _final_gap(m)
    ax.set(xscale="log", xlabel="step", ylabel="test NLL (nats/token)")
    ax.set_title(f"floor: final gap {gap:.3f} nats", fontsize=9)
    plotting.legend_outside(ax, "below", ncol=1, bbox_to_anchor=(0.5, -0.16), fontsize=7)
    plotting.panel_letters(axes)
    fig.tight_layout()
    figs["learning_curve_markov_patterns"] = fig
    return figs

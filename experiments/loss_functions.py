"""What a loss charges for a mistake, and the gradient it sends back.

  1. Cross-entropy against the probability p given to the true class, -ln p: the
     asymmetry of confident mistakes. An e-mail that is not spam, called "99% spam",
     costs -ln 0.01 = 4.61; called "51% spam" it costs -ln 0.49 = 0.71 (6.5x less).
  2. Squared error's quadratic penalty: an error of 100,000 costs 100x an error of
     10,000 (10x the error, 10^2 the loss).
  3. Token negative log-likelihood: a language model that gave the next token
     p = 0.85 pays 0.16 nats; one that gave it p = 0.01 pays 4.61 nats.
  4. The gradient each loss sends back to the logit z of a sigmoid / softmax output
     as the wrong confidence q = 1 - p_true -> 1: cross-entropy's dL/dz = p - y stays
     near magnitude 1, while squared error on the sigmoid / softmax probabilities is
     multiplied by the saturating sigmoid slope p(1 - p) and vanishes. So a single
     logistic unit that starts confidently wrong recovers in a few gradient steps
     under cross-entropy and stays stuck for many under squared error.

Every number is computed with ``lossatlas.losses`` (``binary_cross_entropy``,
``cross_entropy``, ``mse``, ``token_nll``) and ``jax.grad`` of them; the checks
compare those against the closed-form values quoted above.

Command:    lossatlas run loss_functions [--quick]
Checks:     the quoted costs (4.61, 0.71, 100x, 0.16 and 4.61 nats) within 0.005 / 1e-6;
            |dCE/dz| >= 0.99 and |dMSE/dz| <= 0.01 at wrong confidence 0.999 (sigmoid
            and softmax); jax.grad of the library losses equals p - y; from a confident
            mistake CE gets p_true above 1/2 in fewer steps than MSE.
Runtime:    quick (200 curve points, 40 steps), 2026-11-30, 2 shared CPU cores under load: 5 s (11 s
            wall with start-up; JAX's compilation cache warm). Full (400 points, 60 steps): not
            measured.
Result:     quick, 2026-11-30: "99% spam" 4.605 nats, "51% spam" 0.713; squared error x100.0; token
            NLL 0.1625 (p = 0.85) / 4.605 (p = 0.01); at wrong confidence 0.999 |dL/dz| is 0.999 for
            cross-entropy (sigmoid and softmax) against 0.0020 / 0.0022 for MSE; jax.grad equals
            p - y to 4.8e-7 (float32); from p_true = 0.001 cross-entropy passes 1/2 after 8 steps,
            MSE not within 40. All checks pass.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import losses, plotting

FIGURE = "Goodfellow, Bengio & Courville 2016, Sec. 6.2.2 (cross-entropy vs squared error on sigmoid/softmax outputs)"
TABLE_TITLE = "Loss functions: the cost of a mistake and the gradient it sends back"


@dataclasses.dataclass(frozen=True)
class Config:
    num_points: int = 400  # points on each curve
    num_classes: int = 10  # softmax classes for the multiclass gradient curve
    vocab_size: int = 50  # vocabulary of the token-NLL example
    start_confidence: float = 0.999  # wrong confidence of the logistic unit at step 0
    learning_rate: float = 1.0
    steps: int = 60
    seeds: int = 1  # deterministic: no randomness anywhere
    seed: int = 0

    def __post_init__(self):
        if not 0.5 < self.start_confidence < 1:
            raise ValueError("Config.start_confidence must be in (0.5, 1)")
        if self.num_points < 10 or self.steps < 2 or self.num_classes < 2 or self.vocab_size < 2:
            raise ValueError("Config.num_points >= 10, steps >= 2, num_classes and vocab_size >= 2")


QUICK = {"num_points": 200, "steps": 40}
GRAD_POINTS = (0.9, 0.99, 0.999)  # wrong confidences quoted in the table


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


def _binary_ce(p_spam, is_spam):
    """Cost of predicting P(spam) = p_spam when the truth is ``is_spam`` (library BCE from the logit)."""
    p = jnp.asarray(p_spam, jnp.float32)
    return losses.binary_cross_entropy(_logit(p), jnp.full(p.shape, float(is_spam)), reduction="none")


def _softmax_logits(p_true, num_classes):
    """[N, C] logits whose softmax gives p_true to class 0 and spreads the rest evenly."""
    p_true = jnp.asarray(p_true, jnp.float32)[:, None]
    rest = jnp.broadcast_to((1.0 - p_true) / (num_classes - 1), (p_true.shape[0], num_classes - 1))
    return jnp.log(jnp.concatenate([p_true, rest], axis=1))


def _grads(q, num_classes):
    """dL/dz at wrong confidence q (true class gets 1 - q) for four losses."""
    p_true = 1.0 - q
    z = _logit(p_true)  # the true-class logit of a sigmoid unit, label 1
    bce = jax.vmap(jax.grad(lambda zi: losses.binary_cross_entropy(zi, jnp.asarray(1.0))))(z)
    mse_sig = jax.vmap(jax.grad(lambda zi: losses.mse(jax.nn.sigmoid(zi)[None], jnp.ones((1,)))))(z)
    logits = _softmax_logits(p_true, num_classes)
    onehot = jax.nn.one_hot(jnp.zeros(z.shape, jnp.int32), num_classes)

    def ce(lg):
        return losses.cross_entropy(lg[None], jnp.zeros((1,), jnp.int32))

    def mse_prob(lg, t):  # squared error on the softmax probabilities, per example (sum over classes)
        return num_classes * losses.mse(jax.nn.softmax(lg)[None], t[None])

    ce_g = jax.vmap(jax.grad(ce))(logits)[:, 0]  # d/d(true-class logit)
    msep_g = jax.vmap(jax.grad(mse_prob))(logits, onehot)[:, 0]
    return {"bce_sigmoid": np.asarray(bce), "mse_sigmoid": np.asarray(mse_sig),
            "ce_softmax": np.asarray(ce_g), "mse_softmax": np.asarray(msep_g)}


def _train_unit(cfg):
    """Gradient descent on the logit of one logistic unit that starts confidently wrong (label 1)."""
    z0 = _logit(jnp.asarray(1.0 - cfg.start_confidence, jnp.float32))

    def loss_ce(z):
        return losses.binary_cross_entropy(z[None], jnp.ones((1,)))

    def loss_mse(z):
        return losses.mse(jax.nn.sigmoid(z)[None], jnp.ones((1,)))

    def descend(loss):
        def step(z, _):
            return z - cfg.learning_rate * jax.grad(loss)(z), jax.nn.sigmoid(z)
        _, p = jax.lax.scan(step, z0, None, length=cfg.steps + 1)
        return p  # p_true before each step; p[0] is the start

    return {"ce": np.asarray(jax.jit(lambda: descend(loss_ce))()),
            "mse": np.asarray(jax.jit(lambda: descend(loss_mse))())}


def run(cfg: Config, key) -> dict:
    del key  # deterministic
    out = {}
    # 1. cross-entropy against p_true
    p = np.geomspace(1e-3, 1.0, cfg.num_points).astype(np.float32)
    p[-1] = 1.0 - 1e-6
    out["p_true"] = p
    out["ce_curve"] = np.asarray(_binary_ce(p, 1))  # true label 1, prediction P(1) = p
    spam = np.asarray([0.99, 0.51], np.float32)
    out["spam_p"] = spam
    out["spam_cost_wrong"] = np.asarray(_binary_ce(spam, 0))  # truly not spam
    out["spam_cost_right"] = np.asarray(_binary_ce(spam, 1))  # truly spam
    # 2. squared error
    err = np.geomspace(1.0, 1e6, cfg.num_points).astype(np.float32)
    out["mse_err"] = err
    out["mse_curve"] = np.asarray(losses.mse(jnp.asarray(err), jnp.zeros_like(jnp.asarray(err)), reduction="none"))
    big = jnp.asarray([10_000.0, 100_000.0], jnp.float32)
    out["mse_points"] = np.asarray(losses.mse(big, jnp.zeros_like(big), reduction="none"))
    # 3. token NLL: one position, the next token given p = 0.85 or 0.01
    tok_p = np.asarray([0.85, 0.01], np.float32)
    logits = _softmax_logits(tok_p, cfg.vocab_size)[:, None, :]  # [2, 1, V]
    out["token_p"] = tok_p
    out["token_nll"] = np.asarray(losses.token_nll(logits, jnp.zeros((2, 1), jnp.int32), reduction="none"))[:, 0]
    # 4. gradients at the logit against the wrong confidence q
    q = 1.0 - np.geomspace(0.5, 1e-4, cfg.num_points).astype(np.float32)  # 0.5 ... 0.9999
    out["wrong_conf"] = q
    out["grad_q"] = np.asarray(GRAD_POINTS, np.float32)  # the quoted points, exactly
    both = _grads(jnp.asarray(np.concatenate([q, out["grad_q"]])), cfg.num_classes)  # one evaluation
    out["grad"] = {k: v[:len(q)] for k, v in both.items()}
    out["grad_points"] = {k: v[len(q):] for k, v in both.items()}
    out["train"] = _train_unit(cfg)
    return out


def _at(res, q):
    i = int(np.argmin(np.abs(res["grad_q"] - q)))
    return float(res["grad_q"][i]), {k: float(v[i]) for k, v in res["grad_points"].items()}


def _steps_to_half(p):
    above = np.nonzero(p > 0.5)[0]
    return int(above[0]) if above.size else len(p)  # len(p): never within the budget


def table(res: dict, cfg: Config) -> list[dict]:
    s_w, s_r = res["spam_cost_wrong"], res["spam_cost_right"]
    m = res["mse_points"]
    t = res["token_nll"]
    rows = [
        {"case": "not spam, predicted 99% spam", "quantity": "cross-entropy -ln(0.01)", "value": f"{s_w[0]:.3f}"},
        {"case": "not spam, predicted 51% spam", "quantity": "cross-entropy -ln(0.49)", "value": f"{s_w[1]:.3f}"},
        {"case": "spam, predicted 99% / 51% spam", "quantity": "cross-entropy -ln(0.99) / -ln(0.51)",
         "value": f"{s_r[0]:.4f} / {s_r[1]:.3f}"},
        {"case": "error 10,000 vs 100,000", "quantity": "squared error", "value": f"{m[0]:.3g} vs {m[1]:.3g} (x{m[1] / m[0]:.1f})"},
        {"case": "next token given p=0.85 / p=0.01", "quantity": "token NLL (nats)", "value": f"{t[0]:.4f} / {t[1]:.3f}"},
    ]
    for qv in GRAD_POINTS:
        q, g = _at(res, qv)
        rows.append({"case": f"wrong confidence {q:.3g}", "quantity": "gradient magnitude at the logit: CE, MSE on sigmoid; CE, MSE on softmax",
                     "value": f"{abs(g['bce_sigmoid']):.3g}, {abs(g['mse_sigmoid']):.3g}; "
                              f"{abs(g['ce_softmax']):.3g}, {abs(g['mse_softmax']):.3g}"})
    tr = res["train"]
    rows.append({"case": f"logistic unit starting {cfg.start_confidence:g} wrong, lr {cfg.learning_rate:g}",
                 "quantity": "GD steps until p_true > 1/2: CE / MSE",
                 "value": f"{_steps_to_half(tr['ce'])} / "
                          + (str(_steps_to_half(tr["mse"])) if _steps_to_half(tr["mse"]) <= cfg.steps else f"> {cfg.steps}")})
    return rows


def _close(name, value, expected, tol, detail):
    return {"name": name, "value": float(value), "passed": bool(abs(value - expected) <= tol),
            "detail": f"{detail}: {value:.6g} vs {expected:.6g} (tolerance {tol:g})"}


def checks(res: dict, cfg: Config) -> list[dict]:
    s_w = res["spam_cost_wrong"]
    m = res["mse_points"]
    t = res["token_nll"]
    q, g = _at(res, 0.999)
    # CE's gradient is exactly p - y: for the sigmoid, sigma(z) - 1 = -q; for softmax, p_true - 1 = -q
    qs = res["wrong_conf"]
    exact = max(float(np.max(np.abs(res["grad"]["bce_sigmoid"] + qs))), float(np.max(np.abs(res["grad"]["ce_softmax"] + qs))))
    n_ce, n_mse = _steps_to_half(res["train"]["ce"]), _steps_to_half(res["train"]["mse"])
    return [
        _close("wrong '99% spam' costs 4.61", s_w[0], -math.log(0.01), 0.005, "binary_cross_entropy, not spam, P(spam)=0.99"),
        _close("wrong '51% spam' costs 0.71", s_w[1], -math.log(0.49), 0.005, "binary_cross_entropy, not spam, P(spam)=0.51"),
        _close("squared error: 10x the error costs 100x", m[1] / m[0], 100.0, 1e-4, "mse(100,000) / mse(10,000)"),
        _close("token NLL at p = 0.85", t[0], -math.log(0.85), 1e-4, "token_nll"),
        _close("token NLL at p = 0.01", t[1], -math.log(0.01), 1e-3, "token_nll"),
        {"name": "CE gradient stays near 1 for confident mistakes", "value": min(abs(g["bce_sigmoid"]), abs(g["ce_softmax"])),
         "passed": min(abs(g["bce_sigmoid"]), abs(g["ce_softmax"])) >= 0.99,
         "detail": f"wrong confidence {q:.4g}: |dCE/dz| sigmoid {abs(g['bce_sigmoid']):.4f}, softmax {abs(g['ce_softmax']):.4f} (>= 0.99)"},
        {"name": "MSE-on-probability gradient vanishes for confident mistakes",
         "value": max(abs(g["mse_sigmoid"]), abs(g["mse_softmax"])),
         "passed": max(abs(g["mse_sigmoid"]), abs(g["mse_softmax"])) <= 0.01,
         "detail": f"wrong confidence {q:.4g}: |dMSE/dz| sigmoid {abs(g['mse_sigmoid']):.2e}, softmax {abs(g['mse_softmax']):.2e} (<= 0.01)"},
        {"name": "CE gradient is p - y", "value": exact, "passed": exact < 1e-5,
         "detail": f"max |jax.grad(loss) - (p - y)| over the curve = {exact:.2e} (< 1e-5, float32)"},
        {"name": "CE recovers from a confident mistake faster than MSE", "value": n_ce,
         "passed": n_ce < n_mse,
         "detail": f"start p_true={1 - cfg.start_confidence:.3g}: p_true > 1/2 after {n_ce} CE steps vs "
                   + (f"{n_mse}" if n_mse <= cfg.steps else f"> {cfg.steps}") + " MSE steps"},
    ]


#: One colour per loss in every panel: cross-entropy blue, squared error red; marked examples are black.
CE_COLOR, MSE_COLOR = "C0", "C3"


def plot(res: dict, cfg: Config) -> dict:
    from matplotlib import ticker

    fig, axes = plotting.figure(ncols=4, width=3.2, height=3.8, layout="constrained")
    # (a) cross-entropy vs p_true
    ax = axes[0, 0]
    p = res["p_true"]
    ax.plot(p, res["ce_curve"], color=CE_COLOR, label="cross-entropy  -ln p")
    marks = [(0.01, res["spam_cost_wrong"][0], "wrong '99% spam'", "o"),
             (0.49, res["spam_cost_wrong"][1], "wrong '51% spam'", "s"),
             (0.85, res["token_nll"][0], "token, p=0.85", "^")]
    for x, y, lab, m in marks:
        ax.plot([x], [y], m, color="k", ms=5, label=f"{lab}: {y:.2f}")
    ax.set(xlim=(0, 1.0), ylim=(0, 7.2), xlabel="probability given to the true class p",
           ylabel="loss (nats)", title="cross-entropy")
    plotting.legend_outside(ax, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.2))
    # (b) squared error
    ax = axes[0, 1]
    ax.plot(res["mse_err"], res["mse_curve"], color=MSE_COLOR, label="squared error  e$^2$")
    e = np.asarray([1e4, 1e5])
    for (x, y, m) in zip(e, res["mse_points"], ("o", "s")):
        ax.plot([x], [y], m, color="k", ms=5, label=f"e = {x:,.0f}: {y:.0e}")
    ax.set(xlabel="prediction error e", ylabel="loss", title="MSE: 10x error, 100x loss")
    plotting.log_axis(ax, "x")
    ax.set_yscale("log")       # twelve decades: a label every other decade
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, numticks=8))
    ax.yaxis.set_minor_locator(ticker.NullLocator())
    plotting.legend_outside(ax, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.2))
    # (c) gradient at the logit
    ax = axes[0, 2]
    q = res["wrong_conf"]
    x = 1.0 - q  # probability left on the true class: log axis resolves q -> 1
    g = res["grad"]
    ax.plot(x, np.abs(g["bce_sigmoid"]), color=CE_COLOR, label="CE, sigmoid")
    ax.plot(x, np.abs(g["ce_softmax"]), color=CE_COLOR, ls="--", label=f"CE, softmax ({cfg.num_classes} classes; same)")
    ax.plot(x, np.abs(g["mse_sigmoid"]), color=MSE_COLOR, label="MSE on sigmoid output")
    ax.plot(x, np.abs(g["mse_softmax"]), color=MSE_COLOR, ls="--", label="MSE on softmax probs")
    ax.set(xscale="log", yscale="log", ylim=(1e-5, 3), xlabel="p of the true class  (more confidently wrong \u2192)",
           ylabel="|dL/dz| at the true-class logit", title="gradient sent back")
    ax.invert_xaxis()  # more confidently wrong to the right
    plotting.legend_outside(ax, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.2))
    # (d) gradient descent from a confident mistake
    ax = axes[0, 3]
    tr = res["train"]
    steps = np.arange(len(tr["ce"]))
    ax.plot(steps, tr["ce"], color=CE_COLOR, label="cross-entropy")
    ax.plot(steps, tr["mse"], color=MSE_COLOR, label="MSE on sigmoid")
    ax.axhline(0.5, color="gray", ls=":", lw=0.8, label="p = 0.5 (decision boundary)")
    ax.set(ylim=(-0.02, 1.02), xlabel="gradient-descent step", ylabel="p of the true class",
           title=f"one unit, starts {cfg.start_confidence:g} wrong")
    plotting.legend_outside(ax, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.2))
    plotting.panel_letters(axes, title_size=10)
    return {"loss_functions": fig}

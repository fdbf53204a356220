"""Pure losses: arrays in, a number out.

Every loss takes predictions and targets as arrays and a ``reduction``:
``"mean"`` (average over examples, and over tokens / output dimensions where the
loss has them), ``"sum"`` (sum over examples) or ``"none"`` (one value per
example, or per token for :func:`token_nll`). All are computed from logits with
``log_softmax`` / ``log_sigmoid`` so they stay finite for logits of magnitude
1e4 and beyond.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(values, reduction: str, weights=None):
    _check_reduction(reduction)
    if reduction == "none":
        return values
    if weights is None:
        return jnp.sum(values) if reduction == "sum" else jnp.mean(values)
    total = jnp.sum(values * weights)
    if reduction == "sum":
        return total
    return total / jnp.maximum(jnp.sum(weights), 1.0)


def cross_entropy(logits, targets, *, label_smoothing: float = 0.0, reduction: str = "mean"):
    """Softmax cross-entropy ``-sum_k q_k log softmax(logits)_k``.

    Args:
      logits: [..., C] unnormalised scores.
      targets: integer labels [...] or a distribution over classes [..., C]
        (soft targets; rows should sum to 1).
      label_smoothing: epsilon in [0, 1): the target becomes
        ``(1 - eps) * onehot + eps / C`` (Szegedy et al. 2016).
      reduction: "mean" | "sum" | "none".

    Returns:
      A scalar, or the per-example losses [...] when ``reduction="none"``.
    """
    _check_reduction(reduction)
    logp = jax.nn.log_softmax(logits, axis=-1)
    num_classes = logits.shape[-1]
    if jnp.issubdtype(jnp.asarray(targets).dtype, jnp.integer):
        if targets.shape != logits.shape[:-1]:
            raise ValueError(
                f"cross_entropy: integer targets must have shape {logits.shape[:-1]}, got {targets.shape}")
        # A one-hot contraction rather than take_along_axis: its gradient is a dense
        # multiply instead of a scatter-add, which is much faster on CPU. Smoothing mixes
        # in the uniform distribution, q = (1-eps)*onehot + eps/C, inside the ONE
        # contraction: the two-reduction form (1-eps)*nll - eps*mean_k(logp_k) is
        # miscompiled by XLA:CPU (jax 0.10) under jit+vmap over many parameter points
        # (losses off by ~0.3 at eps=0; see tests/test_losses.py).
        q = (1.0 - label_smoothing) * jax.nn.one_hot(targets, num_classes, dtype=logp.dtype) \
            + label_smoothing / num_classes
        values = -jnp.sum(q * logp, axis=-1)
    else:
        if targets.shape != logits.shape:
            raise ValueError(
                f"cross_entropy: soft targets must have the logits' shape {logits.shape}, got {targets.shape}")
        q = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
        values = -jnp.sum(q * logp, axis=-1)
    return _reduce(values, reduction)


def binary_cross_entropy(logits, targets, *, reduction: str = "mean"):
    """Sigmoid binary cross-entropy from logits, ``-[y log s(z) + (1-y) log(1-s(z))]``.

    Args:
      logits: [...] real-valued scores z.
      targets: [...] labels in {0, 1} (or probabilities in [0, 1]).
      reduction: "mean" (over all elements) | "sum" | "none" (elementwise).

    Returns:
      A scalar, or elementwise losses for ``reduction="none"``.
    """
    _check_reduction(reduction)
    targets = jnp.asarray(targets, dtype=logits.dtype)
    if targets.shape != logits.shape:
        raise ValueError(f"binary_cross_entropy: logits {logits.shape} and targets {targets.shape} must match")
    values = -(targets * jax.nn.log_sigmoid(logits) + (1.0 - targets) * jax.nn.log_sigmoid(-logits))
    return _reduce(values, reduction)


def mse(predictions, targets, *, reduction: str = "mean"):
    """Squared error, averaged over the output dimensions of each example.

    Args:
      predictions: [B, ...] model outputs.
      targets: same shape as ``predictions``.
      reduction: "mean" (over examples too, i.e. over every element) | "sum"
        (over examples of the per-example mean) | "none" (per example [B]).

    Returns:
      A scalar or the per-example errors [B].
    """
    _check_reduction(reduction)
    if predictions.shape != targets.shape:
        raise ValueError(f"mse: predictions {predictions.shape} and targets {targets.shape} must match")
    sq = jnp.square(predictions - targets)
    values = jnp.mean(sq.reshape(sq.shape[0], -1), axis=-1) if sq.ndim > 1 else sq
    return _reduce(values, reduction)


def token_nll(logits, tokens, mask=None, *, reduction: str = "mean"):
    """Next-token negative log-likelihood in nats.

    Args:
      logits: [B, T, V] scores for the token at each position.
      tokens: [B, T] integer targets.
      mask: optional [B, T] weights (1 = count, 0 = ignore, e.g. padding).
      reduction: "mean" (over unmasked tokens) | "sum" (over unmasked tokens) |
        "none" (per token [B, T], masked entries set to 0).

    Returns:
      A scalar, or per-token losses [B, T].
    """
    _check_reduction(reduction)
    if logits.ndim != 3 or tokens.shape != logits.shape[:2]:
        raise ValueError(f"token_nll: expected logits [B,T,V] and tokens [B,T], got {logits.shape} and {tokens.shape}")
    values = cross_entropy(logits, tokens, reduction="none")
    if mask is None:
        return _reduce(values, reduction)
    mask = jnp.asarray(mask, dtype=values.dtype)
    if mask.shape != tokens.shape:
        raise ValueError(f"token_nll: mask must have the tokens' shape {tokens.shape}, got {mask.shape}")
    if reduction == "none":
        return values * mask
    return _reduce(values, reduction, weights=mask)


def accuracy(logits, labels, *, reduction: str = "mean"):
    """Fraction of argmax predictions equal to ``labels`` ([..., C] vs [...])."""
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return _reduce(correct, reduction)


LOSSES = {
    "cross_entropy": cross_entropy,
    "binary_cross_entropy": binary_cross_entropy,
    "mse": mse,
    "token_nll": token_nll,
}


def get_loss(name: str):
    """Loss function by name; ValueError listing the known names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]

"""Diagonal Fisher information estimators (the EWC importance of Kirkpatrick et al. 2017).

For a classifier with predictive distribution ``p(k | x, theta) = softmax(logits)_k`` the
diagonal Fisher over inputs ``x_1..x_N`` is

    F = 1/N sum_n sum_k p(k | x_n) (d/dtheta log p(k | x_n))^2          ("exact")

Estimators (Kunstner et al. 2019 and van de Ven 2025 discuss how they differ):

* ``"exact"``: the expectation over the model's own predictive distribution, per example
  (K gradients per example).
* ``"sampled"``: one label per example drawn from ``p(. | x_n)``; an unbiased one-sample
  estimate of the exact Fisher (Kirkpatrick et al.'s choice).
* ``"empirical"``: the true labels ``y_n`` instead of model samples (the "empirical Fisher").
* ``"batch"``: squared gradients of the *mean* loss of minibatches of ``batch_size``,
  averaged over minibatches (Avalanche's ``EWCPlugin``). For batch size b this is roughly
  ``empirical / b`` plus the squared mean gradient, so its scale depends on b.

All run inside jit (and vmap); examples are processed in chunks by ``lax.scan`` so memory
stays at ``chunk_size`` per-example gradients.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

FISHER_METHODS = ("exact", "sampled", "empirical", "batch")


def _check(method, chunk_size, batch_size, n):
    if method not in FISHER_METHODS:
        raise ValueError(f"fisher_diag: method must be one of {FISHER_METHODS}, got {method!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"fisher_diag: chunk_size must be a positive integer, got {chunk_size!r}")
    if method == "batch" and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                              or not 1 <= batch_size <= n):
        raise ValueError(f"fisher_diag: method='batch' needs batch_size, an integer in [1, {n}], got {batch_size!r}")


def _pad(x, size):
    n = x.shape[0]
    num = -(-n // size)
    pad = num * size - n
    if pad:
        x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)])
    return x.reshape((num, size) + x.shape[1:]), num


def fisher_diag(logits_fn, params, x, y=None, *, method: str = "exact", key=None,
                batch_size: int | None = None, chunk_size: int = 64):
    """The diagonal Fisher of a classifier over the inputs ``x``.

    Args:
      logits_fn: ``logits_fn(params, x_B) -> [B, K]`` logits (already masked to the active
        output units, e.g. with a large negative value on masked units).
      params: parameter pytree.
      x: inputs ``[N, ...]``.
      y: int labels ``[N]`` (needed for ``"empirical"`` and ``"batch"``).
      method: one of ``FISHER_METHODS`` (see the module docstring).
      key: PRNG key (needed for ``"sampled"``).
      batch_size: minibatch size for ``"batch"`` (the first ``N // batch_size`` full
        minibatches, in the given order, are used).
      chunk_size: examples per chunk of per-example gradients (memory only; results equal).

    Returns:
      A params-shaped pytree of non-negative values: the mean over examples (or minibatches)
      of squared gradients of ``log p``.
    """
    n = int(x.shape[0])
    _check(method, chunk_size, batch_size, n)
    if method in ("empirical", "batch") and y is None:
        raise ValueError(f"fisher_diag: method={method!r} needs the true labels y")
    if method == "sampled" and key is None:
        raise ValueError("fisher_diag: method='sampled' needs a PRNG key")
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    add_sq = lambda acc, g, w: jax.tree_util.tree_map(  # noqa: E731
        lambda a, b: a + jnp.sum(w.reshape((-1,) + (1,) * (b.ndim - 1)) * jnp.square(b), axis=0), acc, g)

    def logp_one(p, xi):
        return jax.nn.log_softmax(logits_fn(p, xi[None])[0])

    if method == "batch":
        nb = n // batch_size
        xb = x[: nb * batch_size].reshape((nb, batch_size) + x.shape[1:])
        yb = y[: nb * batch_size].reshape(nb, batch_size)

        def nll(p, xs, ys):
            logp = jax.nn.log_softmax(logits_fn(p, xs))
            return -jnp.mean(jnp.sum(jax.nn.one_hot(ys, logp.shape[-1], dtype=logp.dtype) * logp, axis=-1))

        def body(acc, b):
            g = jax.grad(nll)(params, *b)
            return jax.tree_util.tree_map(lambda a, gi: a + jnp.square(gi), acc, g), None

        acc, _ = jax.lax.scan(body, zeros, (xb, yb))
        return jax.tree_util.tree_map(lambda a: a / nb, acc)

    size = min(chunk_size, n)
    xc, num = _pad(x, size)
    valid = (jnp.arange(num * size) < n).astype(jnp.float32).reshape(num, size)
    if method == "exact":
        def body(acc, chunk):
            xs, w = chunk
            # J [B, K, ...]: gradient of every class's log-probability, per example
            jac = jax.vmap(jax.jacrev(logp_one), (None, 0))(params, xs)
            prob = jax.vmap(lambda xi: jnp.exp(logp_one(params, xi)))(xs)  # [B, K]
            weights = prob * w[:, None]
            acc = jax.tree_util.tree_map(
                lambda a, j: a + jnp.sum(weights.reshape(weights.shape + (1,) * (j.ndim - 2)) * jnp.square(j),
                                         axis=(0, 1)), acc, jac)
            return acc, None

        acc, _ = jax.lax.scan(body, zeros, (xc, valid))
        return jax.tree_util.tree_map(lambda a: a / n, acc)

    if method == "sampled":
        logits_all = jax.lax.map(lambda xs: jax.vmap(lambda xi: logp_one(params, xi))(xs), xc)
        labels = jax.random.categorical(key, logits_all)  # [num, size]
    else:
        labels, _ = _pad(jnp.asarray(y), size)

    def body(acc, chunk):
        xs, ys, w = chunk
        g = jax.vmap(jax.grad(lambda p, xi, yi: logp_one(p, xi)[yi]), (None, 0, 0))(params, xs, ys)
        return add_sq(acc, g, w), None

    acc, _ = jax.lax.scan(body, zeros, (xc, labels, valid))
    return jax.tree_util.tree_map(lambda a: a / n, acc)


__all__ = ["FISHER_METHODS", "fisher_diag"]

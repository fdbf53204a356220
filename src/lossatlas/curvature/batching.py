"""Exact means over a dataset, computed in chunks inside the compiled program.

Every curvature and landscape function takes either ``loss_fn(params) -> scalar``
(``data=None``) or ``loss_fn(params, batch) -> scalar`` plus ``data``, a pytree of
arrays sharing a leading example axis. ``loss_fn`` must return the *mean* over the
examples of ``batch`` (plus, optionally, terms that do not depend on the batch, such
as weight decay). The dataset objective is then the mean over all ``n`` examples:

    L(params) = sum_c (n_c / n) * loss_fn(params, chunk_c)

:func:`mean_over_data` evaluates any per-batch quantity (a loss, a gradient, a
Hessian-vector product: all linear in the per-example losses) this way: the
``n // chunk_size`` full chunks go through one ``lax.scan``; the ``n % chunk_size``
leftover examples, if any, are one more (statically shaped) call weighted by their
count. No padding or masking is needed, so the mean is exact for any ``n``, and only
one chunk's activations are alive at a time, even under ``grad`` or ``jvp``, because
the quantity itself is computed per chunk.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

__all__ = ["num_examples", "mean_over_data", "dataset_loss", "per_batch"]


def num_examples(data) -> int:
    """Size of the shared leading axis of every leaf of ``data`` (a static int).

    Raises:
      ValueError: if ``data`` has no leaves, a scalar leaf, or leaves whose leading
        axes differ.
    """
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("data has no arrays; pass data=None and a loss_fn(params) instead")
    sizes = set()
    for leaf in leaves:
        shape = jnp.shape(leaf)
        if len(shape) == 0:
            raise ValueError("every leaf of data needs a leading example axis; got a scalar leaf")
        sizes.add(shape[0])
    if len(sizes) != 1:
        raise ValueError(f"every leaf of data must share the leading example axis; got sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError("data has zero examples")
    return n


def _check_chunk(data, chunk_size):
    if data is None:
        if chunk_size is not None:
            raise ValueError("chunk_size was given but data is None; pass data=... to average over examples")
        return None
    n = num_examples(data)
    if chunk_size is None:
        return n
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return min(chunk_size, n)


def mean_over_data(fn: Callable[[Any], Any], data=None, chunk_size: int | None = None):
    """Example-weighted mean of ``fn(batch)`` over the chunks of ``data``.

    Args:
      fn: ``batch -> pytree of arrays``; called with ``None`` when ``data`` is None.
        It must be a batch mean for the result to equal ``fn(data)``.
      data: pytree of arrays with a shared leading example axis, or None.
      chunk_size: examples per chunk (a static int); None evaluates the whole
        dataset at once. Need not divide the number of examples.

    Returns:
      ``sum_c (n_c / n) fn(chunk_c)``, a pytree like ``fn``'s output.
    """
    size = _check_chunk(data, chunk_size)
    if data is None:
        return fn(None)
    n = num_examples(data)
    if size >= n:
        return fn(data)
    num_full, rem = divmod(n, size)
    head = jax.tree_util.tree_map(
        lambda x: x[: num_full * size].reshape((num_full, size) + x.shape[1:]), data)
    first = jax.tree_util.tree_map(lambda x: x[0], head)
    out_shape = jax.eval_shape(fn, first)
    init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)

    def body(acc, batch):
        return jax.tree_util.tree_map(jnp.add, acc, fn(batch)), None

    total, _ = jax.lax.scan(body, init, head)
    out = jax.tree_util.tree_map(lambda t: t * (size / n), total)
    if rem:
        tail = jax.tree_util.tree_map(lambda x: x[num_full * size:], data)
        out = jax.tree_util.tree_map(lambda o, t: o + t * (rem / n), out, fn(tail))
    return out


def per_batch(loss_fn: Callable, batch) -> Callable:
    """``params -> loss`` for one batch (``batch=None``: ``loss_fn(params)``)."""
    if batch is None:
        return lambda params: loss_fn(params)
    return lambda params: loss_fn(params, batch)


def dataset_loss(loss_fn: Callable, data=None, chunk_size: int | None = None) -> Callable:
    """``params -> mean loss over data``, evaluated in chunks (see module docstring).

    Use it for values; for gradients or Hessian-vector products prefer
    :func:`mean_over_data` with the derivative inside ``fn`` (one chunk alive at a
    time). ``jax.grad`` of the returned function is still correct.
    """
    _check_chunk(data, chunk_size)
    return lambda params: mean_over_data(lambda b: per_batch(loss_fn, b)(params), data, chunk_size)

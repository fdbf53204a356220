"""Exact means over a dataset, computed in chunks inside the compiled program.

Every analysis function (curvature, landscape, grads) takes either
``loss_fn(params) -> scalar`` (``data=None``) or ``loss_fn(params, batch) -> scalar``
plus ``data``, a pytree of arrays sharing a leading example axis. ``loss_fn`` must
return the *mean* over the examples of ``batch`` (plus, optionally, terms that do not
depend on the batch, such as weight decay). The dataset objective is then the mean over
all ``n`` examples::

    L(params) = sum_c (n_c / n) * loss_fn(params, chunk_c)

Two ways to walk a dataset in chunks, both exact for any ``n``:

* :func:`mean_over_data` evaluates any per-batch quantity that is a batch mean (a loss,
  a gradient, a Hessian-vector product) as a chunk-size-weighted mean: the
  ``n // chunk_size`` full chunks go through one ``lax.scan``; the ``n % chunk_size``
  leftover examples, if any, are one more (statically shaped) call weighted by their
  count. Only one chunk's activations are alive at a time, even under ``grad`` or
  ``jvp``, because the quantity itself is computed per chunk.
* :func:`chunk` / :func:`unchunk` fold the example axis into ``[num_chunks, size]``,
  padding the last chunk with copies of example 0 (real inputs, so padded losses stay
  finite) and returning a 0/1 mask that removes the padding exactly. Use them for
  per-example quantities (per-example gradients, their moments) where every chunk must
  have the same shape.

Everything here is shape-static and runs under ``jit`` and ``vmap``.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import validate

__all__ = ["chunk", "chunk_size_for", "dataset_loss", "mean_over_data", "num_examples", "per_batch",
           "unchunk"]

tree_map = jax.tree_util.tree_map


def num_examples(data, where: str = "", field: str = "data") -> int:
    """Size of the shared leading axis of every leaf of ``data`` (a static int).

    Args:
      data: pytree of arrays with a shared leading example axis.
      where, field: owner and argument name for error messages (see
        :func:`lossatlas.validate.label`).

    Returns:
      The number of examples ``n >= 1``.

    Raises:
      ValueError: if ``data`` has no leaves, a scalar leaf, leaves whose leading axes
        differ, or zero examples.
    """
    name = validate.label(where, field)
    leaves = jax.tree_util.tree_leaves_with_path(data)
    if not leaves:
        raise ValueError(f"{name} must be a pytree of arrays with a leading example axis, got no arrays")
    sizes = {}
    for path, leaf in leaves:
        shape = np.shape(leaf)
        if len(shape) == 0:
            raise ValueError(f"{name}{jax.tree_util.keystr(path)} must have a leading example axis, got a scalar")
        sizes[jax.tree_util.keystr(path)] = shape[0]
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{name} must be arrays sharing one leading example axis, got leading sizes {sizes}")
    n = next(iter(sizes.values()))
    if n < 1:
        raise ValueError(f"{name} must hold at least 1 example, got 0")
    return int(n)


def chunk_size_for(data, chunk_size: int | None, where: str = "") -> int | None:
    """The chunk size :func:`mean_over_data` will use, checked.

    Args:
      data: dataset pytree or None.
      chunk_size: examples per chunk, or None for the whole dataset at once.
      where: owner for error messages.

    Returns:
      None when ``data`` is None, else ``min(chunk_size, n)`` (``n`` when
      ``chunk_size`` is None).

    Raises:
      ValueError: ``chunk_size`` given without data, or not an integer >= 1.
    """
    if data is None:
        if chunk_size is not None:
            validate.fail(where, "chunk_size", chunk_size, "None when data is None (pass data=... to "
                          "average over examples)")
        return None
    n = num_examples(data, where)
    if chunk_size is None:
        return n
    return min(validate.integer(where, "chunk_size", chunk_size, 1, optional=True), n)


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
    size = chunk_size_for(data, chunk_size, "mean_over_data")
    if data is None:
        return fn(None)
    n = num_examples(data)
    if size >= n:
        return fn(data)
    num_full, rem = divmod(n, size)
    head = tree_map(lambda x: x[: num_full * size].reshape((num_full, size) + x.shape[1:]), data)
    first = tree_map(lambda x: x[0], head)
    out_shape = jax.eval_shape(fn, first)
    init = tree_map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)

    def body(acc, batch):
        return tree_map(jnp.add, acc, fn(batch)), None

    total, _ = jax.lax.scan(body, init, head)
    out = tree_map(lambda t: t * (size / n), total)
    if rem:
        tail = tree_map(lambda x: x[num_full * size:], data)
        out = tree_map(lambda o, t: o + t * (rem / n), out, fn(tail))
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

    Args:
      loss_fn: ``loss_fn(params)`` (``data=None``) or ``loss_fn(params, batch)``.
      data, chunk_size: dataset and chunking, as in :func:`mean_over_data`.

    Returns:
      ``params -> scalar``.
    """
    chunk_size_for(data, chunk_size, "dataset_loss")
    return lambda params: mean_over_data(lambda b: per_batch(loss_fn, b)(params), data, chunk_size)


def chunk(tree, n: int, size: int):
    """Pad the example axis to a multiple of ``size`` with copies of example 0 and fold it.

    Args:
      tree: pytree of arrays with leading example axis ``n``.
      n: number of examples (static int, see :func:`num_examples`).
      size: examples per chunk (static int ``>= 1``).

    Returns:
      ``(chunks, mask)``: ``tree`` with leaves ``[num_chunks, size, ...]``
      (``num_chunks = ceil(n / size)``) and a float32 mask ``[num_chunks, size]``,
      1 for real examples, 0 for padding. ``sum(mask * f(chunks)) / n`` is the exact
      mean of a per-example ``f``.
    """
    num = -(-n // size)
    pad = num * size - n

    def fold(a):
        a = jnp.asarray(a)
        if pad:
            a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])])
        return a.reshape((num, size) + a.shape[1:])

    mask = (jnp.arange(num * size) < n).astype(jnp.float32).reshape(num, size)
    return tree_map(fold, tree), mask


def unchunk(tree, n: int):
    """Inverse of :func:`chunk` for outputs with leading ``[num_chunks, size]``.

    Args:
      tree: pytree of arrays ``[num_chunks, size, ...]``.
      n: number of real examples.

    Returns:
      ``tree`` with leaves ``[n, ...]`` (padding dropped).
    """
    return tree_map(lambda a: a.reshape((-1,) + a.shape[2:])[:n], tree)

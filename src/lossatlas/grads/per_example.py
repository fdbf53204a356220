"""Per-example gradients: ``vmap(grad)``, optionally chunked with ``lax.map``."""
from __future__ import annotations

import functools

import jax

from lossatlas import validate
from lossatlas.batching import chunk, num_examples, unchunk
from lossatlas.grads._util import batch_grads, check_params


def per_example(loss_fn, params, batch, chunk_size=None):
    """The gradient of every example's loss, stacked along a new leading axis.

    Example ``i``'s loss is ``loss_fn(params, batch_i)`` where ``batch_i`` is the
    batch tree sliced to ``leaf[i:i + 1]`` (a batch of one). With a mean loss the
    mean over the leading axis of the result is the full-batch gradient.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (mean loss of the batch).
      params: parameter pytree.
      batch: pytree of arrays sharing a leading example axis of size N.
      chunk_size: ``None`` vmaps over all N examples at once; an int runs
        ``lax.map`` over chunks of that many examples (less memory), padding the
        last chunk and dropping the padding, so any N is handled exactly.

    Returns:
      A params-shaped pytree whose leaves have shape ``[N, *leaf.shape]``.

    Raises:
      ValueError: empty or ragged ``batch``, non-float params, bad ``chunk_size``.

    The whole computation is one jitted call; ``loss_fn`` is a static argument, so
    reuse the same function object to reuse the compiled program.
    """
    fn = "grads.per_example"
    check_params(fn, params)
    n = num_examples(batch, fn, "batch")
    if chunk_size is not None:
        chunk_size = min(validate.integer(fn, "chunk_size", chunk_size, 1), n)
    return _per_example(loss_fn, chunk_size, params, batch)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _per_example(loss_fn, chunk_size, params, batch):
    if chunk_size is None:
        return batch_grads(loss_fn, params, batch)
    n = jax.tree_util.tree_leaves(batch)[0].shape[0]
    chunks, _ = chunk(batch, n, chunk_size)
    out = jax.lax.map(lambda c: batch_grads(loss_fn, params, c), chunks)
    return unchunk(out, n)

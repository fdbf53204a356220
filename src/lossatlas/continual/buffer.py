"""A fixed-size episodic memory held in a strategy's state (replay, A-GEM).

All arrays have a fixed shape (``capacity`` slots), so the buffer lives in the carry of a
``lax.scan`` and vmaps over seeds and lambdas. Two ways to fill it:

* :func:`reservoir_add`: Vitter's (1985) algorithm R, one decision per incoming example with
  its own PRNG key: example number ``i`` (0-based, counted over the whole stream) goes to slot
  ``i`` while ``i < capacity``, otherwise to slot ``j ~ U{0..i}`` if ``j < capacity``. Every
  example seen so far is then in the buffer with probability ``capacity / seen``. A batch is
  inserted at once: the draws do not depend on the buffer's contents, so resolving slot
  collisions inside a batch in favour of the later example gives exactly the sequential
  algorithm.
* :func:`add_task_examples`: at the end of task ``t`` a random sample of its training set
  fills the slots ``[t*m, (t+1)*m)``, ``m = capacity // num_tasks`` (GEM / A-GEM's
  per-task episodic memory, Lopez-Paz & Ranzato 2017, Chaudhry et al. 2019).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Buffer(NamedTuple):
    """Episodic memory.

    Attributes:
      x: ``[C, ...]`` stored inputs; y: ``[C]`` labels; task: ``[C]`` task ids.
      filled: ``[C]`` bool, which slots hold an example.
      seen: scalar int32, examples offered to :func:`reservoir_add` so far.
    """
    x: jax.Array
    y: jax.Array
    task: jax.Array
    filled: jax.Array
    seen: jax.Array


def buffer_init(capacity: int, example_shape: tuple, dtype=jnp.float32) -> Buffer:
    """An empty buffer of ``capacity`` slots for examples shaped ``example_shape``."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(f"buffer_init: capacity must be a positive integer, got {capacity!r}")
    return Buffer(jnp.zeros((capacity,) + tuple(example_shape), dtype), jnp.zeros((capacity,), jnp.int32),
                  jnp.zeros((capacity,), jnp.int32), jnp.zeros((capacity,), bool), jnp.zeros((), jnp.int32))


def reservoir_slots(seen, batch: int, capacity: int, key):
    """Slot of each of ``batch`` new examples under algorithm R (``capacity`` = dropped).

    Args:
      seen: examples offered before this batch (int32 scalar).
      batch: number of new examples (static).
      capacity: buffer size (static).
      key: PRNG key; example ``b`` uses ``fold_in(key, b)``.

    Returns:
      int32 ``[batch]`` slots, unique among kept examples (collisions resolved for the later
      example, as the sequential algorithm would).
    """
    idx = seen + jnp.arange(batch, dtype=jnp.int32)  # global example numbers
    draw = jax.vmap(lambda b, i: jax.random.randint(jax.random.fold_in(key, b), (), 0, jnp.maximum(i + 1, 1)))(
        jnp.arange(batch), idx)
    slot = jnp.where(idx < capacity, idx, draw)
    keep = slot < capacity
    # a later example of this batch writing the same slot overwrites this one
    later = jnp.arange(batch)[None, :] > jnp.arange(batch)[:, None]
    overwritten = jnp.any(later & (slot[None, :] == slot[:, None]) & keep[None, :], axis=1)
    return jnp.where(keep & ~overwritten, slot, capacity).astype(jnp.int32)


def reservoir_add(buf: Buffer, x, y, task, key) -> Buffer:
    """Offer a batch ``(x [B, ...], y [B], task [B])`` to the buffer (algorithm R)."""
    capacity, b = buf.y.shape[0], y.shape[0]
    slot = reservoir_slots(buf.seen, b, capacity, key)
    put = lambda arr, v: arr.at[slot].set(v, mode="drop")  # noqa: E731
    return Buffer(put(buf.x, x.astype(buf.x.dtype)), put(buf.y, y.astype(jnp.int32)),
                  put(buf.task, task.astype(jnp.int32)), put(buf.filled, jnp.ones((b,), bool)), buf.seen + b)


def add_task_examples(buf: Buffer, x_task, y_task, task, num_tasks: int, key) -> Buffer:
    """Store a random sample of task ``task``'s examples in its ``capacity // num_tasks`` slots."""
    capacity = buf.y.shape[0]
    m = capacity // num_tasks
    if m < 1:
        raise ValueError(f"episodic memory: capacity={capacity} gives no slot per task for {num_tasks} tasks")
    m = min(m, x_task.shape[0])
    pick = jax.random.permutation(key, x_task.shape[0])[:m]
    start = (task * m).astype(jnp.int32)
    upd = lambda arr, v: jax.lax.dynamic_update_slice_in_dim(arr, v, start, axis=0)  # noqa: E731
    return Buffer(upd(buf.x, x_task[pick].astype(buf.x.dtype)), upd(buf.y, y_task[pick].astype(jnp.int32)),
                  upd(buf.task, jnp.full((m,), task, jnp.int32)), upd(buf.filled, jnp.ones((m,), bool)),
                  buf.seen + m)


def sample(buf: Buffer, key, size: int) -> dict:
    """``size`` examples drawn uniformly (with replacement) from the filled slots.

    Costs ``size`` random integers and a search in the running count of filled slots (not
    ``size x capacity`` draws), so it is cheap enough for every step.

    Returns:
      A batch dict ``{"x", "y", "task", "weight"}``; ``weight`` is 0 for every example when
      the buffer is still empty (so a loss weighted by it ignores them), else 1.
    """
    count = jnp.cumsum(buf.filled.astype(jnp.int32))  # filled slots up to each slot
    n = count[-1]
    r = jax.random.randint(key, (size,), 0, jnp.maximum(n, 1))  # the r-th filled slot, uniformly
    idx = jnp.minimum(jnp.searchsorted(count, r + 1), buf.y.shape[0] - 1)
    return {"x": buf.x[idx], "y": buf.y[idx], "task": buf.task[idx],
            "weight": buf.filled[idx].astype(jnp.float32)}


__all__ = ["Buffer", "add_task_examples", "buffer_init", "reservoir_add", "reservoir_slots", "sample"]

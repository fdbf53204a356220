"""Memory-based strategies: experience replay and A-GEM, with their episodic memory hooks.

Part of :mod:`lossatlas.continual.strategies` (which re-exports every name here); the memory
itself is :mod:`lossatlas.continual.buffer`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from lossatlas.continual import buffer as membuf
from lossatlas.continual.strategy_base import Strategy, _check_posint, tmap


MEMORIES = ("reservoir", "per_task")


def _memory_hooks(fn, capacity, memory):
    """(init, observe, consolidate) that keep a :class:`~lossatlas.continual.buffer.Buffer` filled."""
    capacity = _check_posint(fn, "capacity", capacity)
    if memory not in MEMORIES:
        raise ValueError(f"{fn}: memory must be one of {MEMORIES}, got {memory!r}")

    def init(params, ctx):
        if memory == "per_task" and capacity < ctx.num_tasks:
            raise ValueError(f"{fn}: memory='per_task' needs capacity >= num_tasks={ctx.num_tasks}, got {capacity}")
        x = ctx.data["x_train"]
        return membuf.buffer_init(capacity, x.shape[2:], x.dtype)

    def observe(state, grads, old, new, batch, ctx):
        if memory != "reservoir":
            return state
        return membuf.reservoir_add(state, batch["x"], batch["y"], batch["task"], jax.random.fold_in(ctx.key, 22))

    def consolidate(state, params, ctx):
        if memory != "per_task":
            return state
        t = ctx.task
        return membuf.add_task_examples(state, ctx.data["x_train"][t], ctx.data["y_train"][t], t, ctx.num_tasks,
                                        jax.random.fold_in(ctx.key, 33))

    return init, observe, consolidate


def replay(capacity: int = 200, *, replay_batch: int | None = None, memory: str = "reservoir") -> Strategy:
    """Experience replay with an episodic memory (Chaudhry et al. 2019, "On tiny episodic memories").

    Each step the batch is the current minibatch concatenated with ``replay_batch`` examples
    drawn from the memory (the loss is the mean over both; drawn examples are scored with
    their own task's mask). The memory is filled by reservoir sampling over the whole stream
    (``memory="reservoir"``, default) or with ``capacity // T`` random examples of each task
    at its end (``"per_task"``).

    Args:
      capacity: memory slots.
      replay_batch: memory examples per step (default: the training batch size).
      memory: ``"reservoir"`` or ``"per_task"``.
    """
    fn = "replay"
    replay_batch = _check_posint(fn, "replay_batch", replay_batch, optional=True)
    init, observe, consolidate = _memory_hooks(fn, capacity, memory)

    def loss(state, params, batch, ctx):
        mem = membuf.sample(state, jax.random.fold_in(ctx.key, 44), replay_batch or ctx.batch_size)
        both = {k: jnp.concatenate([batch[k], mem[k].astype(batch[k].dtype)]) for k in ("x", "y", "task", "weight")}
        return ctx.loss(params, both)

    return Strategy("replay", init=init, loss=loss, observe=observe, consolidate=consolidate,
                    spec=("replay", capacity, replay_batch, memory), uses_lam=False)


def agem_project(grads, ref_grads):
    """A-GEM's projection (Chaudhry et al. 2019): if ``g . g_ref < 0`` return
    ``g - (g . g_ref / g_ref . g_ref) g_ref``, else ``g`` (dot products over the whole pytree)."""
    leaves = lambda t: jax.tree_util.tree_leaves(t)  # noqa: E731
    dot = sum(jnp.vdot(a, b) for a, b in zip(leaves(grads), leaves(ref_grads)))
    ref_sq = sum(jnp.vdot(b, b) for b in leaves(ref_grads))
    coef = jnp.where(dot < 0, dot / jnp.where(ref_sq > 0, ref_sq, 1.0), 0.0)
    return tmap(lambda g, r: g - coef * r, grads, ref_grads)


def agem(capacity: int = 200, *, ref_batch: int = 256, memory: str = "per_task") -> Strategy:
    """Averaged gradient episodic memory, A-GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny 2019).

    Each step a reference gradient ``g_ref`` of the loss on ``ref_batch`` examples drawn from
    the memory constrains the update: if the step's gradient ``g`` has ``g . g_ref < 0`` it
    is projected to ``g - (g . g_ref / |g_ref|^2) g_ref`` (see :func:`agem_project`). The
    memory holds ``capacity // T`` random examples of each finished task (``"per_task"``,
    the paper's episodic memory) or a reservoir sample of everything seen (``"reservoir"``).
    """
    fn = "agem"
    ref_batch = _check_posint(fn, "ref_batch", ref_batch)
    init, observe, consolidate = _memory_hooks(fn, capacity, memory)

    def update(state, grads, params, batch, ctx):
        ref = membuf.sample(state, jax.random.fold_in(ctx.key, 55), ref_batch)
        ref_grads = jax.grad(ctx.loss)(params, ref)  # all-zero when the memory is empty
        return agem_project(grads, ref_grads), state

    return Strategy("agem", init=init, update=update, observe=observe, consolidate=consolidate,
                    spec=("agem", capacity, ref_batch, memory), uses_lam=False)

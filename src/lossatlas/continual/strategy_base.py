"""The :class:`Strategy` type, the :class:`Context` its hooks see, and the default hooks.

Part of :mod:`lossatlas.continual.strategies` (which re-exports every name here and documents
the hook protocol and the lambda convention).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

NEG = -1e9  # logit given to masked-out output units (finite: keeps gradients finite)

tmap = jax.tree_util.tree_map


class Context(NamedTuple):
    """What a hook sees besides its state (built inside the program; not a jit argument).

    Attributes:
      task: int32 scalar, the task being trained (at ``consolidate``: the task just finished).
      step: int32 scalar, global optimiser step.
      key: PRNG key for this call (fresh per step / per consolidation).
      lam: float32 scalar, the regularisation strength (a vmap axis).
      data: the stream on the device: ``x_train [T, N, ...]``, ``y_train [T, N]``,
        ``x_test``, ``y_test``, ``masks [T, T, K]`` (bool).
      apply: ``apply(params, x) -> logits [B, K]`` (unmasked).
      loss: ``loss(params, batch) -> scalar``: weighted mean cross-entropy of a batch
        ``{"x", "y", "task", "weight"}`` at the current task, each example's logits masked
        with ``data["masks"][task, example_task]``.
      num_tasks, batch_size: static ints.
      member: int32 scalar, which member of a :func:`~lossatlas.continual.stack_strategies`
        stack runs (a vmap axis like ``lam``; 0 for a plain strategy).
    """
    task: Any
    step: Any
    key: Any
    lam: Any
    data: dict
    apply: Callable
    loss: Callable
    num_tasks: int
    batch_size: int
    member: Any = 0


def masked(logits, mask):
    """``logits`` with masked-out units set to a large negative number (mask broadcasts)."""
    return jnp.where(mask, logits, jnp.asarray(NEG, logits.dtype))


def _no_init(params, ctx):
    return ()


def _plain_loss(state, params, batch, ctx):
    return ctx.loss(params, batch)


def _no_update(state, grads, params, batch, ctx):
    return grads, state


def _no_observe(state, grads, old_params, new_params, batch, ctx):
    return state


def _no_consolidate(state, params, ctx):
    return state


class Strategy(NamedTuple):
    """One continual-learning strategy: pure functions and a hashable identity.

    Attributes:
      name: short name (``"ewc"``, ``"si"``, ...).
      init: ``init(params, ctx) -> state`` (a pytree, usually a NamedTuple).
      loss: ``loss(state, params, batch, ctx) -> scalar``, the objective of one step.
      update: ``update(state, grads, params, batch, ctx) -> (grads, state)``, applied to the
        gradient of ``loss`` before the optimiser.
      observe: ``observe(state, grads, old_params, new_params, batch, ctx) -> state`` after
        the optimiser step (``grads``: the gradient of ``loss`` before ``update``).
      consolidate: ``consolidate(state, params, ctx) -> state`` at the end of every task.
      lam: default regularisation strength (used when ``run_stream`` gets no ``lams``).
      spec: hashable identity ``(name, static hyperparameters...)``: two strategies with the
        same spec share compiled programs. ``None`` compares by the hook functions.
      uses_lam: whether the hooks read ``ctx.lam``. ``run_stream`` refuses a grid of several
        lambdas for a strategy that does not (its members would be identical runs).
        Default True, so a custom strategy is never refused.
      members: ``((label, Strategy), ...)`` for a stack of strategies
        (:func:`~lossatlas.continual.stack_strategies`), empty otherwise.
    """
    name: str
    init: Callable = _no_init
    loss: Callable = _plain_loss
    update: Callable = _no_update
    observe: Callable = _no_observe
    consolidate: Callable = _no_consolidate
    lam: float = 0.0
    spec: Any = None
    uses_lam: bool = True
    members: tuple = ()

    def _identity(self):
        return self.spec if self.spec is not None else tuple(self[:6])

    def __hash__(self):
        return hash(self._identity())

    def __eq__(self, other):
        return isinstance(other, Strategy) and self._identity() == other._identity()

    def __ne__(self, other):
        return not self == other


# ----------------------------------------------------------------------------- helpers

def _check_nonneg(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value != value \
            or value == float("inf"):
        raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_posint(fn, name, value, optional=False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer{' or None' if optional else ''}, got {value!r}")
    return value

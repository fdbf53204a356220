"""Continual-learning strategies as pure functions with a NamedTuple state (optax style).

A :class:`Strategy` is an ``init`` / ``update`` pair plus three optional hooks; the stream
program (``lossatlas.continual.program``) calls them in the same places for every strategy,
so its training loop never branches on which strategy runs::

    state = init(params, ctx)                                      # once, before task 0
    per step:
      loss, grads = value_and_grad(loss)(state, params, batch, ctx)  # objective of this step
      grads, state = update(state, grads, params, batch, ctx)      # e.g. A-GEM projection
      params' = optimizer step with grads
      state = observe(state, raw_grads, params, params', batch, ctx)  # e.g. SI path integral,
                                                                    #      reservoir insertion
    after each task:
      state = consolidate(state, params, ctx)                      # EWC Fisher, SI omega,
                                                                    # LwF teacher, memory
The default hooks do nothing (``loss`` is the plain loss of the batch), so naive fine-tuning
is ``Strategy("naive")`` with every default.

The lambda convention (one for every strategy)
------------------------------------------------
``lam`` is a traced scalar of the program (``ctx.lam``), so a grid of values is a vmap axis.
Every quadratic penalty is

    loss = L_task + (lam / 2) * sum_k w_k (theta_k - theta*_k)^2

with ``w = 1`` (L2), ``w = F`` (EWC, the Fisher of the earlier tasks), ``w = Omega`` (SI).
This is Kirkpatrick et al.'s (2017) form, so their lambda is ``lam``. Zenke et al.'s (2017)
SI strength ``c`` (``L + c sum Omega (theta - theta*)^2``) is ``lam / 2``. Avalanche's
``EWCPlugin(ewc_lambda)`` adds ``ewc_lambda * sum F (theta - theta*)^2`` with no 1/2 (checked
in avalanche/training/plugins/ewc.py), so ``ewc_lambda = lam / 2``; note also that its
default importance is the ``"batch"`` estimator here (squared minibatch gradients, of order
``1/batch_size`` of the per-example Fisher), so to match an Avalanche run use
``ewc(fisher="batch", fisher_batch=train_mb_size)`` and ``lam = 2 * ewc_lambda``. For LwF,
``loss = L_task + lam * KD``.

Multi-task EWC (Kirkpatrick et al.'s sum of one penalty per earlier task) is stored as one
quadratic: ``sum_t F_t (theta - theta*_t)^2 = A (theta - m)^2 + const`` with ``A = sum_t F_t``
and ``m = sum_t F_t theta*_t / A``; the gradients are identical, the reported penalty omits
the constant (it does not depend on ``theta``).

Layout: the :class:`Strategy` type, :class:`Context` and the default hooks are in
:mod:`lossatlas.continual.strategy_base`; L2, EWC, SI and LwF in
:mod:`lossatlas.continual.regularisers`; replay and A-GEM in :mod:`lossatlas.continual.replay`;
the baselines (:func:`naive`, :func:`joint`) and the registry (:data:`STRATEGIES`,
:func:`get_strategy`) here. Every name is importable from this module.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from lossatlas.continual.fisher import FISHER_METHODS, fisher_diag  # noqa: F401 -- importable from here
from lossatlas.continual.regularisers import (LwFState, Quadratic, SIState, distillation, ewc, l2, lwf,
                                              quadratic_penalty, si)
from lossatlas.continual.replay import MEMORIES, agem, agem_project, replay
from lossatlas.continual.strategy_base import NEG, Context, Strategy, masked, tmap  # noqa: F401

# ----------------------------------------------------------------------------- baselines

def naive() -> Strategy:
    """Plain fine-tuning: train on each task in turn, no protection against forgetting."""
    return Strategy("naive", spec=("naive",), uses_lam=False)


def joint(all_tasks: bool = False) -> Strategy:
    """Joint training, the upper bound: every step draws its batch from earlier tasks too.

    Args:
      all_tasks: False: at task ``t`` each example of the batch is drawn uniformly from the
        training data of tasks ``0..t`` (cumulative joint training); True: from every task of
        the stream from the start (multitask training; the accuracy matrix then shows the
        multitask model throughout).

    The batch the program offers is replaced (same size), drawn with replacement; each drawn
    example is scored with the mask of its own task (``masks[t, s]``).
    """
    if not isinstance(all_tasks, bool):
        raise ValueError(f"joint: all_tasks must be True or False, got {all_tasks!r}")

    def loss(state, params, batch, ctx):
        b = batch["y"].shape[0]
        k_task, k_ex = jax.random.split(jax.random.fold_in(ctx.key, 11))
        hi = ctx.num_tasks if all_tasks else ctx.task + 1
        s = jax.random.randint(k_task, (b,), 0, hi)
        n = jax.random.randint(k_ex, (b,), 0, ctx.data["y_train"].shape[1])
        drawn = {"x": ctx.data["x_train"][s, n], "y": ctx.data["y_train"][s, n], "task": s,
                 "weight": jnp.ones((b,), jnp.float32)}
        return ctx.loss(params, drawn)

    return Strategy("joint", loss=loss, spec=("joint", all_tasks), uses_lam=False)


#: name -> constructor, for configs and the CLI.
STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "naive": naive, "joint": joint, "l2": l2, "ewc": ewc,
    "online_ewc": lambda lam=100.0, **kw: ewc(lam, online=True, **kw),
    "si": si, "replay": replay, "agem": agem, "lwf": lwf,
}


def get_strategy(name: str, **kwargs) -> Strategy:
    """Build a strategy by name (``STRATEGIES``); unknown names raise a ValueError listing the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name](**kwargs)


__all__ = ["Context", "LwFState", "MEMORIES", "NEG", "Quadratic", "SIState", "STRATEGIES", "Strategy", "agem",
           "agem_project", "distillation", "ewc", "get_strategy", "joint", "l2", "lwf", "masked", "naive",
           "quadratic_penalty", "replay", "si"]

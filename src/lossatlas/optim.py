"""Optimisers, schedules and clipping built from plain values (optax underneath).

Every hyperparameter may be a Python float or a traced JAX scalar, so the same
builder serves a single run and a ``vmap`` over a hyperparameter grid.
"""
from __future__ import annotations

import optax

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "cosine", "warmup", "warmup_cosine")


def _is_zero(value) -> bool:
    return isinstance(value, (int, float)) and value == 0


def make_schedule(learning_rate, schedule: str = "constant", *, total_steps: int = 1,
                  warmup_steps: int = 0, final_fraction: float = 0.0):
    """A learning-rate schedule ``step -> lr``.

    Args:
      learning_rate: peak learning rate (float or traced scalar).
      schedule: "constant" | "cosine" (decay to ``final_fraction * lr`` over
        ``total_steps``, Loshchilov & Hutter 2017) | "warmup" (linear warmup over
        ``warmup_steps`` then constant) | "warmup_cosine" (linear warmup, then cosine).
      total_steps: length of the run in optimiser steps (static int).
      warmup_steps: number of warmup steps (static int, < total_steps).
      final_fraction: final lr as a fraction of the peak for cosine schedules.

    Returns:
      An optax schedule.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return optax.constant_schedule(learning_rate)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(learning_rate, max(total_steps, 1), alpha=final_fraction)
    if warmup_steps <= 0:
        raise ValueError(f"schedule={schedule!r} needs warmup_steps >= 1, got {warmup_steps}")
    if schedule == "warmup":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, learning_rate, warmup_steps), optax.constant_schedule(learning_rate)],
            [warmup_steps])
    # Built by hand: optax.warmup_cosine_decay_schedule branches on ``peak_value == 0``
    # in Python, which fails for a traced learning rate (jit / vmap sweeps).
    return optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, warmup_steps),
         optax.cosine_decay_schedule(learning_rate, max(total_steps - warmup_steps, 1), alpha=final_fraction)],
        [warmup_steps])


def make_optimizer(name: str, learning_rate, *, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8,
                   weight_decay=0.0, rmsprop_decay=0.9, schedule: str = "constant",
                   total_steps: int = 1, warmup_steps: int = 0, clip_norm=None,
                   clip_value=None) -> optax.GradientTransformation:
    """Build an optax optimiser chain: clipping -> weight decay -> optimiser.

    Args:
      name: one of ``OPTIMIZERS``: "sgd", "momentum" (heavy ball, Polyak 1964),
        "nesterov" (Nesterov 1983 / Sutskever et al. 2013), "adam" (Kingma & Ba
        2015), "adamw" (decoupled weight decay, Loshchilov & Hutter 2019),
        "rmsprop" (Tieleman & Hinton 2012), "adagrad" (Duchi et al. 2011).
      learning_rate: peak step size (float or traced scalar, >= 0).
      momentum: momentum coefficient for "momentum"/"nesterov".
      b1, b2, eps: Adam/AdamW moment decay rates and epsilon.
      weight_decay: for "adamw" the decoupled decay; for every other optimiser an
        L2 penalty ``wd * params`` added to the gradient (after clipping).
      rmsprop_decay: decay of RMSProp's squared-gradient average.
      schedule, total_steps, warmup_steps: see :func:`make_schedule`.
      clip_norm: if not None, clip the gradient to this global norm (Pascanu et
        al. 2013) before anything else.
      clip_value: if not None, clip each gradient element to [-v, v].

    Returns:
      An ``optax.GradientTransformation``.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    lr = make_schedule(learning_rate, schedule, total_steps=total_steps, warmup_steps=warmup_steps)
    parts = []
    if clip_value is not None:
        parts.append(optax.clip(clip_value))
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    if name != "adamw" and not _is_zero(weight_decay):
        parts.append(optax.add_decayed_weights(weight_decay))
    if name == "sgd":
        parts.append(optax.sgd(lr))
    elif name == "momentum":
        parts.append(optax.sgd(lr, momentum=momentum))
    elif name == "nesterov":
        parts.append(optax.sgd(lr, momentum=momentum, nesterov=True))
    elif name == "adam":
        parts.append(optax.adam(lr, b1=b1, b2=b2, eps=eps))
    elif name == "adamw":
        parts.append(optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay))
    elif name == "rmsprop":
        parts.append(optax.rmsprop(lr, decay=rmsprop_decay, eps=eps))
    else:
        parts.append(optax.adagrad(lr, eps=eps))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)

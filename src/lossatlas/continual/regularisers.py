"""Regularisation strategies: L2, EWC / online EWC, SI (quadratic penalties) and LwF (distillation).

Part of :mod:`lossatlas.continual.strategies` (which re-exports every name here); the lambda
convention is documented there: every quadratic penalty is ``(lam/2) sum_k w_k (theta_k - theta*_k)^2``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from lossatlas.continual.fisher import FISHER_METHODS, fisher_diag
from lossatlas.continual.strategy_base import Strategy, _check_nonneg, _check_posint, masked, tmap


def quadratic_penalty(params, importance, anchor):
    """``0.5 * sum_k w_k (theta_k - anchor_k)^2`` over a pytree."""
    terms = tmap(lambda p, w, a: jnp.sum(w * jnp.square(p - a)), params, importance, anchor)
    return 0.5 * sum(jax.tree_util.tree_leaves(terms))


class Quadratic(NamedTuple):
    """State of the quadratic strategies: per-parameter weights and the anchor point."""
    importance: Any
    anchor: Any


def _quadratic_loss(state, params, batch, ctx):
    return ctx.loss(params, batch) + ctx.lam * quadratic_penalty(params, state.importance, state.anchor)


def _quadratic_init(params, ctx):
    return Quadratic(tmap(jnp.zeros_like, params), tmap(jnp.array, params))


# ----------------------------------------------------------------------------- strategies

def l2(lam: float = 1.0) -> Strategy:
    """L2 to the previous solution: ``(lam/2) ||theta - theta*_{t-1}||^2`` (Kirkpatrick et al. 2017's baseline).

    Every parameter is pulled with the same stiffness towards the parameters at the end of
    the previous task (the anchor moves after every task).
    """
    lam = _check_nonneg("l2", "lam", lam)

    def consolidate(state, params, ctx):
        return Quadratic(tmap(jnp.ones_like, params), tmap(jnp.array, params))

    return Strategy("l2", init=_quadratic_init, loss=_quadratic_loss, consolidate=consolidate, lam=lam,
                    spec=("l2",))


def ewc(lam: float = 100.0, *, fisher: str = "exact", online: bool = False, gamma: float = 1.0,
        fisher_examples: int | None = None, fisher_batch: int | None = None, chunk_size: int = 64) -> Strategy:
    """Elastic weight consolidation (Kirkpatrick et al. 2017) and online EWC (Schwarz et al. 2018).

    After task ``t`` the diagonal Fisher ``F_t`` of the model on task ``t``'s training inputs
    (logits masked to ``masks[t, t]``) is computed with :func:`~lossatlas.continual.fisher.fisher_diag`.

    * ``online=False`` (Kirkpatrick et al.): one penalty per earlier task,
      ``(lam/2) sum_t sum_k F_t,k (theta_k - theta*_t,k)^2``.
    * ``online=True`` (Schwarz et al. 2018, "Progress & compress"): one running Fisher
      ``F* <- gamma F* + F_t`` anchored at the latest solution,
      ``(lam/2) sum_k F*_k (theta_k - theta*_t,k)^2``.

    Args:
      lam: default strength (see :mod:`lossatlas.continual.strategies` for the convention).
      fisher: ``"exact"``, ``"sampled"``, ``"empirical"`` or ``"batch"`` (``FISHER_METHODS``).
      online: online EWC.
      gamma: decay of the running Fisher (online only), in [0, 1].
      fisher_examples: use the first this many training examples of the task (default all).
      fisher_batch: minibatch size of the ``"batch"`` estimator (default the training batch size).
      chunk_size: per-example gradients held at once (memory only).
    """
    fn = "ewc"
    lam = _check_nonneg(fn, "lam", lam)
    if fisher not in FISHER_METHODS:
        raise ValueError(f"ewc: fisher must be one of {FISHER_METHODS}, got {fisher!r}")
    if not isinstance(online, bool):
        raise ValueError(f"ewc: online must be True or False, got {online!r}")
    gamma = _check_nonneg(fn, "gamma", gamma)
    if gamma > 1:
        raise ValueError(f"ewc: gamma must be in [0, 1], got {gamma}")
    if not online and gamma != 1.0:
        raise ValueError("ewc: gamma is the decay of online EWC; pass online=True to use it")
    fisher_examples = _check_posint(fn, "fisher_examples", fisher_examples, optional=True)
    fisher_batch = _check_posint(fn, "fisher_batch", fisher_batch, optional=True)
    chunk_size = _check_posint(fn, "chunk_size", chunk_size)

    def consolidate(state, params, ctx):
        t = ctx.task
        x = ctx.data["x_train"][t][:fisher_examples]
        y = ctx.data["y_train"][t][:fisher_examples]
        mask = ctx.data["masks"][t, t]
        f = fisher_diag(lambda p, xs: masked(ctx.apply(p, xs), mask), params, x, y, method=fisher,
                        key=ctx.key, batch_size=min(fisher_batch or ctx.batch_size, x.shape[0]),
                        chunk_size=chunk_size)
        if online:
            return Quadratic(tmap(lambda a, fi: gamma * a + fi, state.importance, f), tmap(jnp.array, params))
        total = tmap(jnp.add, state.importance, f)
        anchor = tmap(lambda a, m, fi, p, tot: jnp.where(tot > 0, (a * m + fi * p) / jnp.where(tot > 0, tot, 1.0), p),
                      state.importance, state.anchor, f, params, total)
        return Quadratic(total, anchor)

    name = "online_ewc" if online else "ewc"
    return Strategy(name, init=_quadratic_init, loss=_quadratic_loss, consolidate=consolidate, lam=lam,
                    spec=(name, fisher, gamma, fisher_examples, fisher_batch, chunk_size))


class SIState(NamedTuple):
    """Synaptic Intelligence state: importance Omega, anchor, running path integral omega, task start."""
    importance: Any
    anchor: Any
    omega: Any
    start: Any


def si(lam: float = 1.0, *, xi: float = 0.1) -> Strategy:
    """Synaptic Intelligence (Zenke, Poole & Ganguli 2017).

    Each step adds ``-g_k * Delta theta_k`` to the path integral ``omega_k``, with ``g`` the
    gradient of the *task* loss (Zenke et al. use the unregularised gradient; the program
    hands ``observe`` the full gradient and SI subtracts its own penalty's gradient
    ``lam * Omega (theta - theta*)``) and ``Delta theta`` the optimiser's actual step. After
    task ``t``: ``Omega += omega / ((theta_t - theta_{t-1})^2 + xi)``, ``omega = 0``, and the
    anchor moves to ``theta_t``. Penalty ``(lam/2) sum Omega (theta - theta*)^2``, so Zenke's
    ``c = lam / 2``.

    Args:
      lam: default strength.
      xi: damping ``xi > 0`` of the importance (Zenke et al. used 1e-3 on permuted MNIST;
        van de Ven & Tolias 2019 used 0.1).
    """
    lam = _check_nonneg("si", "lam", lam)
    xi = _check_nonneg("si", "xi", xi)
    if xi == 0:
        raise ValueError("si: xi must be > 0 (it keeps Omega finite for parameters that did not move)")

    def init(params, ctx):
        z = tmap(jnp.zeros_like, params)
        return SIState(z, tmap(jnp.array, params), z, tmap(jnp.array, params))

    def loss(state, params, batch, ctx):
        return ctx.loss(params, batch) + ctx.lam * quadratic_penalty(params, state.importance, state.anchor)

    def observe(state, grads, old, new, batch, ctx):
        task_grad = tmap(lambda g, w, p, a: g - ctx.lam * w * (p - a), grads, state.importance, old, state.anchor)
        omega = tmap(lambda o, g, p1, p0: o - g * (p1 - p0), state.omega, task_grad, new, old)
        return state._replace(omega=omega)

    def consolidate(state, params, ctx):
        imp = tmap(lambda w, o, p, s: w + o / (jnp.square(p - s) + xi), state.importance, state.omega, params,
                   state.start)
        return SIState(imp, tmap(jnp.array, params), tmap(jnp.zeros_like, params), tmap(jnp.array, params))

    return Strategy("si", init=init, loss=loss, observe=observe, consolidate=consolidate, lam=lam,
                    spec=("si", xi))


class LwFState(NamedTuple):
    """Learning without Forgetting state: the teacher (previous solution) and whether it exists."""
    teacher: Any
    active: Any


def distillation(student_logits, teacher_logits, head_masks, head_weights, temperature):
    """Mean over heads of ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` per example.

    Args:
      student_logits, teacher_logits: ``[B, K]`` unmasked logits.
      head_masks: ``[H, K]`` bool, the output units of each head.
      head_weights: ``[H]`` non-negative weights (normalised here; all zero gives 0).
      temperature: softmax temperature ``T``.

    Returns:
      ``[B]`` distillation losses.
    """
    t = temperature
    ls = jax.nn.log_softmax(masked(student_logits[:, None, :] / t, head_masks[None]), axis=-1)
    lt = jax.nn.log_softmax(masked(jax.lax.stop_gradient(teacher_logits)[:, None, :] / t, head_masks[None]), axis=-1)
    kl = jnp.sum(jnp.where(head_masks[None], jnp.exp(lt) * (lt - ls), 0.0), axis=-1)  # [B, H]
    w = head_weights / jnp.maximum(jnp.sum(head_weights), 1e-12)
    return (t * t) * jnp.sum(kl * w[None, :], axis=-1)


def lwf(lam: float = 1.0, *, temperature: float = 2.0) -> Strategy:
    """Learning without Forgetting (Li & Hoiem 2016/2018): distil the previous model on new data.

    At task ``t > 0`` the loss adds ``lam * T^2 KL(teacher || student)`` on the current batch,
    at temperature ``T`` (Hinton et al.'s ``T^2`` keeps the gradient scale independent of
    ``T``), computed separately on every earlier task's head ``masks[t-1, s]``, ``s < t``,
    and averaged (van de Ven & Tolias 2019's per-head LwF; in domain- and class-IL all heads
    coincide). The teacher is the model at the end of the previous task.
    """
    lam = _check_nonneg("lwf", "lam", lam)
    temperature = _check_nonneg("lwf", "temperature", temperature)
    if temperature == 0:
        raise ValueError("lwf: temperature must be > 0")

    def init(params, ctx):
        return LwFState(tmap(jnp.array, params), jnp.zeros((), jnp.float32))

    def loss(state, params, batch, ctx):
        prev = jnp.maximum(ctx.task - 1, 0)
        heads = ctx.data["masks"][prev]  # [T, K]
        weights = (jnp.arange(ctx.num_tasks) < ctx.task).astype(jnp.float32)
        kd = distillation(ctx.apply(params, batch["x"]), ctx.apply(state.teacher, batch["x"]), heads, weights,
                          temperature)
        w = batch["weight"]
        kd = jnp.sum(w * kd) / jnp.maximum(jnp.sum(w), 1.0)
        return ctx.loss(params, batch) + ctx.lam * state.active * kd

    def consolidate(state, params, ctx):
        return LwFState(tmap(jnp.array, params), jnp.ones((), jnp.float32))

    return Strategy("lwf", init=init, loss=loss, consolidate=consolidate, lam=lam, spec=("lwf", temperature))

"""Ready-made probes, and the model functions a probe (or any analysis) needs.

:func:`model_fns` gives the pure ``apply``/``loss`` of the model a :class:`TrainConfig`
builds on a dataset, so analysis code never reaches into the engine. The probes here
follow :mod:`lossatlas.train.hooks`: attach them with ``make_train(..., probes=...)``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from lossatlas.train.config import TrainConfig
from lossatlas.train.run import program
from lossatlas.train.hooks import Probe
from lossatlas.treeutil import global_norm

__all__ = ["ModelFns", "grad_norm", "lambda_max", "model_fns"]


class ModelFns(NamedTuple):
    """Pure functions of one config's model on one dataset.

    Attributes:
      apply: ``(params, model_state, x, train=False) -> output``; in training mode batch
        norm uses the batch's statistics (the running statistics are not updated).
      loss: ``(params, model_state, batch) -> scalar``: the mean training objective (the
        config's loss, without label smoothing) of ``batch = (x, y)``, evaluation mode.
      train_loss: the same in training mode (batch statistics), the objective the
        optimizer differentiates.
      per_example: ``(output, y) -> [B]`` losses.
      correct: ``(output, y) -> [B]`` 0/1 hits (classification and language tasks).
      init: ``key -> TrainState``, as :func:`lossatlas.train.init`.
      module: the flax module itself (output width filled in from the dataset), for flax
        features such as ``mutable=["intermediates"]``.
    """

    apply: Callable
    loss: Callable
    train_loss: Callable
    per_example: Callable
    correct: Callable
    init: Callable
    module: Any


def model_fns(config: TrainConfig, dataset) -> ModelFns:
    """The pure model functions of ``config`` on ``dataset`` (see :class:`ModelFns`)."""
    prog = program(config, dataset)

    def apply(params, model_state, x, train=False):
        return prog.apply(params, model_state, x, train=train)[0]

    def loss(params, model_state, batch):
        return prog.loss(params, model_state, batch[0], batch[1], train=False)[0]

    def train_loss(params, model_state, batch):
        return prog.loss(params, model_state, batch[0], batch[1], train=True)[0]

    def init(key):
        return prog.init(key, prog.hparams())

    return ModelFns(apply, loss, train_loss, prog.objective.per_example, prog.objective.correct, init, prog.model)


def grad_norm(loss: Callable) -> Callable:
    """Probe: the global L2 norm of ``grad loss(params, model_state, batch)``.

    Args:
      loss: ``(params, model_state, batch) -> scalar`` (e.g. ``model_fns(...).loss``).
    """
    def probe(params, model_state, batch, key):
        return global_norm(jax.grad(loss)(params, model_state, batch))
    return probe


def lambda_max(loss: Callable, num_iters: int = 20) -> Probe:
    """Probe: the largest-magnitude Hessian eigenvalue of ``loss`` on the probe's batch, by
    power iteration warm-started from the previous call's eigenvector (Cohen et al. 2021,
    "Gradient descent on neural networks typically occurs at the edge of stability", track
    the sharpness this way between steps: the Hessian changes little from one probe to the
    next, so a few iterations per call keep the estimate converged).

    Args:
      loss: ``(params, model_state, batch) -> scalar`` (e.g. ``model_fns(...).loss``).
      num_iters: Hessian-vector products per call (>= 1).

    Returns:
      A :class:`Probe` whose value is the Rayleigh quotient ``v^T H v`` of the final vector
      (the eigenvalue of largest magnitude once converged; the sign is kept).
    """
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(f"lambda_max: num_iters must be an integer >= 1, got {num_iters!r}")

    def normalise(v):
        n = global_norm(v)
        return jax.tree_util.tree_map(lambda x: x / jnp.where(n > 0, n, 1.0), v)

    def init(params, key):
        leaves, treedef = jax.tree_util.tree_flatten(params)
        ks = jax.random.split(key, len(leaves))
        v = [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(ks, leaves)]
        return normalise(jax.tree_util.tree_unflatten(treedef, v))

    def update(v, params, model_state, batch, key):
        f = lambda p: loss(p, model_state, batch)  # noqa: E731

        def hvp(u):
            return jax.jvp(jax.grad(f), (params,), (u,))[1]

        v = jax.lax.fori_loop(0, num_iters - 1, lambda _, u: normalise(hvp(u)), v)
        hv = hvp(v)
        value = sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(v), jax.tree_util.tree_leaves(hv)))
        return value, normalise(hv)

    return Probe(init, update)

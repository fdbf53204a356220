"""Mode connectivity: train a low-loss curve between two solutions (Garipov et al. 2018)."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from lossatlas import validate
from lossatlas.batching import dataset_loss, mean_over_data, num_examples, per_batch

from .slices import map_points

__all__ = ["connect", "curve_point", "ConnectResult", "CURVES"]

CURVES = ("bezier", "polychain")


def curve_point(curve: str, params_a, bend, params_b, t):
    """The point ``phi_bend(t)`` of the curve, ``t`` in [0, 1] (a scalar).

    * ``"bezier"``: ``(1-t)^2 a + 2 t (1-t) bend + t^2 b`` (quadratic Bezier).
    * ``"polychain"``: ``a -> bend -> b``, two segments at constant speed in ``t``
      (``t = 0.5`` is the bend).
    """
    validate.one_of("curve_point", "curve", curve, CURVES)

    def leaf(a, w, b):
        s = jnp.asarray(t).astype(a.dtype)
        if curve == "bezier":
            return (1 - s) ** 2 * a + 2 * s * (1 - s) * w + s ** 2 * b
        first = a + 2 * s * (w - a)
        second = w + (2 * s - 1) * (b - w)
        return jnp.where(s < 0.5, first, second)

    return jax.tree_util.tree_map(leaf, params_a, bend, params_b)


class ConnectResult(NamedTuple):
    """Result of :func:`connect`.

    Attributes:
      bend: the trained bend (a params pytree).
      ts: evaluation grid ``[P]`` on [0, 1].
      curve_losses: ``L(phi(t))`` on ``ts``; line_losses: ``L((1-t) a + t b)``.
      curve_barrier, line_barrier: ``max_t L(path(t)) - max(L(a), L(b))``.
      train_losses: the sampled training objective at every step ``[num_steps]``.
    """
    bend: object
    ts: jax.Array
    curve_losses: jax.Array
    line_losses: jax.Array
    curve_barrier: jax.Array
    line_barrier: jax.Array
    train_losses: jax.Array


def connect(loss_fn: Callable, params_a, params_b, key, curve: str = "bezier", num_steps: int = 500,
            learning_rate: float = 1e-2, num_samples_per_step: int = 1, data=None,
            chunk_size: int | None = None, batch_size: int | None = None, num_points: int = 61,
            point_batch: int | None = None) -> ConnectResult:
    """Find a low-loss curve between two minima (Garipov, Izmailov, Podoprikhin,
    Vetrov & Wilson 2018, "Loss Surfaces, Mode Connectivity, and Fast Ensembling").

    The curve ``phi_bend(t)`` (quadratic Bezier or a one-bend polygonal chain,
    :func:`curve_point`) has fixed endpoints ``a, b``; the bend starts at the
    midpoint ``(a + b) / 2`` (where the curve is the straight line) and is trained
    with Adam to minimise ``E_{t ~ U(0,1)} L(phi_bend(t))`` (the paper's
    objective, eq. 3), estimated each step from ``num_samples_per_step`` uniform
    ``t`` and either the whole dataset (in chunks) or a random minibatch of
    ``batch_size`` examples (the paper's SGD setting). All steps run in one
    ``lax.scan``.

    Barrier convention: ``barrier = max_{t in ts} L(path(t)) - max(L(a), L(b))``,
    the height of the path's highest point above the higher endpoint, on the
    ``num_points`` grid (0 when the loss never rises above both endpoints).
    Garipov et al. show the loss along the curve against the endpoints' losses;
    note that other papers subtract the *mean* of the endpoint losses instead
    (e.g. Frankle et al. 2020); convert with ``curve_losses`` if needed.
    Reported for the trained curve and for the straight line.

    Args:
      loss_fn: ``loss_fn(params)`` or ``loss_fn(params, batch)`` (a batch mean).
      params_a, params_b: the endpoints (same pytree structure).
      key: PRNG key (t samples and minibatches).
      curve: ``"bezier"`` or ``"polychain"``.
      num_steps: Adam steps (static int).
      learning_rate: Adam step size.
      num_samples_per_step: ``t`` samples per step (static int).
      data, chunk_size: dataset and chunking (:mod:`lossatlas.batching`).
      batch_size: if set (with ``data``), each step uses a random minibatch of
        this many examples (without replacement) instead of the whole dataset.
      num_points: size of the evaluation grid ``ts`` (static int >= 2).
      point_batch: evaluation points per vmapped batch (None: all at once).

    Returns:
      :class:`ConnectResult`.
    """
    validate.one_of("connect", "curve", curve, CURVES)
    num_steps = validate.integer("connect", "num_steps", num_steps, 1)
    num_samples_per_step = validate.integer("connect", "num_samples_per_step", num_samples_per_step, 1)
    num_points = validate.integer("connect", "num_points", num_points, 2)
    if batch_size is not None:
        if data is None:
            validate.fail("connect", "batch_size", batch_size, "None when data is None")
        batch_size = validate.integer("connect", "batch_size", batch_size, 1, num_examples(data, "connect"))
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params_a))
    bend0 = jax.tree_util.tree_map(lambda a, b: (a + b) / 2, params_a, params_b)
    tx = optax.adam(learning_rate)

    def sampled_loss(bend, ts, batch):
        at = per_batch(loss_fn, batch)
        return jnp.mean(jax.vmap(lambda t: at(curve_point(curve, params_a, bend, params_b, t)))(ts))

    def step(carry, key_s):
        bend, opt_state = carry
        k_t, k_b = jax.random.split(key_s)
        ts = jax.random.uniform(k_t, (num_samples_per_step,), dtype)
        if batch_size is not None:
            idx = jax.random.choice(k_b, num_examples(data), (batch_size,), replace=False)
            batch = jax.tree_util.tree_map(lambda x: x[idx], data)
            val, grad = jax.value_and_grad(sampled_loss)(bend, ts, batch)
        else:
            val, grad = mean_over_data(lambda b: jax.value_and_grad(sampled_loss)(bend, ts, b), data, chunk_size)
        updates, opt_state = tx.update(grad, opt_state, bend)
        return (optax.apply_updates(bend, updates), opt_state), val

    (bend, _), train_losses = jax.lax.scan(step, (bend0, tx.init(bend0)), jax.random.split(key, num_steps))

    objective = dataset_loss(loss_fn, data, chunk_size)
    ts = jnp.linspace(0.0, 1.0, num_points, dtype=dtype)
    curve_losses = map_points(lambda t: objective(curve_point(curve, params_a, bend, params_b, t)), ts, point_batch)
    straight = lambda t: jax.tree_util.tree_map(  # noqa: E731
        lambda a, b: (1 - t).astype(a.dtype) * a + t.astype(a.dtype) * b, params_a, params_b)
    line_losses = map_points(lambda t: objective(straight(t)), ts, point_batch)
    ends = jnp.maximum(objective(params_a), objective(params_b))
    return ConnectResult(bend, ts, curve_losses, line_losses, jnp.max(curve_losses) - ends,
                         jnp.max(line_losses) - ends, train_losses)

"""Sharpness of a minimum: top Hessian eigenvalue and Keskar et al.'s epsilon-sharpness."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from lossatlas import validate
from lossatlas.batching import mean_over_data, per_batch

from .eigen import top_eigenvalues

__all__ = ["sharpness"]


def sharpness(loss_fn: Callable, params, key, epsilon: float = 1e-3, num_steps: int = 20,
              step_size: float | None = None, num_iters: int = 20, data=None,
              chunk_size: int | None = None) -> dict:
    """``lambda_max`` and epsilon-sharpness (Keskar et al. 2017, "On Large-Batch
    Training for Deep Learning", Metric 2.1, with ``A = I``: the full space).

    epsilon-sharpness ``= 100 * (max_{delta in C} L(theta + delta) - L(theta)) /
    (1 + L(theta))`` over the box ``C = {|delta_i| <= epsilon (|theta_i| + 1)}``.
    Keskar et al. solve the inner maximisation with L-BFGS-B; here it is
    projected sign-gradient ascent (the steepest-ascent direction for a box):
    ``delta <- clip(delta + step_size * b * sign(grad), -b, b)`` with
    ``b = epsilon (|theta| + 1)``, from a uniform random start in the box, for
    ``num_steps`` steps in one ``lax.fori_loop``; the maximum over all iterates is
    kept. It is a lower bound on the true maximum (exact at a corner for a convex
    quadratic).

    Args:
      loss_fn, params, data, chunk_size: see :func:`lossatlas.curvature.hvp`.
      key: PRNG key (the random start and Lanczos).
      epsilon: box size (Keskar et al. use 1e-3 and 5e-4).
      num_steps: ascent steps (static int).
      step_size: step as a fraction of the box half-width; default
        ``2.5 / num_steps`` (Madry et al. 2018's PGD heuristic).
      num_iters: Lanczos steps for ``lambda_max`` (capped at the dimension).

    Returns:
      dict with ``lambda_max`` (top Hessian eigenvalue), ``epsilon_sharpness``,
      ``loss`` (``L(theta)``) and ``max_loss`` (the maximum found in the box).
    """
    num_steps = validate.integer("sharpness", "num_steps", num_steps, 1)
    num_iters = validate.integer("sharpness", "num_iters", num_iters, 1)
    step = 2.5 / num_steps if step_size is None else step_size
    k_eig, k_start = jax.random.split(key)
    lam = top_eigenvalues(loss_fn, params, 1, k_eig, "lanczos", num_iters=num_iters, data=data,
                          chunk_size=chunk_size)[0]

    flat, unravel = ravel_pytree(params)
    bound = epsilon * (jnp.abs(flat) + 1)
    delta = jax.random.uniform(k_start, flat.shape, flat.dtype, -1, 1) * bound

    def value(d, batch):
        return per_batch(loss_fn, batch)(unravel(flat + d))

    loss0 = mean_over_data(lambda b: per_batch(loss_fn, b)(params), data, chunk_size)

    def body(_, carry):
        d, best = carry
        val, g = mean_over_data(lambda b: jax.value_and_grad(value)(d, b), data, chunk_size)
        d = jnp.clip(d + step * bound * jnp.sign(g), -bound, bound)
        return d, jnp.maximum(best, val)

    delta, best = lax.fori_loop(0, num_steps, body, (delta, loss0))
    best = jnp.maximum(best, mean_over_data(lambda b: value(delta, b), data, chunk_size))
    return {"lambda_max": lam, "epsilon_sharpness": 100 * (best - loss0) / (1 + loss0),
            "loss": loss0, "max_loss": best}

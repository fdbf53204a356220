"""Stochastic Hessian trace estimates: Hutchinson and Hutch++."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from lossatlas import linalg, validate

from .hvp import _check_dim, flat_operator

__all__ = ["trace", "TRACE_METHODS"]

TRACE_METHODS = ("hutchinson", "hutch++")
_HI = lax.Precision.HIGHEST


def _map(f, xs, batch):
    return jax.vmap(f)(xs) if batch is None else lax.map(f, xs, batch_size=batch)


def trace(loss_fn: Callable, params, key, num_probes: int = 30, method: str = "hutchinson",
          data=None, chunk_size: int | None = None, probe_batch: int | None = None, *,
          product: Callable | None = None):
    """Estimate ``tr(H)`` with Rademacher probes.

    * ``"hutchinson"`` (Hutchinson 1989): ``mean_i z_i^T H z_i`` over
      ``num_probes`` Rademacher vectors; standard error ``std(ddof=1)/sqrt(m)``.
    * ``"hutch++"`` (Meyer, Musco, Musco & Woodruff 2021, Algorithm 1): of the
      ``m = num_probes`` matrix-vector products, ``s = m // 3`` sketch ``H S``
      whose orthonormal basis ``Q`` captures the top of the spectrum exactly
      (``tr(Q^T H Q)``, ``s`` products), and the remaining ``m - 2s`` Rademacher
      probes estimate the trace of the deflated ``(I - QQ^T) H (I - QQ^T)``. The
      standard error is that of the second (only random-given-Q) term. Far
      lower variance when the spectrum is dominated by a few large eigenvalues,
      as neural-net Hessians are.

    Args:
      loss_fn, params, data, chunk_size: see :func:`lossatlas.curvature.hvp`.
      key: PRNG key.
      num_probes: Hutchinson probes (``>= 2``) or the Hutch++ matvec budget (``>= 4``).
      method: ``"hutchinson"`` or ``"hutch++"``.
      probe_batch: None evaluates all probes at once (vmap); an int evaluates
        them in batches of that size (``lax.map``) to bound memory.
      product: optional curvature product replacing the Hessian (e.g. GGN).

    Returns:
      ``(estimate, standard_error)``, two scalars.
    """
    validate.one_of("trace", "method", method, TRACE_METHODS)
    num_probes = validate.integer("trace", "num_probes", num_probes, 1)
    probe_batch = validate.integer("trace", "probe_batch", probe_batch, 1, optional=True)
    matvec, flat, _ = flat_operator(loss_fn, params, data, chunk_size, product=product)
    n = _check_dim(flat)
    dtype = flat.dtype

    def quad(z):
        return jnp.dot(z, matvec(z), precision=_HI)

    if method == "hutchinson":
        if num_probes < 2:
            validate.fail("trace", "num_probes", num_probes, "an integer >= 2 for hutchinson (for a standard error)")
        z = jax.random.rademacher(key, (num_probes, n), dtype)
        vals = _map(quad, z, probe_batch)
        return jnp.mean(vals), jnp.std(vals, ddof=1) / jnp.sqrt(num_probes)

    if num_probes < 4:
        validate.fail("trace", "num_probes", num_probes,
                      "an integer >= 4 for hutch++ (s = m//3 sketch vectors, >= 2 residual probes)")
    s = num_probes // 3
    g = num_probes - 2 * s
    s = min(s, n)
    k_s, k_g = jax.random.split(key)
    sketch = _map(matvec, jax.random.rademacher(k_s, (s, n), dtype), probe_batch)   # [s, n]
    q, _ = linalg.qr(sketch.T)                                                  # [n, s]
    hq = _map(matvec, q.T, probe_batch)                                             # [s, n]
    top = jnp.sum(q.T * hq)

    def residual(z):
        z = z - jnp.matmul(q, jnp.matmul(q.T, z, precision=_HI), precision=_HI)
        return quad(z)

    vals = _map(residual, jax.random.rademacher(k_g, (g, n), dtype), probe_batch)
    return top + jnp.mean(vals), jnp.std(vals, ddof=1) / jnp.sqrt(g)

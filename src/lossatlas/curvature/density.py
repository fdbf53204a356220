"""Hessian eigenvalue density by stochastic Lanczos quadrature (SLQ).

For a unit probe ``v``, ``m`` Lanczos steps give ``T = S diag(theta) S^T``; the
Gauss quadrature nodes ``theta_j`` with weights ``tau_j = S[0, j]^2`` (summing to
1) satisfy ``v^T f(H) v ~ sum_j tau_j f(theta_j)``. Averaging over random probes
estimates ``(1/n) tr f(H)``, i.e. integrals against the spectral density
``phi(t) = (1/n) sum_i delta(t - lambda_i)`` (Golub & Meurant 1994; Ubaru, Chen &
Saad 2017; applied to neural networks by Ghorbani, Krishnan & Xiao 2019).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import linalg, validate

from .hvp import _check_dim, flat_operator
from .trace import _map

__all__ = ["broadened_density", "lanczos_quadrature", "spectral_density"]


def lanczos_quadrature(loss_fn: Callable, params, key, num_steps: int = 90, num_probes: int = 10,
                       data=None, chunk_size: int | None = None, probe_batch: int | None = None, *,
                       product: Callable | None = None):
    """Gauss quadrature nodes and weights of the Hessian's spectral measure.

    Args:
      loss_fn, params, data, chunk_size: see :func:`lossatlas.curvature.hvp`.
      key: PRNG key (probes and Lanczos restarts).
      num_steps: Lanczos steps per probe (static; capped at the dimension ``n``).
      num_probes: number of Rademacher probes (static).
      probe_batch: None runs all probes' Lanczos together (vmap); an int runs
        them in batches of that size.
      product: optional curvature product replacing the Hessian (e.g. GGN).

    Returns:
      ``(nodes [num_probes, m], weights [num_probes, m])``; each row of
      ``weights`` sums to 1, so ``mean_p sum_j weights f(nodes)`` estimates
      ``(1/n) tr f(H)``.
    """
    where = "lanczos_quadrature"
    num_steps = validate.integer(where, "num_steps", num_steps, 1)
    num_probes = validate.integer(where, "num_probes", num_probes, 1)
    probe_batch = validate.integer(where, "probe_batch", probe_batch, 1, optional=True)
    matvec, flat, _ = flat_operator(loss_fn, params, data, chunk_size, product=product)
    n = _check_dim(flat)
    m = min(num_steps, n)

    def one(key_p):
        z = jax.random.normal(key_p, (2, n), flat.dtype)
        v = jnp.where(z[0] < 0, -1, 1).astype(flat.dtype)          # Rademacher probe
        alphas, betas, _ = linalg.lanczos(matvec, v, m, z[1])
        theta, s = linalg.tridiagonal_eigh(alphas, betas)
        return theta, jnp.square(s[0])

    return _map(one, jax.random.split(key, num_probes), probe_batch)


def broadened_density(nodes, weights, grid, sigma):
    """Gaussian-broadened density of SLQ nodes and weights (Ghorbani et al. 2019, eq. 7).

    ``density(t) = (1/P) sum_p sum_j w_pj N(t; theta_pj, sigma^2)``: each quadrature
    node is replaced by a Gaussian of standard deviation ``sigma``. When each row of
    ``weights`` sums to 1 (as :func:`lanczos_quadrature` returns them), the density
    integrates to 1 over the real line. With Lanczos run to the dimension (``m = n``)
    each probe's term is exactly ``v^T N(t; H, sigma^2) v``, so the density is an unbiased
    probe (Hutchinson) estimate of the dense spectrum broadened the same way,
    ``(1/n) sum_i N(t; lambda_i, sigma^2)``; with fewer steps the m-node Gauss quadrature
    approximates each probe's term. Unlike :func:`spectral_density` it
    is not renormalised on ``grid``, so mass outside the grid is not redistributed.
    A sensible width is a small fraction of the spectral range (1% is the default of
    :func:`spectral_density`): wide enough to merge the Ritz values of one probe
    within the bulk, narrow enough to keep isolated outliers apart.

    Args:
      nodes: ``[P, m]`` (or ``[m]``, one probe) quadrature nodes.
      weights: quadrature weights, the same shape as ``nodes``.
      grid: ``[G]`` evaluation points.
      sigma: Gaussian width (> 0, in eigenvalue units).

    Returns:
      ``[G]`` density on ``grid``.
    """
    nodes, weights, grid = jnp.asarray(nodes), jnp.asarray(weights), jnp.asarray(grid)
    if nodes.ndim == 1:
        nodes, weights = nodes[None], weights[None]
    if nodes.ndim != 2 or weights.shape != nodes.shape:
        raise ValueError(f"broadened_density: nodes and weights must be [P, m] arrays of one shape, got "
                         f"{nodes.shape} and {weights.shape}")
    if grid.ndim != 1:
        raise ValueError(f"broadened_density: grid must be a 1-D array, got shape {grid.shape}")
    if not isinstance(sigma, jax.core.Tracer):
        validate.number("broadened_density", "sigma", np.asarray(sigma).item() if np.ndim(sigma) == 0 else sigma, 0,
                        lo_open=True)
    return _broaden(nodes, weights, grid, jnp.asarray(sigma, nodes.dtype))


def _broaden(nodes, weights, grid, sigma):
    """:func:`broadened_density` on checked ``[P, m]`` nodes/weights, a ``[G]`` grid and sigma > 0."""
    z = (grid[:, None, None] - nodes[None]) / sigma                                 # [G, P, m]
    gauss = jnp.exp(-0.5 * jnp.square(z)) / (sigma * jnp.sqrt(2 * jnp.pi))
    return jnp.sum(gauss * weights[None], axis=(1, 2)) / nodes.shape[0]


def spectral_density(loss_fn: Callable, params, key, num_steps: int = 90, num_probes: int = 10,
                     grid=None, sigma=None, num_points: int = 1000, data=None,
                     chunk_size: int | None = None, probe_batch: int | None = None, *,
                     product: Callable | None = None):
    """Smoothed Hessian eigenvalue density by stochastic Lanczos quadrature.

    ``density(t) = (1/P) sum_p sum_j tau_pj N(t; theta_pj, sigma^2)``: every
    quadrature node is broadened by a Gaussian of standard deviation ``sigma``
    (Ghorbani et al. 2019, eq. 7). Normalisation: the weights of each probe sum
    to 1, so this density integrates to 1 over the real line; the returned
    ``density`` is additionally divided by its trapezoidal integral over the
    returned ``grid``, so ``jnp.trapezoid(density, grid) == 1`` numerically (on a
    grid narrower than the spectrum it is the density conditional on the grid's
    range). ``jnp.trapezoid(grid * density, grid)`` estimates ``tr(H) / n``.

    Args:
      loss_fn, params, data, chunk_size: see :func:`lossatlas.curvature.hvp`.
      key: PRNG key.
      num_steps: Lanczos steps per probe (default 90, capped at the dimension).
      num_probes: number of probes (default 10).
      grid: optional 1-D array of evaluation points; default ``num_points``
        evenly spaced points from ``min(theta) - 5 sigma - 1% range`` to
        ``max(theta) + 5 sigma + 1% range``.
      sigma: Gaussian width (absolute, in eigenvalue units); default 1% of the
        range of the Ritz values (``max - min``).
      num_points: grid size when ``grid`` is None (static int).
      probe_batch: probes per vmapped batch (None: all at once).
      product: optional curvature product replacing the Hessian (e.g. GGN).

    Returns:
      ``(grid [G], density [G])``.
    """
    num_points = validate.integer("spectral_density", "num_points", num_points, 1 if grid is not None else 2)
    nodes, weights = lanczos_quadrature(loss_fn, params, key, num_steps, num_probes, data, chunk_size,
                                        probe_batch, product=product)
    lo, hi = jnp.min(nodes), jnp.max(nodes)
    span = hi - lo
    if sigma is None:
        floor = 1e-6 * jnp.maximum(1.0, jnp.maximum(jnp.abs(lo), jnp.abs(hi)))
        sigma = jnp.maximum(0.01 * span, floor)
    sigma = jnp.asarray(sigma, nodes.dtype)
    if grid is None:
        margin = 5 * sigma + 0.01 * span
        grid = jnp.linspace(lo - margin, hi + margin, num_points, dtype=nodes.dtype)
    grid = jnp.asarray(grid, nodes.dtype)
    if grid.ndim != 1 or grid.shape[0] < 2:
        raise ValueError(f"spectral_density: grid must be a 1-D array of at least 2 points, got shape {grid.shape}")
    density = _broaden(nodes, weights, grid, sigma)  # sigma built above, > 0: no host-side re-check
    density = density / jnp.trapezoid(density, grid)
    return grid, density

"""Hessian eigenpairs at both ends of the spectrum (Lanczos or power iteration), and the
share of a vector (the gradient) in the top and bottom eigenspaces."""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lossatlas import linalg, validate
from lossatlas.batching import mean_over_data, per_batch

from .hvp import _check_dim, flat_operator

__all__ = ["EigenspaceOverlap", "METHODS", "bottom_eigenvalues", "eigenspace_overlap", "top_eigenvalues"]

METHODS = ("lanczos", "power")


def top_eigenvalues(loss_fn: Callable, params, k: int, key, method: str = "lanczos",
                    num_iters: int | None = None, return_vectors: bool = False, data=None,
                    chunk_size: int | None = None, *, product: Callable | None = None):
    """The ``k`` largest (algebraic) eigenvalues of the loss Hessian at ``params``.

    * ``"lanczos"`` (Lanczos 1950; used for neural-net Hessians by Ghorbani et al.
      2019): ``num_iters`` steps with full reorthogonalisation; the Ritz values are
      the eigenvalues of the tridiagonal ``T`` (``jnp.linalg.eigh``) and the Ritz
      vectors ``Q^T s``. With ``num_iters`` equal to the dimension the result is
      exact up to rounding. Default ``num_iters = min(n, max(2k, k + 30))``; values
      above the dimension ``n`` are capped at ``n``.
    * ``"power"``: power iteration with deflation (see
      :func:`lossatlas.linalg.power_top_k`), ``num_iters`` iterations per
      eigenvalue (default 100) plus two runs that locate the spectrum's ends.
      Slower to converge than Lanczos; kept as the simple, widely used baseline
      (e.g. Yao et al. 2020).

    Jittable and vmappable (``k``, ``num_iters``, ``method`` are static)::

        jax.vmap(lambda p, key: top_eigenvalues(loss, p, 3, key))(params_S, keys_S)

    ``params_S`` may be a sweep's output as it is, sharded over CPU devices (no host copy
    needed; the tridiagonal ``eigh`` is :func:`lossatlas.linalg.eigh`, safe there).

    Args:
      loss_fn: ``loss_fn(params)`` or ``loss_fn(params, batch)`` (a batch mean);
        may be None when ``product`` is given.
      params: parameter pytree (floating point).
      k: number of eigenvalues (``1 <= k <= n``).
      key: PRNG key (start vectors).
      method: ``"lanczos"`` or ``"power"``.
      num_iters: Lanczos steps (``>= k``) or power iterations per eigenvalue.
      return_vectors: also return unit-norm eigenvectors.
      data, chunk_size: dataset and chunking, see :mod:`lossatlas.batching`.
      product: optional ``(params, v) -> pytree`` curvature product replacing the
        Hessian (e.g. a :func:`ggn_vp` closure).

    Returns:
      ``eigenvalues [k]`` in descending order; with ``return_vectors`` also
      ``vectors``: a params pytree whose leaves have a leading axis ``k``
      (``vectors[i]`` pairs with ``eigenvalues[i]``, unit norm over all leaves).

    Raises:
      ValueError: unknown method, ``k`` outside ``[1, n]``, ``num_iters < k`` for
        Lanczos, non-positive ints.
    """
    where = "top_eigenvalues"
    validate.one_of(where, "method", method, METHODS)
    matvec, flat, unravel = flat_operator(loss_fn, params, data, chunk_size, product=product)
    n = _check_dim(flat)
    k = validate.integer(where, "k", k, 1, n)
    num_iters = validate.integer(where, "num_iters", num_iters, k if method == "lanczos" else 1, optional=True)
    if method == "lanczos":
        m = min(n, num_iters if num_iters is not None else max(2 * k, k + 30))
        alphas, betas, basis = linalg.lanczos_from_key(matvec, key, n, m, flat.dtype)
        theta, s = linalg.tridiagonal_eigh(alphas, betas)
        vals = theta[::-1][:k]
        vecs = jnp.matmul(s[:, ::-1][:, :k].T, basis, precision=jax.lax.Precision.HIGHEST)
    else:
        vals, vecs = linalg.power_top_k(matvec, n, k, key, num_iters or 100, flat.dtype)
    if not return_vectors:
        return vals
    return vals, jax.vmap(unravel)(vecs)


def _ritz(matvec, flat, key, m):
    """Ritz values (ascending) and unit Ritz vectors ``[m, n]`` of an ``m``-step Lanczos run
    from a random start (full reorthogonalisation)."""
    alphas, betas, basis = linalg.lanczos_from_key(matvec, key, flat.shape[0], m, flat.dtype)
    theta, s = linalg.tridiagonal_eigh(alphas, betas)
    return theta, jnp.matmul(s.T, basis, precision=jax.lax.Precision.HIGHEST)


def bottom_eigenvalues(loss_fn: Callable, params, k: int, key, num_iters: int | None = None,
                       return_vectors: bool = False, data=None, chunk_size: int | None = None, *,
                       product: Callable | None = None):
    """The ``k`` smallest (algebraic, i.e. most negative) eigenvalues of the loss Hessian.

    The mirror image of :func:`top_eigenvalues` (``"lanczos"`` only): the ``k`` smallest
    Ritz values of ``num_iters`` Lanczos steps with full reorthogonalisation, and their
    Ritz vectors. By Cauchy interlacing the ``i``-th smallest Ritz value is ``>=`` the
    ``i``-th smallest eigenvalue; it converges fast when the bottom of the spectrum is
    well separated relative to the spectrum's width. Near-zero negative eigenvalues inside
    a dense bulk (trained networks: Sagun et al. 2017, Ghorbani et al. 2019) converge
    slowly: check ``||H v - lambda v||`` (:func:`eigenspace_overlap` reports it) or use
    ``num_iters`` close to the dimension. Default ``num_iters = min(n, max(2k, k + 30))``.

    Jittable and vmappable (``k``, ``num_iters`` static)::

        jax.vmap(lambda p, key: bottom_eigenvalues(loss, p, 3, key))(params_S, keys_S)

    Args:
      loss_fn, params, key, data, chunk_size, product: as in :func:`top_eigenvalues`.
      k: number of eigenvalues (``1 <= k <= n``).
      num_iters: Lanczos steps (``>= k``, capped at ``n``).
      return_vectors: also return unit-norm eigenvectors.

    Returns:
      ``eigenvalues [k]`` in ascending order (most negative first); with
      ``return_vectors`` also ``vectors``, a params pytree whose leaves have a leading
      axis ``k`` (``vectors[i]`` pairs with ``eigenvalues[i]``).

    Raises:
      ValueError: ``k`` outside ``[1, n]``, ``num_iters < k``.
    """
    where = "bottom_eigenvalues"
    matvec, flat, unravel = flat_operator(loss_fn, params, data, chunk_size, product=product)
    n = _check_dim(flat)
    k = validate.integer(where, "k", k, 1, n)
    num_iters = validate.integer(where, "num_iters", num_iters, k, optional=True)
    m = min(n, num_iters if num_iters is not None else max(2 * k, k + 30))
    theta, vecs = _ritz(matvec, flat, key, m)
    if not return_vectors:
        return theta[:k]
    return theta[:k], jax.vmap(unravel)(vecs[:k])


class EigenspaceOverlap(NamedTuple):
    """Result of :func:`eigenspace_overlap` (add leading axes by vmapping).

    Attributes:
      top_values: the ``k`` largest Ritz values, descending.
      bottom_values: the ``k`` smallest Ritz values, ascending (most negative first).
      top_overlap: ``||P_top g||^2 / ||g||^2``, the fraction of ``|g|^2`` in the span of
        the ``k`` top Ritz vectors (in ``[0, 1]``).
      bottom_overlap: the same for the ``k`` bottom Ritz vectors.
      top_residuals, bottom_residuals: ``||H v_i - theta_i v_i||`` of each Ritz pair (0 for
        an exact eigenpair), in the order of the values.
      chance: ``k / n``, the expected overlap of a uniformly random direction with any
        fixed ``k``-dimensional subspace.
    """

    top_values: jax.Array
    bottom_values: jax.Array
    top_overlap: jax.Array
    bottom_overlap: jax.Array
    top_residuals: jax.Array
    bottom_residuals: jax.Array
    chance: jax.Array


def eigenspace_overlap(loss_fn: Callable, params, k: int, key, vector=None, num_iters: int | None = None,
                       data=None, chunk_size: int | None = None, *,
                       product: Callable | None = None) -> EigenspaceOverlap:
    """How much of a vector (by default the gradient) lies in the top-``k`` and in the
    bottom-``k`` Hessian eigenspaces.

    Gur-Ari, Roberts & Dyer 2018 ("Gradient descent happens in a tiny subspace") measure
    ``||P_k g||^2 / ||g||^2`` with ``P_k`` the projector on the top-``k`` Hessian
    eigenvectors (``k`` = number of classes) and find it close to 1 after a short initial
    phase; a random direction has expected overlap ``k / n``. Here one Lanczos run of
    ``num_iters`` steps (random start, *not* the gradient, so the Krylov space is not
    built around ``g``) gives both ends of the spectrum: the ``k`` largest Ritz pairs and
    the ``k`` smallest (the most negative curvature directions, see
    :func:`bottom_eigenvalues`). The Ritz vectors are orthonormal, so each overlap is the
    sum of squared projections. ``2k`` extra Hessian-vector products give each pair's
    residual ``||H v - theta v||`` (how converged it is).

    Jittable and vmappable (``k``, ``num_iters`` static).

    Args:
      loss_fn, params, key, data, chunk_size, product: as in :func:`top_eigenvalues`.
      k: subspace dimension (``1 <= k``, ``2k <= num_iters``).
      vector: a pytree like ``params``; None means the gradient of the (dataset-mean) loss
        at ``params`` (requires ``loss_fn``).
      num_iters: Lanczos steps (``>= 2k``, capped at ``n``); default
        ``min(n, max(4k, 2k + 30))``.

    Returns:
      :class:`EigenspaceOverlap`.

    Raises:
      ValueError: ``k < 1``, ``2k > n``, ``num_iters < 2k``, no ``loss_fn`` and no ``vector``.
    """
    where = "eigenspace_overlap"
    matvec, flat, _ = flat_operator(loss_fn, params, data, chunk_size, product=product)
    n = _check_dim(flat)
    k = validate.integer(where, "k", k, 1, n // 2)
    num_iters = validate.integer(where, "num_iters", num_iters, 2 * k, optional=True)
    m = min(n, num_iters if num_iters is not None else max(4 * k, 2 * k + 30))
    if vector is None:
        if loss_fn is None:
            raise ValueError(f"{where}: vector=None means the gradient of loss_fn, but loss_fn is None")
        vector = mean_over_data(lambda b: jax.grad(per_batch(loss_fn, b))(params), data, chunk_size)
    g = ravel_pytree(vector)[0].astype(flat.dtype)
    if g.shape != flat.shape:
        validate.fail(where, "vector", f"{g.size} values", f"a pytree like params ({n} values)")
    theta, vecs = _ritz(matvec, flat, key, m)
    top_v, bot_v = vecs[::-1][:k], vecs[:k]
    top_t, bot_t = theta[::-1][:k], theta[:k]
    gg = jnp.maximum(jnp.dot(g, g, precision=jax.lax.Precision.HIGHEST), jnp.finfo(flat.dtype).tiny)

    def frac(v):
        return jnp.sum(jnp.square(jnp.matmul(v, g, precision=jax.lax.Precision.HIGHEST))) / gg

    def residuals(v, t):
        return jnp.linalg.norm(jax.vmap(matvec)(v) - t[:, None] * v, axis=1)

    return EigenspaceOverlap(top_t, bot_t, frac(top_v), frac(bot_v), residuals(top_v, top_t),
                             residuals(bot_v, bot_t), jnp.asarray(k / n, flat.dtype))

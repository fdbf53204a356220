"""Krylov eigensolvers on a symmetric operator given as ``matvec`` of flat vectors.

* :func:`lanczos`: the Lanczos process (Lanczos 1950) with full
  reorthogonalisation (classical Gram-Schmidt applied twice, "twice is enough",
  Parlett 1998 sec. 6.9) and restart on breakdown.
* :func:`power_top_k`: power iteration (von Mises 1929) with deflation by
  projection, on a shifted operator so that it finds the largest *algebraic*
  eigenvalues.

Both run every iteration inside ``lax.fori_loop`` / ``lax.scan`` with static
iteration counts, so they jit and vmap (over start vectors or parameters).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["lanczos", "tridiagonal", "power_top_k"]

_HI = lax.Precision.HIGHEST


def _mv(a, b):
    return jnp.matmul(a, b, precision=_HI)


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x), jnp.finfo(x.dtype).tiny)


def lanczos(matvec: Callable, v0, num_iters: int, restart):
    """``num_iters`` steps of Lanczos with full reorthogonalisation.

    Builds an orthonormal basis ``Q`` of the Krylov space of ``v0`` and the
    tridiagonal ``T = Q^T A Q`` with diagonal ``alphas`` and off-diagonal
    ``betas``. If the Krylov space becomes invariant (``beta_j`` below
    ``100 * eps * ||T||``), the next basis vector is ``roll(restart, j)``
    orthogonalised against ``Q`` and ``beta_j`` is set to 0, so ``T`` stays
    ``Q^T A Q`` (block-diagonal) and repeated eigenvalues are found too.
    Memory: the basis holds ``(m + 1) * n`` numbers; each step costs one
    ``matvec`` plus ``O(m n)`` for the reorthogonalisation.

    Args:
      matvec: symmetric linear map on vectors of shape ``[n]``.
      v0: start vector ``[n]`` (need not be normalised, must be non-zero).
      num_iters: number of steps ``m <= n`` (static int).
      restart: a random vector ``[n]`` (e.g. Gaussian) that seeds restarts; a
        vector rather than a key keeps random-number generation out of the loop.

    Returns:
      ``(alphas [m], betas [m-1], Q [m, n])`` with orthonormal rows ``Q``.
    """
    n = v0.shape[0]
    m = int(num_iters)
    if not 1 <= m <= n:
        raise ValueError(f"lanczos: num_iters must be in [1, {n}] (the dimension), got {m}")
    dtype = v0.dtype
    tol = 100 * jnp.finfo(dtype).eps
    restart = jnp.asarray(restart, dtype)
    basis = jnp.zeros((m + 1, n), dtype).at[0].set(_normalize(v0))

    def orth(w, basis):  # rows of basis not yet filled are zero
        w = w - _mv(basis.T, _mv(basis, w))
        return w - _mv(basis.T, _mv(basis, w))

    def body(j, state):
        basis, alphas, betas, scale = state
        q = basis[j]
        w = matvec(q)
        alpha = jnp.dot(q, w, precision=_HI)
        w = orth(w, basis)
        beta = jnp.linalg.norm(w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + beta)
        ok = beta > tol * scale
        q_next = lax.cond(ok, lambda: w / beta, lambda: _normalize(orth(jnp.roll(restart, j), basis)))
        basis = basis.at[j + 1].set(q_next)
        return basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(ok, beta, 0)), scale

    init = (basis, jnp.zeros(m, dtype), jnp.zeros(m, dtype), jnp.zeros((), dtype))
    basis, alphas, betas, _ = lax.fori_loop(0, m, body, init)
    return alphas, betas[: m - 1], basis[:m]


def tridiagonal(alphas, betas):
    """Dense symmetric tridiagonal matrix from its diagonal and off-diagonal."""
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


def power_top_k(matvec: Callable, n: int, k: int, key, num_iters: int, dtype):
    """Top-``k`` (largest algebraic) eigenpairs by power iteration with deflation.

    Power iteration converges to the eigenvalue of largest *magnitude*. Two
    preliminary runs find both ends of the spectrum (``mu`` = dominant, then the
    dominant of ``A - mu I`` is the other end), giving ``lambda_min``; the
    operator ``B = A + s I`` with ``s = max(0, -lambda_min) + 0.01 |mu|`` is then
    positive definite, its dominant eigenvector is ``A``'s top one, and deflation
    by projecting out the found vectors (``P B P``, ``P = I - V^T V``) yields the
    next. Eigenvalues are Rayleigh quotients ``v^T A v``. Convergence of the
    ``i``-th pair goes like ``((lambda_{i+1} + s) / (lambda_i + s))^num_iters``.
    All ``k + 2`` runs share one ``lax.fori_loop`` (one copy of ``matvec`` in the
    compiled program).

    Args:
      matvec: symmetric linear map on ``[n]`` vectors.
      n, k: dimension and number of eigenpairs (static ints, ``k <= n``).
      key: PRNG key for start vectors.
      num_iters: iterations per run (static int); ``k + 2`` runs in total.
      dtype: floating dtype of the vectors.

    Returns:
      ``(eigenvalues [k] descending, vectors [k, n])``.
    """
    starts = jax.random.normal(key, (k + 2, n), dtype)

    def body(t, state):
        v, found, ends, lams = state          # ends = (mu, other end of the spectrum)
        phase, it = t // num_iters, t % num_iters
        shift = jnp.maximum(0, -jnp.minimum(ends[0], ends[1])) + 0.01 * jnp.abs(ends[0])
        c = jnp.where(phase == 0, 0, jnp.where(phase == 1, -ends[0], shift))

        def proj(x):
            return x - _mv(found.T, _mv(found, x))

        v = jnp.where(it == 0, _normalize(proj(starts[phase])), v)
        w = proj(matvec(v) + c * v)
        rq = jnp.dot(v, w, precision=_HI) - c  # = v^T A v, since P v = v
        last = it == num_iters - 1
        ends = jnp.where(last & (jnp.arange(2) == phase), rq, ends)
        store = last & (phase >= 2)
        i = jnp.clip(phase - 2, 0, k - 1)
        found = jnp.where(store, found.at[i].set(v), found)
        lams = jnp.where(store, lams.at[i].set(rq), lams)
        return _normalize(w), found, ends, lams

    init = (jnp.zeros(n, dtype), jnp.zeros((k, n), dtype), jnp.zeros(2, dtype), jnp.zeros(k, dtype))
    _, vecs, _, lams = lax.fori_loop(0, (k + 2) * num_iters, body, init)
    order = jnp.argsort(-lams)
    return lams[order], vecs[order]

"""Top Hessian eigenvalues and eigenvectors (Lanczos or power iteration)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from lossatlas import linalg, validate

from .hvp import _check_dim, flat_operator

__all__ = ["top_eigenvalues", "METHODS"]

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
        z = jax.random.normal(key, (2, n), flat.dtype)
        alphas, betas, basis = linalg.lanczos(matvec, z[0], m, z[1])
        theta, s = linalg.tridiagonal_eigh(alphas, betas)
        vals = theta[::-1][:k]
        vecs = jnp.matmul(s[:, ::-1][:, :k].T, basis, precision=jax.lax.Precision.HIGHEST)
    else:
        vals, vecs = linalg.power_top_k(matvec, n, k, key, num_iters or 100, flat.dtype)
    if not return_vectors:
        return vals
    return vals, jax.vmap(unravel)(vecs)

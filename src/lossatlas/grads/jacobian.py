"""Singular values of the input-output Jacobian (dynamical isometry).

Pennington, Schoenholz & Ganguli 2017 ("Resurrecting the sigmoid in deep
learning through dynamical isometry"): a deep network trains fast when all
singular values of its input-output Jacobian stay near 1 at initialisation;
their spread grows with depth unless the init is critical (and orthogonal).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lossatlas import keys, linalg, validate

METHODS = ("dense", "lanczos")


def jacobian_spectrum(apply_fn, params, x, *, method: str = "dense", k: int = 10, num_iters: int | None = None,
                      key=None):
    """Singular values of d apply_fn(params, x_i) / d x_i for every example ``x_i``.

    Args:
      apply_fn: ``apply_fn(params, x_batch) -> outputs [B, ...]``, applied here to
        one example at a time (a batch of one), e.g.
        ``lambda p, x: model.apply({"params": p}, x)``.
      params: parameters (held fixed).
      x: [B, ...] input examples.
      method: "dense" (full Jacobian by ``jacfwd`` and ``jnp.linalg.svd``; all
        singular values, for small inputs) or "lanczos" (the top ``k`` singular
        values from Lanczos on J^T J with full reorthogonalisation, using only
        Jacobian-vector and vector-Jacobian products).
      k: number of singular values for "lanczos".
      num_iters: Lanczos steps (default ``min(dim, 2k + 10)``).
      key: PRNG key for the Lanczos start vectors; required for "lanczos" (no
        default key: a forgotten key must not give the same "random" run every
        time), unused by "dense".

    Returns:
      [B, r] singular values in descending order per example (r = min(out, in)
      for "dense", k for "lanczos").

    Raises:
      ValueError: unknown method, ``k`` outside ``[1, dim]``, ``num_iters < k``, or
        no ``key`` for "lanczos".
    """
    where = "jacobian_spectrum"
    validate.one_of(where, "method", method, METHODS)
    x = jnp.asarray(x)

    def f(xi_flat, unravel):
        out = apply_fn(params, unravel(xi_flat)[None])
        return out.reshape(-1)

    x0_flat, unravel = ravel_pytree(x[0])
    dim = x0_flat.shape[0]
    if method == "dense":
        def one(xi):
            flat, _ = ravel_pytree(xi)
            jac = jax.jacfwd(lambda v: f(v, unravel))(flat)
            return linalg.svdvals(jac)
        return jax.vmap(one)(x)

    k = validate.integer(where, "k", k, 1, dim)
    num_iters = validate.integer(where, "num_iters", num_iters, k, optional=True)
    steps = min(dim, num_iters or 2 * k + 10)
    key = keys.require_key(where, key)

    def one(xi, ki):
        flat, _ = ravel_pytree(xi)
        g = lambda v: f(v, unravel)  # noqa: E731
        _, vjp = jax.vjp(g, flat)

        def jtj(v):
            return vjp(jax.jvp(g, (flat,), (v,))[1])[0]

        v0 = jax.random.normal(ki, (dim,), flat.dtype)
        restart = jax.random.normal(jax.random.fold_in(ki, 1), (dim,), flat.dtype)
        alphas, betas, _ = linalg.lanczos(jtj, v0, steps, restart)
        ritz = linalg.eigvalsh(linalg.tridiagonal(alphas, betas))[::-1][:k]
        return jnp.sqrt(jnp.maximum(ritz, 0.0))

    return jax.vmap(one)(x, jax.random.split(key, x.shape[0]))

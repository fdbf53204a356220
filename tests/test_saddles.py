"""lossatlas.saddles: surfaces against autodiff, critical-point search, Hessian index, escape optimizers.

Problems are tiny (2-D surfaces, <= 200-D quadratics); each compiled search is module-level and
shared between tests. float64 where a test compares against exact values (x64 fixture), float32
where it checks the default precision.
"""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas import saddles as S

KEY = jax.random.PRNGKey(0)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def _rotated_quadratic(eigenvalues, seed):
    """``x -> x^T A x / 2`` with ``A = Q diag(eigenvalues) Q^T``, Q a random rotation (numpy)."""
    lam = np.asarray(eigenvalues, np.float64)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(lam.size, lam.size)))
    a = q @ np.diag(lam) @ q.T
    return (lambda x: 0.5 * x @ (jnp.asarray(a, x.dtype) @ x)), a


# ------------------------------------------------------------------------------------ surfaces

VARIANTS = [(name, {}) for name in S.SURFACES] + [
    ("scaled_saddle", {"a": 3.0}), ("rosenbrock", {"a": -0.5, "b": 10.0}),
    ("strict_saddle", {"n": 5, "lambda_min": 0.3, "kappa": 4.0}),
    ("ill_conditioned_quadratic", {"eigenvalues": (2.0, -1.0, 0.5)}),
]


@pytest.mark.parametrize("name,kw", VARIANTS, ids=[f"{n}{kw or ''}" for n, kw in VARIANTS])
def test_analytic_derivatives_equal_autodiff_and_critical_points_are_critical(x64, name, kw):
    """At random points (as a batch [5, dim]) the hand-written grad and Hessian equal jax.grad and
    jax.hessian; at every listed critical point the gradient is 0 and the number of negative
    eigenvalues of jax.hessian is the listed index."""
    s = S.get_surface(name, **kw)
    x = 1.5 * jax.random.normal(jax.random.PRNGKey(1), (5, s.dim), jnp.float64)
    cp = jnp.asarray(s.critical_points)

    @jax.jit
    def both(x, cp):
        ours = s.loss(x), s.grad(x), s.hessian(x), s.grad(cp)
        ref = jax.vmap(s.loss)(x), jax.vmap(jax.grad(s.loss))(x), jax.vmap(jax.hessian(s.loss))(x)
        return ours, ref + (jax.vmap(jax.grad(s.loss))(cp), jax.vmap(jax.hessian(s.loss))(cp))

    (loss, grad, hess, grad_cp), (loss_ref, grad_ref, hess_ref, grad_cp_ref, hess_cp) = both(x, cp)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-14)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hess, hess_ref, rtol=1e-12, atol=1e-12)
    assert cp.shape == (len(s.indices), s.dim) == (len(s.kinds), s.dim)
    np.testing.assert_allclose(grad_cp, 0, atol=1e-13)
    np.testing.assert_allclose(grad_cp_ref, 0, atol=1e-13)
    np.testing.assert_array_equal(np.sum(np.linalg.eigvalsh(np.asarray(hess_cp)) < -1e-9, axis=-1), s.indices)
    x32 = np.asarray(x[0], np.float32)
    assert s.loss(x32).dtype == jnp.float32 and s.grad(x32).dtype == jnp.float32


def test_six_hump_camel_has_its_textbook_critical_points():
    """15 critical points: 6 minima, 7 saddles of index 1 (one at the origin), 2 maxima; the global
    minimum value -1.0316 at (0.0898, -0.7127) and its mirror image."""
    s = S.six_hump_camel()
    assert sorted(s.kinds) == sorted(["minimum"] * 6 + ["saddle"] * 7 + ["maximum"] * 2)
    np.testing.assert_array_equal(np.bincount(s.indices), [6, 7, 2])
    values = np.asarray([s.loss(p) for p in s.critical_points])  # numpy in, numpy out (float64)
    np.testing.assert_allclose(values.min(), -1.0316284534898774, rtol=1e-12)
    np.testing.assert_allclose(np.sort(np.abs(s.critical_points[values < -1.03])), [[0.0898420131, 0.712656403]] * 2)
    assert [s.kinds[i] for i in np.flatnonzero(np.all(s.critical_points == 0, axis=1))] == ["saddle"]

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


# ----------------------------------------------------------------------------------- the index

def test_dense_and_full_lanczos_index_count_the_negative_eigenvalues(x64):
    """A rotated 12-D quadratic with 3 negative eigenvalues: dense gives 3/12 exactly, Lanczos with
    n steps too, fewer steps a lower bound (interlacing); on a tiny tanh network (not quadratic)
    dense equals counting eigvalsh(jax.hessian); vmapped over points = one at a time."""
    lam = [-3.0, -1.0, -0.2, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6]
    loss, _ = _rotated_quadratic(lam, 6)
    p = jnp.ones(12)
    for method, steps in (("dense", None), ("lanczos", 12)):
        res = jax.jit(lambda p: S.index(loss, p, KEY, method, num_steps=steps))(p)
        assert float(res.num_negative) == 3 and float(res.index) == 0.25 and float(res.stderr) == 0
    short = jax.jit(jax.vmap(lambda k: S.index(loss, p, k, "lanczos", num_steps=4).num_negative))(
        jax.random.split(KEY, 8))
    assert np.all(np.asarray(short) <= 3) and np.all(np.asarray(short) >= 1)

    w = jax.random.normal(jax.random.PRNGKey(7), (4, 5), jnp.float64)

    def net(params):  # a 2-layer tanh "network" on fixed inputs, 13 parameters
        h = jnp.tanh(w @ params[:5] + params[5:9])
        return jnp.sum(jnp.square(h * params[9:13] - 0.3))

    points = jax.random.normal(jax.random.PRNGKey(8), (3, 13), jnp.float64)
    counts = np.sum(np.linalg.eigvalsh(np.asarray(jax.jit(jax.vmap(jax.hessian(net)))(points))) < -1e-9, axis=-1)
    got = jax.jit(jax.vmap(lambda q: S.index(net, q, None, "dense").num_negative))(points)
    np.testing.assert_array_equal(np.asarray(got), counts)
    assert 0 < max(counts) < 13


def test_slq_index_matches_the_known_negative_fraction(x64):
    """A 200-D rotated quadratic, 30% of eigenvalues negative (spectrum in [-2, -0.5] u [0.5, 3]):
    the SLQ estimate is within 4 standard errors of 0.3, which are positive and small."""
    rng = np.random.default_rng(9)
    lam = np.concatenate([rng.uniform(-2, -0.5, 60), rng.uniform(0.5, 3, 140)])
    loss, _ = _rotated_quadratic(lam, 10)
    res = jax.jit(lambda p: S.index(loss, p, KEY, "slq", num_steps=40, num_probes=64))(jnp.zeros(200))
    assert 0 < float(res.stderr) < 0.01
    assert abs(float(res.index) - 0.3) < 4 * float(res.stderr), res
    np.testing.assert_allclose(res.num_negative, 200 * res.index)

"""Curvature: HVP/GGN against dense matrices, Krylov methods against eigh, all under jit (float64).

The network is an MLP 4-6-3 (tanh, 51 parameters) on 10 random examples; compiled
functions are module-level and shared between tests to keep compilation cheap.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lossatlas import curvature as C
from lossatlas.losses import cross_entropy
from lossatlas.models import get_model

MODEL = get_model("mlp", widths=(6,), num_outputs=3, activation="tanh")   # 4-6-3: 51 parameters
N_EX, N_PARAMS = 10, 51


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def model_fn(p, x):
    return MODEL.apply({"params": p}, x)


def loss(p, batch):
    return cross_entropy(model_fn(p, batch[0]), batch[1])


@functools.lru_cache(maxsize=None)
def _problem_np(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_EX, 4))
    y = rng.integers(0, 3, size=N_EX).astype(np.int32)
    params = jax.jit(MODEL.init)(jax.random.PRNGKey(seed), jnp.zeros((1, 4), jnp.float32))["params"]
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params), x, y


def problem(seed=0):
    """float64 params and (x, y) data; call inside the x64 fixture."""
    params, x, y = _problem_np(seed)
    return jax.tree_util.tree_map(jnp.asarray, params), (jnp.asarray(x), jnp.asarray(y))


@jax.jit
def _dense_hessian(params, data):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), data))(flat)


@functools.lru_cache(maxsize=None)
def _dense_hessian_np():
    return np.asarray(_dense_hessian(*problem()))


def dense_hessian():
    return _dense_hessian_np().copy()


HVP = jax.jit(lambda p, t, data, chunk: C.hvp(loss, p, t, data, chunk), static_argnums=3)
TOP = jax.jit(lambda p, key, data, k, method, num_iters, chunk: C.top_eigenvalues(
    loss, p, k, key, method=method, num_iters=num_iters, return_vectors=True, data=data, chunk_size=chunk),
    static_argnums=(3, 4, 5, 6))


def test_chunked_loss_and_hvp_equal_full_batch():
    params, data = problem()
    full = loss(params, data)
    f = jax.jit(lambda p, data, chunk: C.dataset_loss(loss, data, chunk)(p), static_argnums=2)
    for chunk in (3, 5, 64):          # 3 leaves a remainder of 1, 64 > n
        np.testing.assert_allclose(f(params, data, chunk), full, rtol=1e-12)
    v = jax.tree_util.tree_map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), params)
    h_full = ravel_pytree(HVP(params, v, data, None))[0]
    h_chunk = ravel_pytree(HVP(params, v, data, 3))[0]
    np.testing.assert_allclose(h_chunk, h_full, rtol=1e-10, atol=1e-12)


def test_hvp_equals_dense_hessian_product():
    params, data = problem()
    H = dense_hessian()
    flat, unravel = ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(1), flat.shape, flat.dtype)
    got = ravel_pytree(HVP(params, unravel(v), data, None))[0]
    np.testing.assert_allclose(got, H @ v, rtol=1e-9, atol=1e-12)
    # loss_fn(params) form, no data
    got = jax.jit(lambda p, t, d: C.hvp(lambda q: loss(q, d), p, t))(params, unravel(v), data)
    np.testing.assert_allclose(ravel_pytree(got)[0], H @ v, rtol=1e-9, atol=1e-12)


def test_ggn_vp_equals_dense_jt_h_j():
    params, data = problem()
    x, y = data
    flat, unravel = ravel_pytree(params)

    @jax.jit
    def dense_ggn(flat):
        J = jax.jacobian(lambda f: model_fn(unravel(f), x).reshape(-1))(flat)        # [B*C, n]
        HL = jax.hessian(lambda z: cross_entropy(z.reshape(N_EX, 3), y))(model_fn(unravel(flat), x).reshape(-1))
        return J.T @ HL @ J

    G = np.asarray(dense_ggn(flat))
    v = jax.random.normal(jax.random.PRNGKey(2), flat.shape, flat.dtype)
    got = jax.jit(lambda p, t: C.ggn_vp(model_fn, cross_entropy, p, t, data, chunk_size=3))(params, unravel(v))
    np.testing.assert_allclose(ravel_pytree(got)[0], G @ v, rtol=1e-9, atol=1e-12)
    eig_G = np.linalg.eigvalsh(G)
    assert eig_G[0] > -1e-10                                              # PSD for a convex loss
    # the GGN plugs into the Krylov methods through `product`
    top = jax.jit(lambda p, k: C.top_eigenvalues(None, p, 2, k, num_iters=N_PARAMS, product=lambda q, t: C.ggn_vp(
        model_fn, cross_entropy, q, t, data)))(params, jax.random.PRNGKey(0))
    np.testing.assert_allclose(top, eig_G[::-1][:2], rtol=1e-8)


@pytest.mark.parametrize("method,num_iters,k", [("lanczos", N_PARAMS, 4), ("lanczos", None, 3), ("power", 400, 1)])
def test_top_eigenvalues_match_eigh(method, num_iters, k):
    params, data = problem()
    H = dense_hessian()
    dense = np.linalg.eigvalsh(H)[::-1][:k]
    vals, vecs = TOP(params, jax.random.PRNGKey(3), data, k, method, num_iters, 4)
    assert vals.shape == (k,)
    np.testing.assert_array_less(np.abs(vals - dense) / np.abs(dense), 1e-4)
    assert np.all(np.diff(vals) <= 0)
    flat_v = jax.vmap(lambda t: ravel_pytree(t)[0])(vecs)                # [k, n]
    np.testing.assert_allclose(np.linalg.norm(flat_v, axis=1), 1.0, rtol=1e-8)
    np.testing.assert_allclose(flat_v @ H, vals[:, None] * flat_v, atol=1e-4 * abs(dense[0]))  # H v = lambda v


def test_vmap_over_seeds_equals_loop():
    seeds = [problem(s)[0] for s in range(3)]
    _, data = problem()
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *seeds)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    f = lambda p, key: C.top_eigenvalues(loss, p, 3, key, data=data, chunk_size=4)  # noqa: E731
    batched = jax.jit(jax.vmap(f))(stacked, keys)
    looped = jnp.stack([TOP(p, k, data, 3, "lanczos", None, 4)[0] for p, k in zip(seeds, keys)])
    np.testing.assert_allclose(batched, looped, rtol=1e-8)
    assert not np.allclose(batched[0], batched[1])



def test_bottom_eigenvalues_match_eigh():
    """The most negative eigenpairs of the tiny net's Hessian (it has negative ones)."""
    params, data = problem()
    H = dense_hessian()
    dense = np.linalg.eigvalsh(H)
    assert dense[0] < 0
    f = jax.jit(lambda p, key: C.bottom_eigenvalues(loss, p, 3, key, num_iters=N_PARAMS, return_vectors=True,
                                                    data=data, chunk_size=4))
    vals, vecs = f(params, jax.random.PRNGKey(5))
    np.testing.assert_allclose(vals, dense[:3], atol=1e-8 * abs(dense[-1]))
    assert np.all(np.diff(vals) >= 0)
    flat_v = jax.vmap(lambda t: ravel_pytree(t)[0])(vecs)
    np.testing.assert_allclose(flat_v @ H, vals[:, None] * flat_v, atol=1e-6 * abs(dense[-1]))
    # default num_iters, values only; interlacing: Ritz values sit above the true ones
    short = jax.jit(lambda p, key: C.bottom_eigenvalues(loss, p, 2, key, num_iters=12, data=data))(
        params, jax.random.PRNGKey(5))
    assert np.all(np.asarray(short) >= dense[:2] - 1e-10)


@pytest.mark.parametrize("k", [1, 4])
def test_eigenspace_overlap_equals_dense_projection(k):
    """With num_iters = n the Ritz pairs are exact: the overlaps equal projections of the dense
    gradient on eigh's eigenvectors, and the residuals vanish."""
    params, data = problem()
    H = dense_hessian()
    lam, U = np.linalg.eigh(H)
    g = np.asarray(ravel_pytree(jax.grad(loss)(params, data))[0])
    frac = lambda V: np.sum((V.T @ g) ** 2) / (g @ g)  # noqa: E731
    f = jax.jit(lambda p, key: C.eigenspace_overlap(loss, p, k, key, num_iters=N_PARAMS, data=data, chunk_size=3))
    out = f(params, jax.random.PRNGKey(7))
    np.testing.assert_allclose(out.top_values, lam[::-1][:k], atol=1e-8 * lam[-1])
    np.testing.assert_allclose(out.bottom_values, lam[:k], atol=1e-8 * lam[-1])
    np.testing.assert_allclose(out.top_overlap, frac(U[:, ::-1][:, :k]), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(out.bottom_overlap, frac(U[:, :k]), rtol=1e-6, atol=1e-10)
    np.testing.assert_array_less(np.concatenate([out.top_residuals, out.bottom_residuals]), 1e-6 * lam[-1])
    np.testing.assert_allclose(out.chance, k / N_PARAMS)
    # an explicit vector: an eigenvector of the bottom space lies entirely in it
    flat, unravel = ravel_pytree(params)
    v = unravel(jnp.asarray(U[:, 0]))
    out_v = jax.jit(lambda p, key, v: C.eigenspace_overlap(loss, p, k, key, v, num_iters=N_PARAMS, data=data))(
        params, jax.random.PRNGKey(8), v)
    np.testing.assert_allclose(out_v.bottom_overlap, 1.0, rtol=1e-8)
    np.testing.assert_allclose(out_v.top_overlap, 0.0, atol=1e-8)


def test_eigenspace_overlap_refuses_bad_sizes():
    params, data = problem()
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"^eigenspace_overlap: k must be an integer in \[1, 25\]"):
        C.eigenspace_overlap(loss, params, 26, key, data=data)
    with pytest.raises(ValueError, match=r"^eigenspace_overlap: num_iters must be an integer >= 6"):
        C.eigenspace_overlap(loss, params, 3, key, num_iters=5, data=data)
    with pytest.raises(ValueError, match="loss_fn is None"):
        C.eigenspace_overlap(None, params, 3, key, product=lambda p, t: t)
    with pytest.raises(ValueError, match=r"^bottom_eigenvalues: k must be"):
        C.bottom_eigenvalues(loss, params, 0, key, data=data)

def _quadratic(eigenvalues, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))
    A = jnp.asarray(q @ np.diag(eigenvalues) @ q.T)
    return (lambda p: 0.5 * p @ A @ p), A


def test_power_top_k_with_negative_dominant_eigenvalue():
    # spectrum {-5, 2, 1, 0.5, ...}: the most negative eigenvalue dominates in magnitude
    quad, _ = _quadratic([-5.0, 2.0, 1.0, 0.5, 0.1, 0.0, -0.3, -1.0], 0)
    top = jax.jit(lambda k, method, iters: C.top_eigenvalues(quad, jnp.zeros(8), 3, k, method, iters),
                  static_argnums=(1, 2))
    np.testing.assert_allclose(top(jax.random.PRNGKey(0), "power", 300), [2.0, 1.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(top(jax.random.PRNGKey(0), "lanczos", 8), [2.0, 1.0, 0.5], rtol=1e-10)


def test_lanczos_repeated_eigenvalues_and_quadrature_weights():
    quad, _ = _quadratic([3.0, 3.0, 3.0, 1.0] + [0.0] * 8, 1)            # rank 4, multiplicity 3
    vals = jax.jit(lambda k: C.top_eigenvalues(quad, jnp.zeros(12), 5, k, num_iters=12))(jax.random.PRNGKey(0))
    np.testing.assert_allclose(vals, [3.0, 3.0, 3.0, 1.0, 0.0], atol=1e-10)
    nodes, weights = map(np.asarray, jax.jit(lambda k: C.lanczos_quadrature(quad, jnp.zeros(12), k, 12, 4))(
        jax.random.PRNGKey(1)))
    np.testing.assert_allclose(np.sum(weights, axis=1), 1.0, rtol=1e-12)
    # the measure sits on {0, 1, 3}; ghost nodes after breakdown carry no weight
    dist = np.min(np.abs(nodes[..., None] - np.array([0.0, 1.0, 3.0])), axis=-1)
    assert np.all((dist < 1e-8) | (weights < 1e-12))


def test_hutchinson_within_four_analytic_standard_errors():
    """Checked against the estimator's exact sampling distribution, not its own error bar.

    For Rademacher z, Var(z^T H z) = 2 (||H||_F^2 - sum_i H_ii^2) (the diagonal contributes
    z_i^2 H_ii = H_ii with no variance), so the mean of m probes has standard error
    sqrt(that / m). The estimate must lie within 4 of those of tr(H), and the reported
    sample standard error must agree with the analytic one (m = 200: its relative spread
    is ~5%; measured 0.96-1.06 over five keys), so a factor 1.5 either way fails only for a
    wrong formula, e.g. a missing or doubled sqrt(m) or a population std of the wrong values).
    """
    params, data = problem()
    H = dense_hessian()
    exact = np.trace(H)
    m = 200
    se_exact = np.sqrt(2 * (np.sum(H ** 2) - np.sum(np.diag(H) ** 2)) / m)
    est, se = jax.jit(lambda p, k: C.trace(loss, p, k, m, data=data, probe_batch=64))(params, jax.random.PRNGKey(0))
    assert 0 < se_exact < 0.2 * abs(exact)               # a test with resolving power
    assert abs(est - exact) < 4 * se_exact, (float(est), exact, se_exact)
    assert se_exact / 1.5 < se < 1.5 * se_exact, (float(se), se_exact)


def test_hutchplusplus_beats_hutchinson_on_low_rank_plus_noise():
    n = 60
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(n, 5)))
    noise = rng.normal(size=(n, n)) * 0.05
    A = jnp.asarray(u @ np.diag([100.0, 80.0, 60.0, 40.0, 20.0]) @ u.T + noise @ noise.T)
    quad = lambda p: 0.5 * p @ A @ p                                      # noqa: E731
    keys = jax.random.split(jax.random.PRNGKey(1), 20)
    run = jax.jit(lambda keys, method: jax.vmap(lambda k: C.trace(quad, jnp.zeros(n), k, 24, method))(keys),
                  static_argnums=1)
    (h, _), (hpp, hpp_se) = run(keys, "hutchinson"), run(keys, "hutch++")
    exact = float(jnp.trace(A))
    assert np.mean(np.abs(hpp - exact)) < 0.2 * np.mean(np.abs(h - exact))
    assert np.mean(np.abs(hpp - exact) <= 3 * hpp_se) >= 0.8


def test_spectral_density_normalised_and_located():
    params, data = problem()
    H = dense_hessian()
    dense = np.sort(np.linalg.eigvalsh(H))
    n, probes = dense.size, 40
    sigma = 0.005 * (dense[-1] - dense[0])
    f = jax.jit(lambda p, k: C.spectral_density(loss, p, k, num_steps=90, num_probes=probes, sigma=sigma, data=data))
    grid, dens = f(params, jax.random.PRNGKey(0))
    assert grid.shape == dens.shape == (1000,)
    np.testing.assert_allclose(np.trapezoid(dens, grid), 1.0, rtol=1e-10)
    assert grid[0] < dense[0] and grid[-1] > dense[-1] and np.all(dens >= 0)
    # CDF at every wide gap between dense eigenvalues = fraction of eigenvalues below it
    cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (dens[1:] + dens[:-1]) / 2)])
    gaps = np.nonzero(np.diff(dense) > 10 * sigma)[0]
    assert len(gaps) >= 3
    for i in gaps:
        mid = 0.5 * (dense[i] + dense[i + 1])
        np.testing.assert_allclose(np.interp(mid, grid, cdf), (i + 1) / n, atol=0.1)
    # the density's mean is a Hutchinson estimate of tr(H)/n with Rademacher probes, whose
    # variance is known exactly: Var(z^T H z) = 2 (||H||_F^2 - sum_i H_ii^2)
    se = np.sqrt(2 * (np.sum(H ** 2) - np.sum(np.diag(H) ** 2)) / probes) / n
    assert abs(np.trapezoid(grid * dens, grid) - dense.mean()) < 4 * se


def test_broadened_density_integrates_to_one_and_matches_broadened_dense_spectrum():
    """SLQ run to the dimension makes each probe's broadened density exactly z^T G_t z / n,
    G_t = N(t; H, sigma^2), so the probe mean is a Hutchinson estimate of the dense eigenvalues
    broadened the same way, (1/n) sum_i N(t; lambda_i, sigma^2), with the exact Rademacher
    standard error sqrt(2 (||G_t||_F^2 - sum_i G_t,ii^2) / P) / n at every t. The estimate must
    lie within 5 of those everywhere; a width off by a factor 2 must not."""
    params, data = problem()
    H = dense_hessian()
    lam, U = np.linalg.eigh(H)
    n, probes = lam.size, 64
    sigma = 0.02 * (lam[-1] - lam[0])
    nodes, weights = jax.jit(lambda p, k: C.lanczos_quadrature(loss, p, k, n, probes, data=data))(
        params, jax.random.PRNGKey(3))
    gauss = lambda t, s: np.exp(-0.5 * ((t - lam) / s) ** 2) / (s * np.sqrt(2 * np.pi))   # noqa: E731
    wide = np.linspace(lam[0] - 10 * sigma, lam[-1] + 10 * sigma, 4001)
    np.testing.assert_allclose(np.trapezoid(np.asarray(C.broadened_density(nodes, weights, wide, sigma)), wide),
                               1.0, rtol=1e-8)
    grid = np.linspace(lam[0] - 3 * sigma, lam[-1] + 3 * sigma, 80)
    est = np.asarray(jax.jit(C.broadened_density)(nodes, weights, grid, sigma))
    exact = np.array([gauss(t, sigma).mean() for t in grid])
    se = []
    for t in grid:
        G = (U * gauss(t, sigma)) @ U.T
        se.append(np.sqrt(2 * (np.sum(G ** 2) - np.sum(np.diag(G) ** 2)) / probes) / n)
    se = np.array(se)
    assert se.max() < 0.1 * exact.max()                                   # resolving power
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-9 * exact.max()), np.max(np.abs(est - exact) / (se + 1e-30))
    wrong = np.asarray(C.broadened_density(nodes, weights, grid, 2 * sigma))
    assert np.any(np.abs(wrong - exact) > 5 * se)
    # one probe as a 1-D [m] array; a width that is not positive is refused
    np.testing.assert_allclose(C.broadened_density(nodes[0], weights[0], grid, sigma),
                               C.broadened_density(nodes[:1], weights[:1], grid, sigma), rtol=1e-12)
    with pytest.raises(ValueError, match="sigma"):
        C.broadened_density(nodes, weights, grid, 0.0)


def test_epsilon_sharpness_larger_for_sharper_quadratic():
    centre = jnp.array([0.5, -1.0, 2.0])
    eps = 1e-2
    f = jax.jit(lambda p, k, a: C.sharpness(lambda q: 0.5 * a * jnp.sum(jnp.square(q["w"] - centre)), p, k,
                                            epsilon=eps, num_iters=3))
    out = {a: f({"w": centre}, jax.random.PRNGKey(0), a) for a in (1.0, 10.0)}
    bound = eps * (jnp.abs(centre) + 1)
    for a in out:
        np.testing.assert_allclose(out[a]["max_loss"], 0.5 * a * jnp.sum(bound ** 2), rtol=1e-10)  # a corner
        np.testing.assert_allclose(out[a]["lambda_max"], a, rtol=1e-10)
        np.testing.assert_allclose(out[a]["loss"], 0.0, atol=1e-15)
    assert out[10.0]["epsilon_sharpness"] > 5 * out[1.0]["epsilon_sharpness"] > 0



@pytest.mark.parametrize("a, offset", [(1.0, 0.0), (10.0, 0.0), (4.0, 0.03)])
def test_epsilon_sharpness_exact_value_with_loss_offset(a, offset):
    """Keskar et al. Metric 2.1 on f(w) = a/2 |w - c|^2 + L0 at a point w != c (or w = c).

    f is convex and separable, so its maximum over the box |delta_i| <= eps (|w_i| + 1) is the
    corner that moves every coordinate away from c: max f = a/2 sum (|w_i - c_i| + b_i)^2 + L0.
    With L0 > 0 the x100 and the 1/(1 + f(w)) normalisation both matter (at L0 = 0, f(w) = 0
    the normalisation is invisible).
    """
    L0 = 2.5
    centre = jnp.array([0.5, -1.0, 2.0, 0.0])
    w = centre + offset * jnp.array([1.0, -2.0, 0.5, 3.0])
    eps = 1e-2
    fn = lambda q: 0.5 * a * jnp.sum(jnp.square(q["w"] - centre)) + L0        # noqa: E731
    out = jax.jit(lambda p, k: C.sharpness(fn, p, k, epsilon=eps, num_iters=4))({"w": w}, jax.random.PRNGKey(3))
    wn, cn = np.asarray(w), np.asarray(centre)
    b = eps * (np.abs(wn) + 1)
    f0 = 0.5 * a * np.sum((wn - cn) ** 2) + L0
    fmax = 0.5 * a * np.sum((np.abs(wn - cn) + b) ** 2) + L0
    np.testing.assert_allclose(out["loss"], f0, rtol=1e-12)
    np.testing.assert_allclose(out["max_loss"], fmax, rtol=1e-12)
    np.testing.assert_allclose(out["epsilon_sharpness"], 100 * (fmax - f0) / (1 + f0), rtol=1e-6)
    np.testing.assert_allclose(out["lambda_max"], a, rtol=1e-10)

def test_bad_inputs_raise_clear_errors():
    params, data = problem()
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"^top_eigenvalues: method must be one of 'lanczos', 'power', got 'arnoldi'$"):
        C.top_eigenvalues(loss, params, 1, key, method="arnoldi", data=data)
    with pytest.raises(ValueError, match=rf"^top_eigenvalues: k must be an integer in \[1, {N_PARAMS}\], got {N_PARAMS + 1}$"):
        C.top_eigenvalues(loss, params, N_PARAMS + 1, key, data=data)
    with pytest.raises(ValueError, match=r"^top_eigenvalues: num_iters must be an integer >= 5 or None, got 3$"):
        C.top_eigenvalues(loss, params, 5, key, num_iters=3, data=data)
    with pytest.raises(ValueError, match=r"^top_eigenvalues: k must be an integer in \[1, "):
        C.top_eigenvalues(loss, params, 0, key, data=data)
    with pytest.raises(ValueError, match=r"^trace: method must be one of 'hutchinson', 'hutch\+\+', got 'girard'$"):
        C.trace(loss, params, key, 10, method="girard", data=data)
    with pytest.raises(ValueError, match="chunk_size"):
        C.hvp(lambda p: loss(p, data), params, params, chunk_size=2)
    with pytest.raises(ValueError, match="chunk_size"):
        C.dataset_loss(loss, data, chunk_size=0)
    with pytest.raises(ValueError, match="leading example axis"):
        C.dataset_loss(loss, (data[0], data[1][:5]))(params)

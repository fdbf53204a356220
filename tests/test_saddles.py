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


# ------------------------------------------------------------------------------- critical points

@functools.lru_cache(maxsize=None)
def _searcher(surface_name, method="newton_mr", num_steps=30, **kw):
    """One jitted, vmapped search per (surface, settings), shared by every test (traced at most
    twice: one starts count for the batch, one for the one-start loop)."""
    s = S.get_surface(surface_name)
    fn = chex.assert_max_traces(n=2)(lambda p, k: S.find_critical_points(s.loss, p, k, method, num_steps, **kw))
    return s, jax.jit(fn)


def _camel_starts(dtype):
    s = S.six_hump_camel()
    cp = jnp.asarray(s.critical_points, dtype)
    return s, cp, cp + 0.05 * jax.random.normal(jax.random.PRNGKey(2), cp.shape, dtype)


def test_newton_mr_converges_to_the_nearby_critical_point_of_every_kind():
    """float32 Newton-MR from 0.05 off each of the camel's 15 critical points (all starts in one
    vmapped program) lands on that point, saddles and maxima included (Newton-MR seeks g = 0: the
    analytic Hessian at the found points has the listed indices), and flags it critical."""
    s, cp, starts = _camel_starts(jnp.float32)
    _, search = _searcher("six_hump_camel", grad_tol=1e-4)
    res = search(starts, KEY)
    assert res.params.dtype == jnp.float32 and res.loss.dtype == jnp.float32
    np.testing.assert_allclose(res.params, cp, atol=1e-5)
    assert bool(jnp.all(res.is_critical)) and not bool(jnp.any(res.is_gradient_flat))
    assert np.all((res.converged_at >= 1) & (res.converged_at <= 10))
    assert res.grad_norms.shape == (15, 31) and np.all(res.grad_norms[:, 0] > 1e-2)
    found_index = np.sum(np.linalg.eigvalsh(np.asarray(s.hessian(res.params), np.float64)) < 0, axis=-1)
    np.testing.assert_array_equal(found_index, s.indices)             # 6 minima, 7 saddles, 2 maxima


def test_vmapped_search_equals_starts_run_one_by_one():
    """The batch of 15 starts gives the numbers of 15 single-start runs of the same compiled search
    (float32: points and losses to 1e-6, gradient norms to 1e-5, the rounding floor of ||g|| at the
    points; ``flatness`` is left out: at a critical point it is a ratio of rounding noise)."""
    _, _, starts = _camel_starts(jnp.float32)
    _, search = _searcher("six_hump_camel", grad_tol=1e-4)
    batch = search(starts, KEY)
    for i in range(starts.shape[0]):
        one = search(starts[i:i + 1], KEY)
        for field in ("params", "loss", "is_critical", "converged_at"):
            np.testing.assert_allclose(getattr(one, field)[0], getattr(batch, field)[i], atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(one.grad_norms[0], batch.grad_norms[i], atol=1e-5, rtol=1e-5)


def test_newton_mr_finds_the_degenerate_monkey_saddle_and_a_strict_saddle(x64):
    """The monkey saddle's Hessian vanishes at 0; Newton-MR still converges (linearly: the Newton
    step halves the distance) to below 1e-8 in 40 steps. On the 10-D strict saddle (a quadratic with
    10 distinct eigenvalues, one negative) one step of 10 MINRES iterations lands on the saddle."""
    _, search = _searcher("monkey_saddle", num_steps=40, grad_tol=1e-12)
    res = search(jnp.array([[0.3, 0.2], [-0.2, 0.35], [0.1, -0.4]]), KEY)
    assert bool(jnp.all(res.is_critical))
    np.testing.assert_allclose(res.params, 0, atol=1e-8)
    _, search = _searcher("strict_saddle", num_steps=1, minres_iters=10)
    res = search(jnp.array([[0.5, -1, 2, 0.1, 3, -0.7, 0.2, 0.3, -0.4, 1.0]]), KEY)
    np.testing.assert_allclose(res.params, 0, atol=1e-12)
    assert int(res.converged_at[0]) == 1 and bool(res.is_critical[0])


def _cubic(x):
    """f(x) = x^3/3 + x: f' = x^2 + 1 > 0 never vanishes; ||f'||^2 is minimal at 0, where f'' = 0."""
    return jnp.sum(x ** 3 / 3 + x)


def test_gradnorm_stops_at_a_gradient_flat_point_and_does_not_call_it_critical(x64):
    """On x^3/3 + x, minimising ||g||^2 from both sides ends at x = 0 where g = 1 and H g = 0: flagged
    gradient-flat, not critical; Newton-MR from the same starts ends there too."""
    starts = jnp.array([[1.0], [-0.7], [2.0]])
    for method in ("gradnorm", "newton_mr"):
        res = jax.jit(lambda p, k: S.find_critical_points(_cubic, p, k, method, 60))(starts, KEY)
        np.testing.assert_allclose(res.params, 0, atol=1e-3)
        np.testing.assert_allclose(res.grad_norm, 1, atol=1e-6)
        assert not bool(jnp.any(res.is_critical)) and bool(jnp.all(res.is_gradient_flat))
        assert np.all(res.flatness < 1e-3) and np.all(res.converged_at == -1)


def test_gradnorm_finds_the_minimum_of_a_convex_quadratic(x64):
    """On a rotated convex quadratic (eigenvalues 1..3) both the default line-search descent and
    optax.sgd on ||g||^2 / 2 converge to the minimum and flag it critical, not gradient-flat."""
    loss, _ = _rotated_quadratic([1.0, 2.0, 3.0], 3)
    starts = jax.random.normal(jax.random.PRNGKey(4), (4, 3), jnp.float64)
    for opt in (None, optax.sgd(0.1)):
        res = jax.jit(lambda p, k: S.find_critical_points(loss, p, k, "gradnorm", 150, grad_tol=1e-6,
                                                          optimizer=opt))(starts, KEY)
        np.testing.assert_allclose(res.params, 0, atol=1e-6)
        assert bool(jnp.all(res.is_critical)) and not bool(jnp.any(res.is_gradient_flat))


def test_search_over_a_dataset_in_chunks_finds_the_least_squares_fit(x64):
    """loss_fn(params, batch) with data and chunk_size (4 on 11 examples: a remainder chunk):
    Newton-MR on a linear regression with a params pytree lands on numpy's least-squares solution
    (a quadratic: one exact step); jitter moved the two identical starts apart."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(11, 3)), rng.normal(size=11)

    def loss(p, batch):
        return 0.5 * jnp.mean(jnp.square(batch[0] @ p["w"] + p["b"] - batch[1]))

    params0 = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)}
    res = jax.jit(lambda p, k, data: S.find_critical_points(loss, p, k, num_steps=2, minres_iters=4, data=data,
                                                            chunk_size=4, jitter=0.1, grad_tol=1e-10))(
        params0, KEY, (jnp.asarray(x), jnp.asarray(y)))
    sol = np.linalg.lstsq(np.c_[x, np.ones(11)], y, rcond=None)[0]
    np.testing.assert_allclose(res.params["w"], np.broadcast_to(sol[:3], (2, 3)), atol=1e-10)
    np.testing.assert_allclose(res.params["b"], [sol[3]] * 2, atol=1e-10)
    np.testing.assert_allclose(res.loss, 0.5 * np.mean((np.c_[x, np.ones(11)] @ sol - y) ** 2), rtol=1e-12)
    assert bool(jnp.all(res.is_critical)) and np.all(res.converged_at == 1)
    assert abs(float(res.grad_norms[0, 0] - res.grad_norms[1, 0])) > 1e-3
    fit = jax.tree_util.tree_map(lambda a: a[0], res.params)   # a minimum: index 0, also in chunks
    hi = jax.jit(lambda p, data: S.index(loss, p, None, "dense", data=data, chunk_size=4))(
        fit, (jnp.asarray(x), jnp.asarray(y)))
    assert float(hi.num_negative) == 0


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
    assert int(S.index(loss, jnp.zeros(200), method="dense").num_negative) == 60   # the ground truth itself



def test_rel_tol_is_relative_to_the_spectral_scale(x64):
    """Eigenvalues {-4, -0.03, -1e-4, 0 x5, 0.5, 1, 2, 8}: rel_tol r counts lambda < -r * 8; dense,
    full Lanczos and SLQ on the explicit nodes agree; rel_tol with tol is refused."""
    lam = [-4.0, -0.03, -1e-4] + [0.0] * 5 + [0.5, 1.0, 2.0, 8.0]
    loss, _ = _rotated_quadratic(lam, 11)
    p = jnp.zeros(12)
    for rel, expected in ((None, 3), (1e-3, 2), (1e-2, 1), (0.6, 0)):
        for method in ("dense", "lanczos"):
            res = jax.jit(lambda p: S.index(loss, p, KEY, method, num_steps=12, rel_tol=rel))(p)
            assert float(res.num_negative) == expected, (method, rel, res)
        mass, _ = S.negative_spectral_mass(jnp.asarray([lam, lam]), jnp.full((2, 12), 1 / 12), rel_tol=rel)
        np.testing.assert_allclose(mass, expected / 12)
    np.testing.assert_allclose(S.index(loss, p, KEY, "dense", tol=0.02).num_negative, 2)
    _rejects(r"index: rel_tol must be None when tol is given", S.index, loss, p, KEY, "dense", tol=0.1, rel_tol=0.1)
    _rejects(r"index: rel_tol must be a number in \[0, 1\)", S.index, loss, p, KEY, "dense", rel_tol=1.0)

# ---------------------------------------------------------------------------------- optimizers

def _one_step(tx, loss, x):
    return jax.jit(lambda x: tx.update(jax.grad(loss)(x), tx.init(x), x, value_fn=loss))(x)


def test_saddle_free_newton_escapes_the_saddle_that_damped_newton_lands_on(x64):
    """On x^2 - y^2 from (0.7, 1e-3), lr = 1, damping 1e-10: saddle-free Newton sets x to 0 and
    doubles y (|H| = 2I: steps downhill along y); damped Newton jumps onto the saddle (0, 0)."""
    s, x0 = S.saddle_2d(), jnp.array([0.7, 1e-3])
    u, state = _one_step(S.saddle_free_newton(1.0, 1e-10), s.loss, x0)
    np.testing.assert_allclose(x0 + u, [0.0, 2e-3], atol=1e-9)
    assert int(state.count) == 1 and float(state.min_eigenvalue) == pytest.approx(-2.0)
    u, _ = _one_step(S.damped_newton(1.0, 1e-10), s.loss, x0)
    np.testing.assert_allclose(x0 + u, [0.0, 0.0], atol=1e-9)


def test_krylov_saddle_free_newton_with_full_dimension_equals_dense(x64):
    """A non-quadratic 6-D function with an indefinite Hessian: krylov_dim = 6 gives the dense step;
    krylov_dim = 3 gives a different step; inside optax.chain (value_fn forwarded) and with
    injected hyperparameters the same step."""
    def f(x):
        return jnp.sum(jnp.cos(jnp.arange(1.0, 7.0) * x)) + 0.1 * jnp.sum(x) ** 3 + x[0] * x[3]

    x = jax.random.normal(jax.random.PRNGKey(2), (6,), jnp.float64)
    dense, state = _one_step(S.saddle_free_newton(0.5, 0.1), f, x)
    assert float(state.min_eigenvalue) < -1                               # indefinite Hessian
    full, _ = _one_step(S.saddle_free_newton(0.5, 0.1, "krylov", 6), f, x)
    part, _ = _one_step(S.saddle_free_newton(0.5, 0.1, "krylov", 3), f, x)
    np.testing.assert_allclose(full, dense, rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(part - dense) > 1e-3
    chained, _ = _one_step(optax.chain(optax.clip_by_global_norm(1e6), S.saddle_free_newton(0.5, 0.1)), f, x)
    np.testing.assert_allclose(chained, dense, rtol=1e-12)
    injected = optax.inject_hyperparams(S.saddle_free_newton, static_args=("method", "krylov_dim"))
    np.testing.assert_allclose(_one_step(injected(learning_rate=0.5, damping=0.1), f, x)[0], dense, rtol=1e-12)


def _descend(tx, x0, steps=60):
    loss = S.saddle_2d().loss

    def step(carry, _):
        x, state = carry
        u, state = tx.update(jax.grad(loss)(x), state, x)
        return (optax.apply_updates(x, u), state), x

    (x, state), _ = jax.lax.scan(step, (x0, tx.init(x0)), None, length=steps)
    return x, state


def test_perturbed_gd_leaves_the_stable_manifold_where_gd_stays():
    """Started exactly on the saddle's stable manifold (y = 0) of x^2 - y^2, gradient descent
    converges to the saddle; perturbed GD kicks once the gradient is small and |y| passes 1 within
    60 steps. The same key gives the same numbers, another key other numbers."""
    x0 = jnp.array([0.5, 0.0])
    run = jax.jit(lambda key: _descend(S.perturbed_gd(0.1, key, radius=1e-2, grad_threshold=1e-2, wait_steps=5), x0))
    x_gd, _ = jax.jit(lambda: _descend(optax.sgd(0.1), x0))()
    assert float(x_gd[1]) == 0.0 and abs(float(x_gd[0])) < 1e-4
    x, state = run(jax.random.PRNGKey(3))
    assert abs(float(x[1])) > 1.0 and int(state.num_perturbations) >= 1 and int(state.count) == 60
    x_again, _ = run(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(x, x_again)
    assert not np.array_equal(x, run(jax.random.PRNGKey(4))[0])
    np.testing.assert_array_equal(S.perturbed_gd(0.1, 3).init(x0).key, jax.random.PRNGKey(3))  # int seed


# ---------------------------------------------------------------------------------- bad input

def _rejects(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as err:
        fn(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_bad_input_raises_one_line_naming_the_field():
    s = S.saddle_2d()
    p0 = jnp.zeros((2, 2))
    fcp = S.find_critical_points
    _rejects(r"find_critical_points: method must be one of 'newton_mr', 'gradnorm', got 'newton'", fcp, s.loss, p0, KEY,
             "newton")
    _rejects(r"find_critical_points: num_steps must be an integer >= 1, got 0", fcp, s.loss, p0, KEY, num_steps=0)
    _rejects(r"find_critical_points: key is required", fcp, s.loss, p0, None)
    _rejects(r"find_critical_points: grad_tol must be a number > 0", fcp, s.loss, p0, KEY, grad_tol=0.0)
    _rejects(r"find_critical_points: params0 must be a params pytree whose leaves share a leading starts axis",
             fcp, s.loss, {"a": jnp.zeros((2, 2)), "b": jnp.zeros((3,))}, KEY)
    _rejects(r"find_critical_points: optimizer must be None, or an optax", fcp, s.loss, p0, KEY, optimizer=optax.sgd(1.0))
    _rejects(r"find_critical_points: armijo must be a number in \(0, 0.5\), got 0.7", fcp, s.loss, p0, KEY, armijo=0.7)
    _rejects(r"index: method must be one of 'dense', 'lanczos', 'slq'", S.index, s.loss, p0[0], KEY, "exact")
    _rejects(r"index: num_probes must be an integer >= 2", S.index, s.loss, p0[0], KEY, "slq", num_probes=1)
    _rejects(r"index: key is required", S.index, s.loss, p0[0], None, "slq")
    _rejects(r"saddle_free_newton: damping must be a number >= 0, got -1.0", S.saddle_free_newton, 1.0, -1.0)
    _rejects(r"saddle_free_newton: method must be one of 'dense', 'krylov'", S.saddle_free_newton, 1.0, method="lanczos")
    _rejects(r"saddle_free_newton: krylov_dim must be an integer >= 1", S.saddle_free_newton, 1.0, krylov_dim=0)
    _rejects(r"damped_newton: learning_rate must be a number >= 0", S.damped_newton, -0.1)
    _rejects(r"perturbed_gd: wait_steps must be an integer >= 0", S.perturbed_gd, 0.1, KEY, wait_steps=-1)
    _rejects(r"perturbed_gd: key must be a JAX PRNG key", S.perturbed_gd, 0.1, "seed")
    tx = S.saddle_free_newton()
    _rejects(r"saddle_free_newton: update needs params and value_fn", tx.update, p0[0], tx.init(p0[0]), p0[0])
    _rejects(r"get_surface: name must be one of 'saddle_2d', .*'rosenbrock', .*got 'camel'", S.get_surface, "camel")
    _rejects(r"scaled_saddle: a must be a number > 0", S.scaled_saddle, 0.0)
    _rejects(r"strict_saddle: n must be an integer >= 2", S.strict_saddle, 1)
    _rejects(r"ill_conditioned_quadratic: eigenvalues must be a non-empty 1-D sequence", S.ill_conditioned_quadratic, [])

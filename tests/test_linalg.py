"""lossatlas.linalg: the jnp.linalg results, with batches mapped sequentially under vmap on CPU."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import initializers as jinit

from lossatlas import linalg


def _sym(key, shape):
    a = jax.random.normal(key, shape)
    return a + jnp.swapaxes(a, -1, -2)


def test_orthogonal_init_equals_jax_initializer():
    """Same key, same matrix as jax.nn.initializers.orthogonal, for square, wide, tall and rank-3 shapes."""
    key = jax.random.PRNGKey(3)
    for shape in [(6, 6), (3, 7), (7, 3), (2, 3, 4)]:
        ours = linalg.orthogonal(1.7)(key, shape)
        ref = jinit.orthogonal(1.7)(key, shape)
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))
    q = np.asarray(linalg.orthogonal(2.0)(key, (8, 8)))
    np.testing.assert_allclose(q.T @ q, 4.0 * np.eye(8), atol=1e-5)  # scale * orthogonal


def test_vmapped_and_nested_vmapped_match_batched_lapack():
    """Under one and two vmap levels (and jit) the sequential batch equals the batched call."""
    m = _sym(jax.random.PRNGKey(0), (2, 3, 5, 5))
    w_ref, v_ref = jnp.linalg.eigh(m)
    w, v = jax.jit(jax.vmap(jax.vmap(linalg.eigh)))(m)
    np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-5)
    # eigenvectors up to sign: |V^T V_ref| = I
    np.testing.assert_allclose(np.abs(np.einsum("abij,abik->abjk", v, v_ref)), np.broadcast_to(np.eye(5), (2, 3, 5, 5)), atol=1e-4)
    np.testing.assert_allclose(jax.vmap(linalg.eigvalsh)(m[0]), jnp.linalg.eigvalsh(m[0]), rtol=1e-5, atol=1e-5)
    a = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 3))
    np.testing.assert_allclose(jax.vmap(linalg.svdvals)(a), jnp.linalg.svd(a, compute_uv=False), rtol=1e-5)
    q, r = jax.vmap(linalg.qr)(a)
    np.testing.assert_allclose(np.einsum("bij,bjk->bik", q, r), a, atol=1e-5)


def test_sharded_vmapped_orthogonal_init_matches_unsharded():
    """Keys sharded over every device (as sweep shards seeds) give the single-device matrices."""
    from lossatlas import devices
    n = 2 * max(1, len(jax.devices()))
    keys = jax.random.split(jax.random.PRNGKey(7), n)
    init = jax.jit(jax.vmap(lambda k: linalg.orthogonal(2.0)(k, (16, 16))))
    sharded = init(devices.shard_batch_axis(keys, devices.mesh_for(n)))
    single = jnp.stack([jinit.orthogonal(2.0)(k, (16, 16)) for k in keys])
    np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), rtol=1e-5, atol=1e-6)


def test_lanczos_full_run_reproduces_eigh_and_the_matrix():
    """m = n Lanczos steps on a small symmetric matrix: the Ritz values are its eigenvalues,
    Q is orthonormal and Q A Q^T = T (under jit)."""
    with jax.enable_x64(True):
        n = 9
        a = _sym(jax.random.PRNGKey(4), (n, n)).astype(jnp.float64)
        z = jax.random.normal(jax.random.PRNGKey(5), (2, n), jnp.float64)
        alphas, betas, q = jax.jit(lambda a, v, r: linalg.lanczos(lambda u: a @ u, v, n, r))(a, z[0], z[1])
        theta, s = linalg.tridiagonal_eigh(alphas, betas)
        np.testing.assert_allclose(theta, np.linalg.eigvalsh(np.asarray(a)), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(q @ q.T, np.eye(n), atol=1e-12)
        np.testing.assert_allclose(q @ a @ q.T, linalg.tridiagonal(alphas, betas), atol=1e-10)
        ritz_vectors = s.T @ q  # row i pairs with theta[i]
        np.testing.assert_allclose(ritz_vectors @ a, theta[:, None] * ritz_vectors, atol=1e-9)
        vals, _ = linalg.power_top_k(lambda u: a @ u, n, 2, jax.random.PRNGKey(6), 2000, jnp.float64)
        np.testing.assert_allclose(vals, np.sort(np.linalg.eigvalsh(np.asarray(a)))[::-1][:2], rtol=1e-6)


def _singular_indefinite(seed, n=10):
    """A symmetric n x n matrix with eigenvalues of both signs, two of them exactly zero (rank n - 2)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.array([3.0, -2.0, 1.0, -0.5, 0.0, 0.0, 2.0, -1.0, 0.7, -4.0])
    return q @ np.diag(lam) @ q.T, q[:, lam == 0], rng


_MINRES = jax.jit(jax.vmap(lambda a, b: linalg.minres(lambda u: a @ u, b, 30), in_axes=(None, 0)))


def test_minres_consistent_singular_system_gives_the_minimum_norm_solution():
    """b in the range of a singular indefinite A: MINRES (vmapped over right-hand sides, under jit)
    equals numpy's minimum-norm least-squares solution; on a non-singular shift of A it equals solve."""
    with jax.enable_x64(True):
        a, _, rng = _singular_indefinite(0)
        b = rng.normal(size=(4, 10)) @ a                                   # rows in range(A)
        x = np.asarray(_MINRES(jnp.asarray(a), jnp.asarray(b)))
        x_ref = np.linalg.lstsq(a, b.T, rcond=None)[0].T
        np.testing.assert_allclose(x, x_ref, atol=1e-12)
        a2 = a + 0.3 * np.eye(10)                                            # eigenvalues 0 -> 0.3, none at 0
        x = np.asarray(_MINRES(jnp.asarray(a2), jnp.asarray(b)))
        np.testing.assert_allclose(x, np.linalg.solve(a2, b.T).T, atol=1e-12)
        assert not np.any(np.asarray(linalg.minres(lambda u: a @ u, jnp.zeros(10), 5)))   # b = 0 -> x = 0


def test_minres_inconsistent_system_reaches_the_least_squares_residual():
    """b with a null-space component: the residual falls monotonically with the iteration count to
    the least-squares minimum and A x equals A x_ls (x differs from the min-norm x_ls only in the
    null space), with no blow-up from the singular last rotation; also in float32."""
    with jax.enable_x64(True):
        a, null, rng = _singular_indefinite(1)
        b = rng.normal(size=10)
        assert np.linalg.norm(null.T @ b) > 0.1
        x_ls = np.linalg.lstsq(a, b, rcond=None)[0]
        best = np.linalg.norm(a @ x_ls - b)
        res = [np.linalg.norm(a @ np.asarray(linalg.minres(lambda u: jnp.asarray(a) @ u, jnp.asarray(b), k)) - b)
               for k in (1, 3, 5, 7, 9, 12, 30)]
        assert np.all(np.diff(res) <= 1e-12), res
        assert res[0] < np.linalg.norm(b)
        np.testing.assert_allclose(res[-1], best, rtol=1e-10)
        x = np.asarray(_MINRES(jnp.asarray(a), jnp.asarray(b)[None]))[0]
        np.testing.assert_allclose(a @ x, a @ x_ls, atol=1e-10)
        assert np.linalg.norm(x) < 2 * np.linalg.norm(x_ls)
    x32 = np.asarray(linalg.minres(lambda u: jnp.asarray(a, jnp.float32) @ u, jnp.asarray(b, jnp.float32), 30))
    assert x32.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a @ x32 - b), best, rtol=1e-4)

"""forgetting_curvature: Fisher overlap, the quadratic (EWC) model of forgetting, the straight line.

One quick run (module fixture) checks the findings; the mathematics (Fisher factor, Frechet
overlap, quadratic forms, the EWC-or-L2 strategy) is checked against dense computations on a
tiny model.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from jax.flatten_util import ravel_pytree

from lossatlas import continual as cl
from lossatlas import losses, models
from lossatlas.checks import assert_passed
from lossatlas_experiments import _curvature_geometry as cg
from lossatlas_experiments import forgetting_curvature as fc

NAME = "forgetting_curvature"


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick(NAME)


def test_quick_findings(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    p, le, s = len(cfg.fractions), len(cfg.ewc_lams), cfg.seeds
    nl = len(res["layers"])
    assert res["overlap"]["frechet"].shape == (p, 2, s, nl)
    # a task's Fisher overlaps itself exactly: p = 0 is task A again, at the same parameters
    np.testing.assert_allclose(res["overlap"]["frechet"][0], 1.0, atol=2e-4)
    np.testing.assert_allclose(res["overlap"]["diagonal"][0], 1.0, atol=1e-5)
    assert np.all(res["overlap"]["frechet"] <= 1 + 2e-4) and np.all(res["overlap"]["frechet"] > 0)
    # permuting every input lowers the whole-network overlap of every seed, naive runs too (the full
    # run's EWC overlap is not monotone in p in between, so only the ends are asserted)
    whole = res["overlap"]["frechet"][..., -1]                     # [P, 2, S]
    assert np.all(whole[-1] < whole[0] - 0.2)
    # the extra small-a points of the line lie between a = 0 and the first grid point
    assert res["ewc"]["line_small"].shape == res["ewc"]["L0"].shape + (2,)
    # every run of a seed starts task B from the same task-A solution (EWC and L2 alike)
    l0 = np.concatenate([res["ewc"]["L0"], res["l2"]["L0"]], axis=1)
    np.testing.assert_allclose(l0, np.broadcast_to(l0[:, :1], l0.shape), rtol=1e-5)
    # stronger penalties move less and forget less; EWC lambda=0 is naive fine-tuning
    for name in ("ewc", "l2"):
        dl = res[name]["dL"][-1].mean(-1)                          # p = 1, over lambdas
        assert dl[-1] < dl[0]
    assert np.all(np.diff(res["l2"]["norm"][-1].mean(-1)) < 0)
    # the straight line starts and ends at the measured losses
    for name in ("ewc", "l2"):
        np.testing.assert_allclose(res[name]["line"][..., 0], res[name]["L0"], rtol=1e-6)
        np.testing.assert_allclose(res[name]["line"][..., -1], res[name]["L1"], rtol=1e-6)
    for f in ("forgetting_curvature.png", "table.md", "checks.json"):
        assert (path / f).exists()


# ----------------------------------------------------------------------------- mathematics

@functools.lru_cache(maxsize=1)
def _tiny():
    model = models.get_model("mlp", widths=(3,), num_outputs=3)
    kx, kp, kd, ky = jax.random.split(jax.random.PRNGKey(3), 4)
    x = jax.random.normal(kx, (5, 4))
    y = jax.random.randint(ky, (5,), 0, 3)
    params = model.init(kp, x[:1])["params"]
    flat, unravel = ravel_pytree(params)
    d = unravel(0.3 * jax.random.normal(kd, flat.shape))
    apply = lambda p, xs: model.apply({"params": p}, xs)  # noqa: E731
    return apply, params, d, x, y, flat, unravel


def _dense_fisher(apply, params, x):
    flat, unravel = ravel_pytree(params)
    jac, prob = jax.jit(lambda f: (jax.jacfwd(lambda g: apply(unravel(g), x))(f), jax.nn.softmax(apply(unravel(f), x))))(flat)
    jac, prob = np.asarray(jac, np.float64), np.asarray(prob, np.float64)              # [N, K, P], [N, K]
    h = np.stack([np.diag(p) - np.outer(p, p) for p in prob])                           # [N, K, K]
    return np.einsum("nkp,nkl,nlq->pq", jac, h, jac) / x.shape[0]


def test_fisher_factor_and_quadratic_forms_equal_dense():
    apply, params, d, x, y, flat, unravel = _tiny()
    f_dense = _dense_fisher(apply, params, x)
    theta_b = jax.tree_util.tree_map(jnp.add, params, d)
    loss = lambda f: losses.cross_entropy(apply(unravel(f), x), y)  # noqa: E731

    @jax.jit
    def compute(params, theta_b):
        fdiag = cl.fisher_diag(apply, params, x, method="exact")
        q = cg.quadratic_forms(apply, params, theta_b, fdiag, x, y, chunk_size=2)
        f = ravel_pytree(params)[0]
        return cg.rows(cg.fisher_factor(apply, params, x)), q, jax.hessian(loss)(f), jax.grad(loss)(f)

    a, q, hess, grad = compute(params, theta_b)
    a, hess, grad = (np.asarray(v, np.float64) for v in (a, hess, grad))
    np.testing.assert_allclose(a.T @ a, f_dense, atol=1e-6)
    dv = np.asarray(ravel_pytree(d)[0], np.float64)
    np.testing.assert_allclose(q["q_ggn"], 0.5 * dv @ f_dense @ dv, rtol=1e-4)   # ggn_vp = Fisher
    np.testing.assert_allclose(q["q_hess"], 0.5 * dv @ hess @ dv, rtol=1e-4)
    np.testing.assert_allclose(q["q_diag"], 0.5 * np.sum(np.diag(f_dense) * dv ** 2), rtol=1e-4)
    np.testing.assert_allclose(q["lin"], grad @ dv, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(q["dL"], loss(ravel_pytree(theta_b)[0]) - loss(flat), rtol=1e-5)
    np.testing.assert_allclose(q["norm"], np.linalg.norm(dv), rtol=1e-5)


def test_frechet_overlap_equals_dense_formula():
    apply, params, d, x, y, flat, unravel = _tiny()
    theta_b = jax.tree_util.tree_map(jnp.add, params, d)
    fa, fb = _dense_fisher(apply, params, x), _dense_fisher(apply, theta_b, x[::-1] * 1.5)
    fa_n, fb_n = fa / np.trace(fa), fb / np.trace(fb)
    root = scipy.linalg.sqrtm(fa_n)
    cross = np.real(np.trace(scipy.linalg.sqrtm(root @ fb_n @ root)))
    d2 = 0.5 * np.trace(fa_n + fb_n - 2 * scipy.linalg.sqrtm(fa_n @ fb_n).real)
    assert np.isclose(1 - d2, cross, atol=1e-5)  # tr((AB)^1/2) = tr((A^1/2 B A^1/2)^1/2)

    @jax.jit
    def compute(params, theta_b):
        ra = cg.rows(cg.fisher_factor(apply, params, x))
        rb = cg.rows(cg.fisher_factor(apply, theta_b, x[::-1] * 1.5))
        over = jnp.stack([cg.frechet_overlap(ra, rb), cg.frechet_overlap(ra, ra), cg.frechet_overlap(ra, 3.0 * ra),
                          cg.diagonal_overlap(ra, rb)])
        return over, cg.rows(cg.fisher_factor(apply, params, x), "dense_0")

    over, r0 = compute(params, theta_b)
    ab, aa, a3, diag = (float(v) for v in over)
    assert np.isclose(ab, 1 - d2, atol=2e-4) and 0 < ab < 0.999
    # a Fisher overlaps itself (and any multiple of itself) exactly
    assert np.isclose(aa, 1.0, atol=1e-5) and np.isclose(a3, 1.0, atol=1e-5)
    da, db = np.diag(fa_n), np.diag(fb_n)
    assert np.isclose(diag, np.sum(np.sqrt(da * db)), atol=1e-5)
    # per layer: the rows of one top-level layer hold that layer's diagonal block of F
    r0 = np.asarray(r0, np.float64)
    n0 = sum(v.size for v in jax.tree_util.tree_leaves(params["dense_0"]))
    np.testing.assert_allclose(r0.T @ r0, fa[:n0, :n0], atol=1e-6)


def test_partial_permutations_are_nested_and_move_the_chosen_inputs():
    perms = cg.partial_permutations(10, (0.0, 0.3, 0.5, 1.0), np.random.default_rng(0))
    for row, p in zip(perms, (0.0, 0.3, 0.5, 1.0)):
        assert sorted(row) == list(range(10))
        assert np.sum(row != np.arange(10)) == round(p * 10)
    moved = [set(np.flatnonzero(r != np.arange(10))) for r in perms]
    assert moved[1] <= moved[2] <= moved[3]


def test_config_errors():
    with pytest.raises(ValueError, match="Config.fractions"):
        fc.Config(fractions=(0.5, 1.0))
    with pytest.raises(ValueError, match="Config.overlap_lam"):
        fc.Config(overlap_lam=7.0)
    with pytest.raises(ValueError, match="Config.scatter_fractions"):
        fc.Config(scatter_fractions=(0.3,))
    with pytest.raises(ValueError, match="Config.dataset"):
        fc.Config(dataset="cifar")

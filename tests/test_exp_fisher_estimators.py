"""fisher_estimators in quick mode: EWC by Fisher estimator, and the estimators against the exact Fisher."""
import numpy as np
import pytest

import jax.numpy as jnp

from lossatlas import continual as cl
from lossatlas.checks import assert_passed
from lossatlas_experiments import _fisher_compare as fc
from lossatlas_experiments import fisher_estimators as fe

NAME = "fisher_estimators"


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick(NAME)


def test_findings_in_quick_mode(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    # the checks replaced after seeing results are kept, report-only (the full run fails the first one)
    for name in ("original check: sampled Fisher is unbiased: the mean of m draws converges to the exact Fisher",
                 "original check: the batch estimator is about 1/b of the empirical Fisher"):
        assert not checks[name]["gating"] and "original check" in checks[name]["claim"]
    for est in cfg.estimators:
        r = res["sweeps"][est]
        acc = cl.average_accuracy(r["R"])
        assert np.all((acc >= 0) & (acc <= 1))
        assert acc[r["chosen"]].mean() > acc[0].mean()  # EWC at its best lambda beats fine-tuning
    for f in ("fisher_estimators.png", "table.md", "checks.json"):
        assert (path / f).exists()


def test_estimator_comparison_math(quick):
    _, res, _, cfg = quick
    c = res["compare"]
    # the theory's Fisher (per-class gradients weighted by p) is the library's exact one
    assert np.all(c["theory_vs_exact"] < 1e-3)
    # predicted MSE falls exactly as 1/m; the m-draw averages are means over disjoint groups of draws
    scaled = c["sampled_mse_pred"] * np.asarray(cfg.compare_draws)
    np.testing.assert_allclose(scaled, np.broadcast_to(c["sampled_mse_pred"][:, :1], scaled.shape), rtol=1e-5)
    assert np.all(c["sampled_rel_err"] ** 2 <= c["sampled_mse"] * (1 + 1e-5))  # Jensen: mean(sqrt)^2 <= mean
    for est in cfg.estimators:
        assert np.all(c["trace_ratio"][est] > 0) and np.all(np.abs(c["corr"][est]) <= 1 + 1e-6)


def _softmax_model(seed=0, n=4, d=3, k=3):
    rng = np.random.default_rng(seed)
    params = {"w": jnp.asarray(rng.normal(size=(d, k)), jnp.float32), "b": jnp.asarray(rng.normal(size=k), jnp.float32)}
    x = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
    return params, x


def _dense_per_class_sq_grads(params, x):
    """numpy: p [N, K] and (d log p_c / d theta)^2 [N, K, P] of a linear softmax (theta = (w, b) flattened)."""
    w, b, x = (np.asarray(v, np.float64) for v in (params["w"], params["b"], x))
    z = x @ w + b
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    n, k = p.shape
    eye = np.eye(k)
    # d log p_c / d w[j, l] = x_j (delta_cl - p_l); d log p_c / d b[l] = delta_cl - p_l
    dz = eye[None] - p[:, None, :]                                      # [N, c, l]
    gw = x[:, None, :, None] * dz[:, :, None, :]                        # [N, c, j, l]
    g = np.concatenate([gw.reshape(n, k, -1), dz.reshape(n, k, -1)], -1)  # order of flax-free leaves: b, w sorted
    return p, np.square(g)


def test_exact_fisher_is_the_expectation_over_the_model(digits):
    """cl.fisher_diag(exact) of a linear softmax = dense numpy E_{y~p}[g g^T] diagonal, averaged over examples."""
    params, x = _softmax_model()
    logits = lambda p, xs: xs @ p["w"] + p["b"][None]  # noqa: E731
    got = cl.fisher_diag(logits, params, x, method="exact", chunk_size=3)  # chunking with padding
    p, g2 = _dense_per_class_sq_grads(params, x)
    fisher = np.einsum("nc,ncp->p", p, g2) / len(p)
    d, k = params["w"].shape
    np.testing.assert_allclose(np.asarray(got["w"]).ravel(), fisher[:d * k], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.asarray(got["b"]), fisher[d * k:], rtol=1e-5, atol=1e-7)


def test_sampled_error_theory_matches_enumeration():
    """E||F_1 - F||^2, Var||F_1 - F||^2 and tr(Sigma^2) of the one-draw sampled Fisher, against all K^N label draws."""
    import itertools
    params, x = _softmax_model(seed=1, n=3, d=2, k=3)
    logits = lambda p, xs: xs @ p["w"] + p["b"][None]  # noqa: E731
    p, g2 = _dense_per_class_sq_grads(params, x)
    g2 = np.concatenate([g2[..., -3:], g2[..., :-3]], -1)  # jax leaf order: b then w
    n, k, _ = g2.shape
    fisher = np.einsum("nc,ncp->p", p, g2) / n
    scale = np.linalg.norm(fisher)
    errs, probs = [], []
    for ys in itertools.product(range(k), repeat=n):
        errs.append((g2[np.arange(n), ys].mean(0) - fisher) / scale)
        probs.append(np.prod(p[np.arange(n), ys]))
    errs, probs = np.asarray(errs), np.asarray(probs)
    sq = np.sum(errs ** 2, -1)
    mse = probs @ sq
    var = probs @ (sq - mse) ** 2
    sigma = np.einsum("a,ap,aq->pq", probs, errs, errs)
    th = fc.sampled_error_theory(logits, params, x, jnp.float32(scale))
    np.testing.assert_allclose(np.asarray(th["fisher"]), fisher, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(th["mse1"], mse, rtol=1e-4)
    np.testing.assert_allclose(th["var1"], var, rtol=1e-3)
    np.testing.assert_allclose(th["tr_sigma2"], np.trace(sigma @ sigma), rtol=1e-3)
    # and the m-draw average: E||F_m - F||^2 = mse / m, Var = var / m^3 + 2 (m - 1) tr(Sigma^2) / m^3 (m = 2, enumerated)
    pair_sq = np.sum((errs[:, None] + errs[None]) ** 2 / 4, -1)
    w2 = probs[:, None] * probs[None]
    m2 = np.sum(w2 * pair_sq)
    np.testing.assert_allclose(m2, mse / 2, rtol=1e-6)
    np.testing.assert_allclose(np.sum(w2 * (pair_sq - m2) ** 2), var / 8 + 2 * np.trace(sigma @ sigma) / 8, rtol=1e-6)


def test_lambda_zero_is_the_same_run_for_every_estimator(quick):
    """At lambda = 0 the penalty (and so the Fisher) never touches the parameters: identical runs."""
    _, res, _, cfg = quick
    ref = res["sweeps"]["exact"]
    for est in cfg.estimators:
        np.testing.assert_array_equal(res["sweeps"][est]["R"][0], ref["R"][0], err_msg=est)
        np.testing.assert_array_equal(res["sweeps"][est]["val_acc"][0], ref["val_acc"][0], err_msg=est)


def test_config_errors():
    with pytest.raises(ValueError, match="Config.lams must be an increasing tuple starting at 0"):
        fe.Config(lams=(1.0, 10.0))
    with pytest.raises(ValueError, match="Config.estimators must be a tuple of distinct"):
        fe.Config(estimators=("sampled",))
    with pytest.raises(ValueError, match="Config.compare_draws must be"):
        fe.Config(compare_draws=(4, 1))


def test_estimators_are_a_stack_of_library_ewc():
    """ewc_any_fisher is the stack of cl.ewc(fisher=m) (member i trains as strategy i alone:
    tests/test_continual_engine.py)."""
    strat = fe.ewc_any_fisher(fisher_examples=16, chunk_size=8)
    assert cl.member_labels(strat) == cl.FISHER_METHODS
    assert [s for _, s in strat.members] == [cl.ewc(fisher=m, fisher_examples=16, chunk_size=8)
                                             for m in cl.FISHER_METHODS]

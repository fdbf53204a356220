"""fisher_estimators in quick mode: EWC by Fisher estimator, and the estimators against the exact Fisher."""
import numpy as np
import pytest

from lossatlas import continual as cl
from lossatlas_experiments import fisher_estimators as fe

NAME = "fisher_estimators"


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick(NAME)


def test_findings_in_quick_mode(quick):
    path, res, checks, cfg = quick
    failed = {k: c["detail"] for k, c in checks.items() if not c["passed"]}
    assert not failed, failed
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
    np.testing.assert_allclose(c["rel_err"]["exact"], 0, atol=1e-7)
    np.testing.assert_allclose(c["corr"]["exact"], 1, atol=1e-5)
    np.testing.assert_allclose(c["trace_ratio"]["exact"], 1, rtol=1e-6)
    # one draw of the sampled estimator is the first term of the m-draw average
    np.testing.assert_allclose(c["sampled_rel_err"][:, 0], c["rel_err"]["sampled"], rtol=1e-5)
    # averaging independent unbiased draws shrinks the error (mean over seeds, every step of m)
    assert np.all(np.diff(c["sampled_rel_err"].mean(0)) < 0)
    for est in cfg.estimators:
        assert np.all(c["trace_ratio"][est] > 0) and np.all(np.abs(c["corr"][est]) <= 1 + 1e-6)


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


def test_estimator_as_data_equals_library_ewc(digits):
    """ewc_any_fisher's consolidation with method index i is cl.ewc(fisher=FISHER_METHODS[i])'s."""
    import jax
    import jax.numpy as jnp

    st = cl.split(digits, jax.random.PRNGKey(0), scenario="domain", num_tasks=2).subset(num_train=24, num_test=8)
    prog = cl.program(st, cl.naive(), cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=8))
    params = prog.init_params(jax.random.PRNGKey(1))
    strat = fe.ewc_any_fisher(fisher_examples=16, chunk_size=8)
    lib = [cl.ewc(fisher=m, fisher_examples=16, chunk_size=8) for m in cl.FISHER_METHODS]
    data = prog.device_data()

    def ctx(i):
        return prog.context(jnp.int32(1), jnp.int32(0), jax.random.PRNGKey(2), jnp.float32(1.0),
                            {**data, "fisher_method": i})

    state = strat.init(params, ctx(jnp.int32(0)))
    got = jax.jit(jax.vmap(lambda i: strat.consolidate(state, params, ctx(i))))(jnp.arange(len(lib)))
    want = jax.jit(lambda: [s.consolidate(state, params, ctx(jnp.int32(0))) for s in lib])()
    for i, w in enumerate(want):
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(w)):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-10, err_msg=cl.FISHER_METHODS[i])

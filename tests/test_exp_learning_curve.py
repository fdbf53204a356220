"""The learning_curve experiment in quick mode: power-law fits, shrinking improvement, frequent
patterns learned first, and the entropy-rate floor on markov_text (no timed assertions)."""
import numpy as np
import pytest

from lossatlas_experiments import REGISTRY
from lossatlas.checks import assert_passed



@pytest.fixture(scope="module")
def quick_run(run_quick):
    path, res, checks, cfg = run_quick("learning_curve")
    return REGISTRY.get("learning_curve"), path, res, checks, cfg


def test_learning_curve_checks_and_results(quick_run):
    module, path, res, checks, cfg = quick_run
    assert_passed(checks)
    # the power-law-over-exponential comparison is recorded, not a verdict: the exponential wins on MNIST-1D
    # and the sign flips with the seed on markov_text (see learning_curve.checks)
    for label in ("MNIST-1D", "markov_text"):
        rec = checks[f"a power law describes the {label} learning curve better than an exponential"]
        assert rec["gating"] is False and np.isfinite(rec["value"])
        orig = checks[f"original check: power law fits the {label} learning curve"]   # R^2 > 0.9, kept report-only
        assert orig["gating"] is False and orig["value"] == pytest.approx(res[
            "mnist" if label == "MNIST-1D" else "markov"]["fit"]["r2"])
    assert res["mnist"]["loss"].shape[0] == cfg.mnist_seeds
    m = res["markov"]
    steps_mnist = cfg.mnist_epochs * res["mnist"]["steps_per_epoch"]
    assert res["mnist"]["loss"].shape == (cfg.mnist_seeds, steps_mnist)
    assert m["loss"].shape == (cfg.seeds, cfg.lm_steps)
    assert m["steps"][0] == 0 and m["steps"][-1] == cfg.lm_steps and np.all(np.diff(m["steps"]) > 0)
    # the floor: the final test NLL is above the entropy rate (within noise) and the groups partition the tokens
    assert m["test_nll"][:, -1].mean() > m["entropy_rate"] - 0.05
    for kind in ("char", "bigram"):
        g = m["groups"][kind]
        counts = m["char_counts"] if kind == "char" else m["bigram_counts"]
        np.testing.assert_allclose(sum(counts[g["group"] == k].sum() for k in range(3)), m["n_test_tokens"])
        # the groups' NLLs recombine into the overall test NLL at every checkpoint
        w = np.asarray([counts[g["group"] == k].sum() for k in range(3)]) / m["n_test_tokens"]
        np.testing.assert_allclose((g["curves"] * w).sum(-1), m["test_nll"], rtol=1e-5)
    for name in ("learning_curve.png", "learning_curve_markov_patterns.png", "table.md", "checks.json"):
        assert (path / name).exists()


def test_power_law_fit_recovers_known_parameters():
    from lossatlas_experiments import _learning_curve_fits as lc
    t = np.arange(1, 2001, dtype=float)
    rng = np.random.default_rng(0)
    loss = lc.power_law(t, 2.0, 0.6, 0.3) + 0.01 * rng.standard_normal(t.size)
    fit = lc.fit_power_law(loss, skip=0)
    assert abs(fit["b"] - 0.6) < 0.05 and abs(fit["c"] - 0.3) < 0.02 and fit["r2"] > 0.99
    # the AIC comparison picks the generating family: power law here, exponential on an exponential curve
    assert lc.compare_power_exponential(fit)["delta_aic"] > 10
    ex = lc.fit_power_law(lc.exponential(t, 2.0, 300.0, 0.3) + 0.01 * rng.standard_normal(t.size), skip=0)
    assert lc.compare_power_exponential(ex)["delta_aic"] < -10
    imp = lc.improvement(lc.power_law(t, 2.0, 0.6, 0.3), 12)
    assert imp["ratio_last_first"] < 0.1 and np.all(np.diff(imp["window_rate"]) < 0)
    g = lc.mass_terciles(np.array([50.0, 20.0, 10.0, 8.0, 6.0, 4.0, 2.0, 0.0]))
    assert g[0] == 0 and g[-1] == -1 and g[-2] == 2
    assert lc.half_time(np.array([0, 10, 20]), np.array([3.0, 2.0, 1.0])) == 10.0

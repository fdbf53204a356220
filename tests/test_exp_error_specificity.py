"""The error_specificity experiment in quick mode: a class's mistakes correct that class.

Asserts every check (readout concentration, selective-unit correlation, near-diagonal
class-gradient cosines, own-class gain of a corrective step, 1/sqrt(B) minibatch error,
within > between alignment) plus the shapes and invariants of the saved results. No
timed assertions.
"""
import numpy as np
import pytest

from lossatlas.checks import assert_passed


NAME = "error_specificity"


@pytest.fixture(scope="module")
def quick_run(run_quick):
    return run_quick(NAME)


def test_error_specificity_checks_pass(quick_run):
    path, res, checks, cfg = quick_run
    assert len(checks) == 5
    assert_passed(checks)
    for name in ("error_specificity.png", "error_specificity.pdf", "table.md", "checks.json", "metrics.json"):
        assert (path / name).exists(), name


def test_error_specificity_results_well_formed(quick_run):
    path, res, checks, cfg = quick_run
    C, S = int(res["num_classes"]), cfg.seeds
    share = res["share"]  # nan where a seed left a class without mistakes
    assert share.shape == (S, C) and np.array_equal(np.isnan(share), res["counts"] == 0)
    share = share[np.isfinite(share)]
    assert np.all((share >= 0) & (share <= 1))
    # algebra, not an effect: the readout-gradient columns of class c's mistakes sum to zero (softmax) and,
    # with ReLU features, the other columns have non-negative inner products, so column c holds >= 1/2
    assert np.all(share >= 0.5 - 1e-5), share.min()
    cos = res["cosine"]
    assert cos.shape == (S, C, C)
    np.testing.assert_allclose(np.diagonal(cos, axis1=1, axis2=2), 1.0, atol=1e-4)
    np.testing.assert_allclose(cos, np.swapaxes(cos, 1, 2), atol=1e-5)
    # the misclassified counts match the training accuracy
    n_train = 4000  # mnist1d training set
    np.testing.assert_allclose(res["counts"].sum(1) / n_train, 1 - res["train_acc"], atol=2e-3)
    d = res["acc_delta"].mean(0)
    assert d.shape == (C, C)  # the own-class gain itself is the check (>= 9/10 classes), asserted above
    err = res["mb_error"]
    assert err.shape == (S, len(cfg.batch_sizes)) and np.all(np.diff(err, axis=1) < 0)
    assert np.all(res["within"] > res["between"])

"""The error_specificity experiment in quick mode: a class's mistakes correct that class.

Asserts every check (readout concentration, selective-unit correlation, near-diagonal
class-gradient cosines, own-class gain of a corrective step, 1/sqrt(B) minibatch error,
within > between alignment) plus the shapes and invariants of the saved results. No
timed assertions.
"""
import numpy as np
import pytest


NAME = "error_specificity"


@pytest.fixture(scope="module")
def quick_run(run_quick):
    return run_quick(NAME)


def test_error_specificity_checks_pass(quick_run):
    path, res, checks, cfg = quick_run
    assert len(checks) == 6
    assert all(c["passed"] for c in checks.values()), {n: c["detail"] for n, c in checks.items() if not c["passed"]}
    for name in ("error_specificity.png", "error_specificity.pdf", "table.md", "checks.json", "metrics.json"):
        assert (path / name).exists(), name


def test_error_specificity_results_well_formed(quick_run):
    path, res, checks, cfg = quick_run
    C, S = int(res["num_classes"]), cfg.seeds
    assert res["share"].shape == (S, C) and np.all((res["share"] >= 0) & (res["share"] <= 1))
    # a class's mistake gradient has its largest readout column at the class itself
    assert np.mean(res["share"] > 0.5) > 0.9
    cos = res["cosine"]
    assert cos.shape == (S, C, C)
    np.testing.assert_allclose(np.diagonal(cos, axis1=1, axis2=2), 1.0, atol=1e-4)
    np.testing.assert_allclose(cos, np.swapaxes(cos, 1, 2), atol=1e-5)
    # the misclassified counts match the training accuracy
    n_train = 4000  # mnist1d training set
    np.testing.assert_allclose(res["counts"].sum(1) / n_train, 1 - res["train_acc"], atol=2e-3)
    # the corrective step: every own-class change is a gain and the largest entry of its row
    d = res["acc_delta"].mean(0)
    assert d.shape == (C, C) and np.all(np.diag(d) > 0)
    assert np.mean(np.argmax(d, axis=1) == np.arange(C)) >= 0.8
    err = res["mb_error"]
    assert err.shape == (S, len(cfg.batch_sizes)) and np.all(np.diff(err, axis=1) < 0)
    assert np.all(res["within"] > res["between"])

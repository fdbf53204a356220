"""The loss-landscape experiments in quick mode (one run each, shared by its tests):
linear interpolation init -> solution (Goodfellow et al. 2015), filter-normalised planes of
plain vs residual nets with the training trajectory (Li et al. 2018), and mode connectivity
(Garipov et al. 2018)."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def interpolation(run_quick):
    return run_quick("landscape_interpolation")


def test_landscape_interpolation_quick(interpolation):
    path, res, checks, cfg = interpolation
    assert all(c["passed"] for c in checks.values()), checks
    a = res["alphas"]
    assert a.shape == (cfg.num_alphas,)
    np.testing.assert_allclose([a[0], a[-1]], cfg.extent, atol=1e-6)
    i0, i1 = int(np.argmin(np.abs(a))), int(np.argmin(np.abs(a - 1)))
    np.testing.assert_allclose([a[i0], a[i1]], [0.0, 1.0], atol=1e-6)
    for name in cfg.models:
        m = res["models"][name]
        assert m["train_loss"].shape == m["test_acc"].shape == (cfg.seeds, cfg.num_alphas)
        # the line's endpoints are the initial and trained networks, as the training engine evaluates them
        np.testing.assert_allclose(m["train_loss"][:, i0], m["init_train_loss"], rtol=1e-5)
        np.testing.assert_allclose(m["train_acc"][:, i0], m["init_train_acc"], atol=1e-6)
        np.testing.assert_allclose(m["train_loss"][:, i1], m["final_train_loss"], rtol=1e-4)
        np.testing.assert_allclose(m["test_loss"][:, i1], m["final_test_loss"], rtol=1e-4)
        np.testing.assert_allclose(m["test_acc"][:, i1], m["final_test_acc"], atol=1e-6)
        # seeds are different runs (vmapped, not copies), and the init is at chance
        assert not np.allclose(m["train_loss"][0], m["train_loss"][1])
        np.testing.assert_allclose(m["init_train_acc"], 0.1, atol=0.06)
    assert (path / "landscape_interpolation.png").exists()

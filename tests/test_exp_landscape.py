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


@pytest.fixture(scope="module")
def connectivity(run_quick):
    return run_quick("mode_connectivity")


def test_mode_connectivity_quick(connectivity):
    from lossatlas_experiments.mode_connectivity import barriers
    path, res, checks, cfg = connectivity
    assert all(c["passed"] for c in checks.values()), checks
    e = res["curves"][cfg.curves[0]]
    P, T = cfg.pairs, cfg.num_points
    assert e["curve"]["train_loss"].shape == e["line"]["test_acc"].shape == (P, T)
    # connect's own evaluation on the training set equals the experiment's separate one
    np.testing.assert_allclose(e["connect_curve_losses"], e["curve"]["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(e["connect_line_losses"], e["line"]["train_loss"], rtol=1e-4)
    # path endpoints are the trained networks (seeds 2i, 2i+1) as the training engine evaluated them
    ends = res["final_train_loss"].reshape(P, 2)
    np.testing.assert_allclose(e["line"]["train_loss"][:, [0, -1]], ends, rtol=1e-4)
    np.testing.assert_allclose(e["curve"]["test_loss"][:, [0, -1]], res["final_test_loss"].reshape(P, 2), rtol=1e-4)
    # barrier conventions: above the mean of the endpoints (experiment) and above the higher one (library)
    line = e["line"]["train_loss"]
    np.testing.assert_allclose(barriers(line), line.max(1) - line[:, [0, -1]].mean(1), rtol=1e-6)
    np.testing.assert_allclose(e["connect_line_barrier"], line.max(1) - line[:, [0, -1]].max(1), rtol=1e-4, atol=1e-6)
    assert np.all(barriers(line) >= e["connect_line_barrier"])
    # the Bezier curve lies in the plane of (w_a, bend, w_b); the plane's grid hits w_a and w_b exactly
    pl = e["plane"]
    assert float(pl["max_off_plane"]) < 1e-3 * float(pl["b_xy"][0])
    i0, i1 = int(np.argmin(np.abs(pl["xs"]))), int(np.argmin(np.abs(pl["xs"] - pl["b_xy"][0])))
    j0 = int(np.argmin(np.abs(pl["ys"])))
    np.testing.assert_allclose([pl["xs"][i0], pl["xs"][i1], pl["ys"][j0]], [0.0, pl["b_xy"][0], 0.0],
                               atol=1e-4 * pl["b_xy"][0])
    np.testing.assert_allclose([pl["loss"][i0, j0], pl["loss"][i1, j0]], line[0, [0, -1]], rtol=1e-4)
    np.testing.assert_allclose(pl["curve_xy"][[0, -1]], [[0.0, 0.0], [pl["b_xy"][0], 0.0]], atol=1e-3 * pl["b_xy"][0])
    assert (path / "mode_connectivity.png").exists()

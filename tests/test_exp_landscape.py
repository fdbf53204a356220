"""The loss-landscape experiments in quick mode (one run each, shared by its tests):
linear interpolation init -> solution (Goodfellow et al. 2015), filter-normalised planes of
plain vs residual nets with the training trajectory (Li et al. 2018), and mode connectivity
(Garipov et al. 2018)."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def interpolation(run_quick):
    return run_quick("landscape_interpolation")


def test_landscape_interpolation_quick(interpolation, mnist1d):
    from lossatlas.checks import assert_passed
    path, res, checks, cfg = interpolation
    assert_passed(checks)
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
        np.testing.assert_allclose(m["train_acc"][:, i0], m["init_train_acc"], atol=1.0 / len(mnist1d.y_train) + 1e-6)
        np.testing.assert_allclose(m["train_loss"][:, i1], m["final_train_loss"], rtol=1e-4)
        np.testing.assert_allclose(m["test_loss"][:, i1], m["final_test_loss"], rtol=1e-4)
        # accuracy from two differently compiled programs: a near-tie logit may flip one example
        np.testing.assert_allclose(m["test_acc"][:, i1], m["final_test_acc"], atol=1.0 / len(mnist1d.y_test) + 1e-6)
        # seeds are different runs (vmapped, not copies), and the init is at chance
        assert not np.allclose(m["train_loss"][0], m["train_loss"][1])
        np.testing.assert_allclose(m["init_train_acc"], 0.1, atol=0.06)
    assert (path / "landscape_interpolation.png").exists()


P_MIN = 3   # pairs of minima in the quick run: the checks' t-bounds are over >= 3 independent pairs


@pytest.fixture(scope="module")
def connectivity(run_quick):
    return run_quick("mode_connectivity")


def test_mode_connectivity_quick(connectivity):
    from lossatlas.checks import assert_passed
    from lossatlas_experiments.mode_connectivity import barriers
    path, res, checks, cfg = connectivity
    assert_passed(checks)
    assert P_MIN <= cfg.pairs
    for name in ("original check: every pair's straight line has a barrier",
                 f"original check: every pair's {cfg.curves[0]} curve joins the minima with (nearly) no barrier",
                 f"original check: the {cfg.curves[0]} curve has (nearly) no test-loss barrier"):
        assert checks[name]["gating"] is False
    e = res["curves"][cfg.curves[0]]
    P, T = cfg.pairs, cfg.num_points
    assert e["curve"]["train_loss"].shape == e["line"]["test_acc"].shape == (P, T)
    # every curve keeps its endpoints (by construction: phi(0) = w_a, phi(1) = w_b)
    for curve in cfg.curves:
        ev = res["curves"][curve]
        for q in ("train_loss", "test_loss"):
            np.testing.assert_allclose(ev["curve"][q][:, [0, -1]], ev["line"][q][:, [0, -1]], rtol=1e-5)
        np.testing.assert_allclose(ev["curve"]["test_acc"][:, [0, -1]], ev["line"]["test_acc"][:, [0, -1]],
                                   atol=1.0 / int(res["num_test"]) + 1e-6)   # two programs: one near-tie may flip
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



def test_mean_bound_is_the_one_sided_student_t_bound():
    """The checks' bound over pairs / seeds: mean -+ t_{level, n-1} * sd / sqrt(n)."""
    from scipy import stats
    from lossatlas_experiments._landscape import mean_bound
    x = np.array([1.0, 2.0, 3.0])                       # mean 2, sd 1, n 3: t_{0.95, 2} = 2.919986
    np.testing.assert_allclose(mean_bound(x, "lower"), 2 - 2.919986 / np.sqrt(3), rtol=1e-6)
    np.testing.assert_allclose(mean_bound(x, "upper", 0.975), stats.t.interval(0.95, 2, 2, 1 / np.sqrt(3))[1], rtol=1e-9)
    assert mean_bound([5.0, 5.0, 5.0], "upper") == 5.0   # no spread: the bound is the mean
    with pytest.raises(ValueError, match="samples"):
        mean_bound([1.0], "lower")

def test_layerwise_filter_normalisation_of_stacked_layers():
    """Li et al.'s normalisation per layer and filter, also for nn.scan-stacked kernels
    [layers, in, out]; biases and LayerNorm vectors (1-D per layer) are zeroed."""
    import jax
    from lossatlas.models import get_model
    from lossatlas_experiments.landscape_filter_norm import layerwise_direction
    model = get_model("mlp", widths=(5, 5, 5, 5), num_outputs=3, norm="layer", scan_layers=True)
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, 4), np.float32))["params"]
    rng = np.random.default_rng(0)
    # filters (and layers) of very different norms, so normalising over the wrong axes cannot pass
    params = jax.tree_util.tree_map(lambda p: np.asarray(p) * np.asarray(1 + rng.uniform(0, 9, p.shape[-1:]), np.float32), params)
    params["layers"]["dense"]["kernel"] = params["layers"]["dense"]["kernel"] * np.asarray([1.0, 10.0, 100.0])[:, None, None]
    d = jax.jit(layerwise_direction)(jax.random.PRNGKey(1), params)
    k, dk = np.asarray(params["layers"]["dense"]["kernel"]), np.asarray(d["layers"]["dense"]["kernel"])
    assert k.shape == (3, 5, 5)
    np.testing.assert_allclose(np.linalg.norm(dk, axis=1), np.linalg.norm(k, axis=1), rtol=1e-5)   # [layer, filter]
    for name in ("dense_0", "readout"):
        np.testing.assert_allclose(np.linalg.norm(d[name]["kernel"], axis=0),
                                   np.linalg.norm(params[name]["kernel"], axis=0), rtol=1e-5)
    for leaf in (d["layers"]["norm"]["scale"], d["layers"]["dense"]["bias"], d["norm_0"]["scale"], d["readout"]["bias"]):
        assert np.all(np.asarray(leaf) == 0)


def test_surface_curvature_and_minima_on_known_surfaces():
    from lossatlas_experiments.landscape_filter_norm import local_minima, surface_curvature
    xs = np.linspace(-1, 1, 21)
    X, Y = np.meshgrid(xs, xs, indexing="ij")
    # quadratic: the finite-difference Hessian is exact, [[2a, c], [c, 2b]]
    a, b, c = 1.5, -0.5, 0.8
    lmin, lmax = surface_curvature(a * X ** 2 + b * Y ** 2 + c * X * Y, xs[1] - xs[0])
    ev = np.linalg.eigvalsh([[2 * a, c], [c, 2 * b]])
    np.testing.assert_allclose(lmin, ev[0], rtol=1e-6)
    np.testing.assert_allclose(lmax, ev[1], rtol=1e-6)
    assert local_minima(X ** 2 + Y ** 2) == 1
    two_wells = np.minimum((X - 0.5) ** 2 + Y ** 2, (X + 0.5) ** 2 + Y ** 2 + 0.1)      # minima at (+-0.5, 0)
    assert local_minima(two_wells) == 2
    assert local_minima(np.zeros_like(X)) == 0                                        # a plateau has no strict minimum

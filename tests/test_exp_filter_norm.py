"""landscape_filter_norm in quick mode (Li et al. 2018), in its own file so pytest-xdist can run it
beside the other landscape experiments (files are the unit of distribution)."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def filter_norm(run_quick):
    return run_quick("landscape_filter_norm")


def test_landscape_filter_norm_quick(filter_norm):
    from lossatlas.checks import assert_passed
    path, res, checks, cfg = filter_norm
    assert_passed(checks)
    assert cfg.seeds >= 3      # the checks' bounds are over seeds
    for name in ("original check: contrast within r=0.5 of the minimiser",
                 "original check: the contrast with a bootstrap over surfaces"):
        assert not checks[name].get("gating", True)
    c = cfg.grid // 2
    assert res["xs"][c] == 0.0
    for net in ("plain", "residual"):
        r = res["nets"][net]
        assert r["surface"].shape == (cfg.seeds, cfg.direction_pairs, cfg.grid, cfg.grid)
        # the plane's centre is the trained network: the loss of the trajectory's last checkpoint
        np.testing.assert_allclose(r["surface"][:, :, c, c], np.broadcast_to(r["path_loss"][:, -1:], (cfg.seeds, cfg.direction_pairs)), rtol=1e-5)
        # different direction pairs are different planes through the same centre
        assert not np.allclose(r["surface"][:, 0], r["surface"][:, 1])
        assert r["path_loss"].shape == (cfg.seeds, cfg.checkpoints + 1)
        assert np.all(r["path_loss"][:, 0] > r["path_loss"][:, -1])                 # training went downhill
        np.testing.assert_allclose(r["traj_coords"][:, -1], 0.0, atol=1e-5)         # PCA plane centred on the end
        ev = r["explained"]
        assert np.all(ev >= 0) and np.all(ev.sum(-1) <= 1 + 1e-5) and np.all(ev[:, 0] >= ev[:, 1])
        assert r["traj_surface"].shape == (cfg.seeds, cfg.trajectory_grid, cfg.trajectory_grid)
    for name in ("landscape_filter_norm.png", "landscape_filter_norm_surface.png"):
        assert (path / name).exists()


def test_bounds_resample_seeds_not_planes():
    """Planes of one seed share its network: the bound's unit is the seed. With equal seed means and
    very different planes, the seed bounds sit on the mean while a bootstrap over planes spreads."""
    from lossatlas_experiments.landscape_filter_norm import _bootstrap_mean, _bound
    x = np.array([[0.2, 0.6], [0.6, 0.2], [0.1, 0.7]])          # every seed's mean is 0.4
    b = _bound(x, "lower", 2000)
    np.testing.assert_allclose([b["t"], b["seed_boot"], b["bound"]], 0.4, atol=1e-12)
    assert b["surface_boot"] < 0.3
    # a cluster bootstrap draws whole seeds: each resample's mean is a mean of seed means
    boot = _bootstrap_mean(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), 500)
    assert set(np.round(boot * 3, 9)) <= set(range(7))
    # the gating bound is the more conservative of t and the seed bootstrap
    y = np.array([[0.5, 0.5], [0.6, 0.6], [0.9, 0.9]])
    lo, hi = _bound(y, "lower", 2000), _bound(y, "upper", 2000)
    assert lo["bound"] == min(lo["t"], lo["seed_boot"]) and hi["bound"] == max(hi["t"], hi["seed_boot"])

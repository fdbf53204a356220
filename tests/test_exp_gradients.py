"""Issue-4 experiments in quick mode: the paper effects must be present (Glorot & Bengio 2010; He et al. 2016)."""
import numpy as np
import pytest

from lossatlas.checks import assert_passed



@pytest.fixture(scope="module")
def vanishing(run_quick):
    path, res, checks, _ = run_quick("vanishing_gradients")
    return path, res, list(checks.values())


def test_vanishing_gradients_effects(vanishing):
    path, res, checks = vanishing
    assert all(c["passed"] for c in checks), checks
    # Glorot & Bengio: sigmoid/tanh with naive init lose many orders of magnitude; Glorot init for tanh and He for
    # ReLU keep the first layer within an order of magnitude of the last.
    ratio = {k: np.exp(np.mean(np.log(g[:, 0]) - np.log(g[:, -1]))) for k, g in res["flow"].items()}
    assert ratio["sigmoid, naive"] < 1e-10 and ratio["tanh, naive"] < 1e-10
    assert 0.1 < ratio["tanh, glorot"] < 10 and 0.1 < ratio["relu, he"] < 10
    # histograms: naive-init tanh activations collapse towards 0 with depth, Glorot's stay spread
    naive, glorot = res["hist"]["tanh, naive"]["activations"], res["hist"]["tanh, glorot"]["activations"]
    assert naive[-1].std() < 0.05 * naive[0].std() and glorot[-1].std() > 0.3 * glorot[0].std()
    for name in ("vanishing_gradients.png", "glorot_bengio_histograms.pdf", "table.md"):
        assert (path / name).exists()


def test_exploding_gradients_effects(run_quick):
    """Pascanu et al. 2013: radius > 1 explodes with length; clipping prevents divergence."""
    path, res, checks, _ = run_quick("exploding_gradients")
    assert all(c["passed"] for c in checks.values()), checks
    g = np.exp(np.log(res["rnn_grad"]).mean(1))  # [radius, length]
    assert np.all(np.diff(np.log(g[-1])) > 0)  # radius 2: strictly growing with length
    tr = res["train"]
    # a diverged member is frozen: NaN after its divergence step, finite before
    for i, s in zip(*np.nonzero(tr["diverged_at"] >= 0)):
        d = tr["diverged_at"][i, s]
        assert np.all(np.isnan(tr["loss"][i, s, d:])) and np.all(np.isfinite(tr["loss"][i, s, :d]))
    assert (path / "exploding_gradients.png").exists()


def test_initialisation_scale_order_to_chaos(run_quick):
    """Schoenholz et al. 2017: deep tanh nets train only near sigma_w^2 ~ 1; the band narrows with depth."""
    path, res, checks, cfg = run_quick("initialisation_scale")
    assert_passed(checks)
    acc = res["train_acc"].mean(-1)  # [depth, sigma]
    assert acc.shape == (len(res["depths"]), len(res["sigma_w2"]))
    assert res["train_acc"].shape[-1] == cfg.seeds >= 2


def test_mean_field_depth_scale():
    """xi_c from the mean-field maps: -1/log sigma_w^2 in the ordered phase, diverging at sigma_w^2 = 1
    from both sides (Schoenholz et al. 2017, Fig. 1), finite and decreasing deep in the chaotic phase."""
    from lossatlas_experiments import initialisation_scale as exp
    np.testing.assert_allclose(exp.depth_scale(0.5), -1 / np.log(0.5))
    assert exp.depth_scale(1.0) == np.inf
    chaotic = [exp.depth_scale(s) for s in (1.1, 1.5, 2.0, 4.0)]
    assert np.all(np.diff(chaotic) < 0) and chaotic[0] > 100 and 1 < chaotic[-1] < 50

"""Issue-4 experiments in quick mode: the paper effects must be present (Glorot & Bengio 2010; He et al. 2016)."""
import numpy as np
import pytest




@pytest.fixture(scope="module")
def vanishing(run_quick):
    path, res, checks, _ = run_quick("vanishing_gradients")
    return path, res, list(checks.values())


def test_vanishing_gradients_effects(vanishing):
    path, res, checks = vanishing
    assert all(c["passed"] for c in checks), checks
    # He et al.'s depth result holds for SGD-momentum as well as Adam (the residual net ends in BN + ReLU)
    names = {c["name"] for c in checks}
    assert "depth 50: plain fails, residual trains (SGD-momentum)" in names
    assert "depth 50: residual+BN trains under SGD-momentum as under Adam" in names
    sgd = res["train"]["relu, he, residual+BN, SGD-momentum"]["50"]["curve"]  # [seed, epoch]
    assert np.all(sgd[:, -1] < sgd[:, 0])  # every seed went downhill
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

"""Issue-5 experiments in quick mode: Hessian spectrum (Ghorbani et al. 2019), minima similarity
(Choromanska et al. 2015), sharpness vs batch size (Keskar et al. 2017).

One run_quick per experiment (module-scoped fixtures); each test checks the paper's effect
and the mathematics of the results.
"""
import numpy as np
import pytest

from lossatlas.checks import assert_passed


@pytest.fixture(scope="module")
def spectrum(run_quick):
    return run_quick("hessian_spectrum")


@pytest.fixture(scope="module")
def minima(run_quick):
    return run_quick("minima_similarity")


def test_hessian_spectrum_outliers_and_batch_norm(spectrum):
    path, res, checks, cfg = spectrum
    assert_passed(checks)
    assert (path / "hessian_spectrum.png").exists() and (path / "table.md").exists()


def test_hessian_spectrum_slq_mathematics(spectrum):
    _, res, _, cfg = spectrum
    for norm in ("none", "batch"):
        for phase in ("init", "trained"):
            ph = res[norm][phase]
            nodes, w, top = ph["nodes"], ph["weights"], ph["top"]
            assert nodes.shape == w.shape == (cfg.seeds, cfg.num_probes, cfg.num_steps)
            # Gauss quadrature weights are squared first components of an orthogonal matrix: each probe's sum to 1
            np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-4)
            assert np.all(w >= 0)
            # the broadened density is a probability density (the grid covers +-5 sigma beyond every node)
            mass = np.trapezoid(ph["density"], ph["grid"], axis=-1)
            np.testing.assert_allclose(mass, 1.0, atol=2e-3)
            # broadening preserves the first moment: int t phi(t) dt = mean_p sum_j w theta = tr(H)/n estimate
            first = np.trapezoid(ph["grid"] * ph["density"], ph["grid"], axis=-1)
            np.testing.assert_allclose(first, (w * nodes).sum(-1).mean(-1), atol=2e-3 * np.abs(top[:, 0]).max())
            # Ritz values interlace: no SLQ node above lambda_max; 80 Lanczos steps reach the top of the spectrum
            assert np.all(np.diff(top, axis=-1) <= 1e-6)
            assert np.all(nodes.max((1, 2)) <= top[:, 0] * (1 + 1e-3) + 1e-6)
            assert np.all(nodes.max((1, 2)) >= 0.97 * top[:, 0])


def test_minima_similarity_spread_shrinks_with_width(minima):
    path, res, checks, cfg = minima
    assert_passed(checks)
    x = res["test_loss"]
    assert x.shape == (len(cfg.widths), cfg.seeds) and np.all(np.isfinite(x))
    assert np.all(x.std(1) > 0)                     # seeds are really different initialisations
    assert not checks["original check: the spread shrinks with width (ratio < 0.5 and Spearman <= -0.7)"]["gating"]
    mean = checks["the mean final test loss falls with width"]        # a ratio with a bootstrap interval over seeds
    assert mean["value"] == pytest.approx(x[-1].mean() / x[0].mean(), rel=1e-5) and "bootstrap" in mean["detail"]
    assert (path / "minima_similarity.png").exists()

"""exploding_gradients in quick mode (Pascanu et al. 2013). Its own file so pytest-xdist can run it
beside vanishing_gradients (files are the unit of distribution)."""
import json
import os

import numpy as np

from lossatlas.checks import assert_passed


def test_exploding_gradients_effects(run_quick):
    """Pascanu et al. 2013: radius > 1 explodes with length; clipping prevents divergence."""
    path, res, checks, _ = run_quick("exploding_gradients")
    assert_passed(checks)
    g = np.exp(np.log(res["rnn_grad"]).mean(1))  # [radius, length]
    assert np.all(np.diff(np.log(g[-1])) > 0)  # radius 2: strictly growing with length
    tr = res["train"]
    # a diverged member is frozen: NaN after its divergence step, finite before
    for i, s in zip(*np.nonzero(tr["diverged_at"] >= 0)):
        d = tr["diverged_at"][i, s]
        assert np.all(np.isnan(tr["loss"][i, s, d:])) and np.all(np.isfinite(tr["loss"][i, s, :d]))
    assert (path / "exploding_gradients.png").exists()
    # the run folder records the compile settings it ran under: the suite's, i.e. the CLI's quick ones
    env = json.loads((path / "environment.json").read_text())
    assert env["xla_flags"] == os.environ["XLA_FLAGS"] and env["matmul_precision"] == "highest"
    assert env["versions"]["mnist1d"] not in (None, "unknown")


def test_exploding_gradients_theory_and_baseline_records(run_quick):
    """The radius < 1 check is the theory's (per-step rate <= ||W_h||_2 = radius), the old x2 check and
    the replaced clipping checks stay as report-only 'original check' records, and clipped training is
    compared with predicting the mean (report-only: it does not get below it in this budget)."""
    _, res, checks, cfg = run_quick("exploding_gradients")
    by_name = checks  # {name: record}
    vanish = by_name["RNN gradient vanishes back in time for radius < 1"]
    assert vanish.get("gating", True) and vanish["passed"]
    # W_h = radius * orthogonal: spectral norm == spectral radius == radius
    np.testing.assert_allclose(res["rnn_spectral_norm"].max(-1), cfg.radii, rtol=1e-4)
    np.testing.assert_allclose(res["rnn_spectral_radius"].max(-1), cfg.radii, rtol=1e-4)
    originals = [c for c in checks.values() if "original check" in c.get("claim", "")]
    assert {c["name"] for c in originals} >= {"original check: RNN gradient does not grow for radius < 1",
                                              "original check: with clipping none blow up"}
    assert all(c["gating"] is False for c in originals)
    mean_pred = by_name["with clipping the RNN beats predicting the mean"]
    assert mean_pred["gating"] is False and "NOT reproduced" in mean_pred["claim"]
    assert abs(float(res["baseline_mse_train"]) - 1 / 6) < 0.02


def test_rate_fit_and_median_bound():
    """The per-step rate fit recovers an exact geometric profile; the median's upper bound is the
    order statistic the sign test gives (n = 16, 95%: the 12th smallest)."""
    from lossatlas_experiments import exploding_gradients as exp
    T = 60
    prof = np.stack([3e-3 * r ** np.arange(T)[::-1] for r in (0.5, 0.8, 1.2)])[:, None]  # [R, 1, T]
    np.testing.assert_allclose(exp._rates(prof, 40)[:, 0], [0.5, 0.8, 1.2], rtol=1e-9)
    assert np.isnan(exp._rates(np.zeros((1, 1, T)), 40)[0, 0])  # underflowed: NaN, never a pass
    v = np.arange(16, dtype=float)[::-1]
    assert exp._median_upper(v, 0.95) == 11.0
    assert exp._median_upper(np.r_[v[:15], np.nan], 0.95) == 12.0  # NaN (diverged) counts as +inf

"""The learning-loop experiments in quick mode: what a loss charges, and backprop vs finite differences.

``backprop_vs_finite_differences``: the project rule is "no timed assertions in tests", so
this file asserts the correctness numbers (float64 gradient check < 1e-6 per model, forward
mode == reverse mode) and the STRUCTURE of the timing results (every time finite and
positive, one per size, the right parameter counts, extrapolation flagged above
``exact_up_to``), but never the timed checks (reverse/forward <= 5, FD slope ~ 1). Those
are report-only check records (``gating: False``) in the run's ``checks.json``.
"""
import math

import numpy as np



def test_loss_functions_values_and_gradients(run_quick):
    path, res, checks, cfg = run_quick("loss_functions")
    assert all(c["passed"] for c in checks.values()), checks
    # the quoted asymmetry: a wrong "99% spam" costs 4.61 nats, a wrong "51% spam" 0.71
    np.testing.assert_allclose(res["spam_cost_wrong"], [-math.log(0.01), -math.log(0.49)], rtol=1e-5)
    assert res["spam_cost_wrong"][0] / res["spam_cost_wrong"][1] > 6
    np.testing.assert_allclose(res["mse_points"][1] / res["mse_points"][0], 100.0, rtol=1e-6)
    np.testing.assert_allclose(res["token_nll"], [-math.log(0.85), -math.log(0.01)], rtol=1e-5)
    # CE's gradient magnitude rises towards 1 with the wrong confidence; MSE-on-sigmoid's falls towards 0
    g = res["grad"]
    tail = res["wrong_conf"] > 0.9
    assert np.all(np.diff(np.abs(g["bce_sigmoid"][tail])) >= 0) and np.all(np.diff(np.abs(g["mse_sigmoid"][tail])) <= 0)
    assert res["train"]["ce"][-1] > 0.9 and res["train"]["mse"][-1] < 0.1
    for name in ("loss_functions.png", "loss_functions.pdf", "table.md", "checks.json"):
        assert (path / name).exists()


def test_backprop_vs_finite_differences_correct_and_timings_well_formed(run_quick):
    from lossatlas.checks import assert_passed, is_gating
    # 4, 16, 32: every coordinate timed (P = 138, 714, 1,930: the slope has 3 real points);
    # 64 -> P = 5,898 > exact_up_to: sampled and extrapolated (and left out of the slope)
    # (conftest.TEST_OVERRIDES: widths (4, 16, 32, 64), repeats 1, exact_up_to 2000)
    path, res, checks, cfg = run_quick("backprop_vs_finite_differences")
    widths = cfg.widths
    assert_passed(checks)
    for name in cfg.check_models:  # correctness: asserted
        assert res["check_max_error"][name] < 1e-6, (name, res["check_max_error"][name])
        assert checks[f"jax.grad matches finite differences: {name}"]["passed"]
    assert checks["forward mode agrees with reverse mode"]["passed"]
    # timings: structure only (no timed assertions)
    p = res["num_params"]
    expected = [cfg.in_dim * w + w + w * w + w + w * cfg.num_outputs + cfg.num_outputs for w in widths]
    np.testing.assert_array_equal(p, expected)
    np.testing.assert_array_equal(res["extrapolated"], p > cfg.exact_up_to)
    np.testing.assert_array_equal(res["coords_timed"], np.where(p > cfg.exact_up_to, cfg.sample_coords, p))
    for k in ("forward", "reverse", "jacfwd", "fd"):
        t = res["time"][k]
        assert t.shape == (len(widths),) and np.all(np.isfinite(t)) and np.all(t > 0), (k, t)
    timed = {"reverse mode costs a few forward passes at every size", "finite-difference cost grows linearly with P"}
    assert timed <= set(checks) and all(np.isfinite(checks[n]["value"]) for n in timed)  # reported, not asserted
    assert not any(is_gating(checks[n]) for n in timed)                                # wall-clock decides nothing
    assert "3 sizes timed on every coordinate" in checks["finite-difference cost grows linearly with P"]["detail"]
    for name in ("backprop_vs_finite_differences.png", "backprop_vs_finite_differences.pdf", "table.md", "checks.json"):
        assert (path / name).exists()

"""The batch_noise experiment in quick mode: noise scale, critical batch size, escaping a shallow minimum."""
import numpy as np


NAME = "batch_noise"


def test_batch_noise_quick(run_quick):
    path, res, checks, cfg = run_quick(NAME)
    assert all(c["passed"] for c in checks.values()), checks
    nz = res["noise"]
    assert np.all(np.isfinite(nz["b_simple"])) and np.all(nz["b_simple"] > 0)
    np.testing.assert_allclose(nz["snr"], 1 / nz["b_simple"], rtol=1e-5)  # SNR at B=1 is 1/B_simple
    assert res["steps"].shape == (len(cfg.batch_sizes), len(cfg.lrs), cfg.seeds)
    esc = res["escape"]
    assert esc["escaped"][-1] == 0 and esc["escaped"][0] > 0.5
    # full-batch GD is deterministic: every run sits at the narrow minimum
    np.testing.assert_allclose(esc["final_x"][-1], esc["x0"], atol=1e-4)
    for name in ("batch_noise.png", "batch_noise.pdf", "table.md", "checks.json"):
        assert (path / name).exists()

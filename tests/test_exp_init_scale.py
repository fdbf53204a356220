"""initialisation_scale in quick mode (Schoenholz et al. 2017). Its own file so pytest-xdist can run it
beside the other gradient experiments (files are the unit of distribution)."""
import numpy as np

from lossatlas.checks import assert_passed


def test_initialisation_scale_order_to_chaos(run_quick):
    """Schoenholz et al. 2017: deep tanh nets train only near sigma_w^2 ~ 1; the band narrows with depth."""
    path, res, checks, cfg = run_quick("initialisation_scale")
    assert_passed(checks)
    acc = res["train_acc"].mean(-1)  # [depth, sigma]
    assert acc.shape == (len(res["depths"]), len(res["sigma_w2"]))
    assert res["train_acc"].shape[-1] == cfg.seeds >= 3  # the checks' t-intervals are over >= 3 seeds
    by_name = checks  # {name: record}
    # the band decisions come from the mean-field depth scale, with grid points on both sides
    inside, outside, _ = exp_module().theory_bands(cfg, int(cfg.depths[-1]))
    assert inside.size >= 1 and outside.size >= 1
    assert "95% CI" in by_name["inside the mean-field trainable band the deep net trains"]["detail"]
    originals = [c for c in checks.values() if "original check" in c.get("claim", "")]
    assert len(originals) == 3 and all(c["gating"] is False for c in originals)


def exp_module():
    from lossatlas_experiments import initialisation_scale
    return initialisation_scale


def test_mean_field_depth_scale():
    """xi_c from the mean-field maps: -1/log sigma_w^2 in the ordered phase, diverging at sigma_w^2 = 1
    from both sides (Schoenholz et al. 2017, Fig. 1), finite and decreasing deep in the chaotic phase."""
    from lossatlas_experiments import initialisation_scale as exp
    np.testing.assert_allclose(exp.depth_scale(0.5), -1 / np.log(0.5))
    assert exp.depth_scale(1.0) == np.inf
    chaotic = [exp.depth_scale(s) for s in (1.1, 1.5, 2.0, 4.0)]
    assert np.all(np.diff(chaotic) < 0) and chaotic[0] > 100 and 1 < chaotic[-1] < 50

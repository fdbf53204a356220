"""forgetting_ewc in quick mode: Kirkpatrick et al. (2017) Fig. 2A's three findings on permuted digits."""
import numpy as np
import pytest

NAME = "forgetting_ewc"


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick(NAME)


def test_forgetting_ewc_findings(quick):
    from lossatlas.checks import assert_passed
    path, res, checks, cfg = quick
    assert_passed(checks)
    t, s, d = cfg.num_tasks, cfg.seeds, cfg.draws
    assert s >= 3 and d >= 2                        # the checks are means over permutation draws x seeds
    e = res["ewc"]["R"]
    assert e.shape == (d, len(cfg.ewc_lams), s, t, t) and res["l2"]["R"].shape == (d, len(cfg.l2_lams), s, t, t)
    perms = res["stream"]["permutations"]           # [D, T, features]: independent draws, task A unpermuted
    assert perms.shape[:2] == (d, t) and not np.array_equal(perms[0, 1], perms[1, 1])
    # lambda is chosen on validation accuracies (held-out training examples), not on the test matrix R
    assert res["ewc"]["val_R"].shape == e.shape and not np.array_equal(res["ewc"]["val_R"], e)
    assert 0.5 < res["ewc"]["val_R"][:, 0, :, 0, 0].mean() <= 1
    # the curves end each task at the accuracy-matrix row
    blocks = res["steps_per_task"] // cfg.eval_every
    np.testing.assert_array_equal(res["ewc"]["curves"][:, :, :, blocks - 1::blocks], e)
    # fine-tuning (lambda = 0) learns each task in turn: near-chance on A before training it, well above after
    ft = e[:, 0].mean((0, 1))
    assert res["ewc"]["init_acc"][:, 0].mean() < 0.25 and ft[0, 0] > 0.8
    for name in ("forgetting_ewc.png", "table.md", "checks.json"):
        assert (path / name).exists()


def test_forgetting_ewc_config_errors():
    from lossatlas_experiments.forgetting_ewc import Config
    with pytest.raises(ValueError, match="ewc_lams must start with 0"):
        Config(ewc_lams=(100.0,))
    with pytest.raises(ValueError, match="dataset must be one of"):
        Config(dataset="cifar10")

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

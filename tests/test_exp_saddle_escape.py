"""saddle_escape (Dauphin et al. 2014; Jin et al. 2017) in quick mode, plus the mathematics its checks
rest on: GD's escape-step formula and the heavy-ball / Nesterov closed forms against direct
simulation, and one-line ValueErrors for bad config values."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas import saddles
from lossatlas.checks import assert_passed
from lossatlas_experiments import saddle_escape as se


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick("saddle_escape")


def test_quick_run_holds_the_theory(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    assert (path / "saddle_escape.png").exists() and (path / "table.md").exists()
    n = cfg.starts + cfg.manifold_starts
    for which, dim in (("2d", 2), ("nd", cfg.nd_dim)):
        sub = res[which]
        assert sub["x0"].shape == (n, dim) and sub["y0"].shape == (n,)
        assert np.all(sub["y0"][cfg.starts:] == 0) and np.all(np.abs(sub["y0"][:cfg.starts]) > 0)
        assert set(sub["escape"]) == set(se.METHODS)
    assert res["2d"]["trajectories"]["gd"].shape == (se.TRACE, cfg.steps + 1, 2)


def _starts(y0, dim, x_other=0.1):
    """Starts with y0 on coordinate 0 (the negative direction of strict_saddle), x_other elsewhere."""
    x0 = np.full((len(y0), dim), x_other, np.float32)
    x0[:, 0] = y0
    return jnp.asarray(x0), jax.random.split(jax.random.PRNGKey(0), len(y0))


@pytest.mark.parametrize("eta,lam", [(0.02, 0.5), (0.15, 1.2)])
def test_gd_escape_formula_matches_simulation(eta, lam):
    cfg = se.Config()
    surface = saddles.strict_saddle(3, lam, 5.0)
    y0 = np.float32(np.geomspace(1e-7, 0.5, 23) * np.where(np.arange(23) % 2, 1, -1))
    steps = int(se.gd_escape_steps(1e-7, eta, lam, cfg.radius)) + 5
    x0, keys = _starts(y0, 3)
    esc, xf, _ = se.simulate(surface, "gd", cfg, eta, steps, np.eye(3)[0], x0, keys, record=False)
    np.testing.assert_array_equal(np.asarray(esc), se.gd_escape_steps(y0.astype(float), eta, lam, cfg.radius))
    # and the small-step limit ln(1/|y0|)/(eta h) is the formula's leading term
    assert abs(se.gd_escape_steps(1e-6, 1e-3, lam, 1.0) * 1e-3 * lam / np.log(1e6) - 1) < 1e-3


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_closed_form_matches_optax(nesterov):
    """y_t from optax.sgd(momentum, nesterov) on f = -h y^2 / 2 against y0 (A r1^t + B r2^t); the
    late growth factor against the larger root r1 (> 1 + eta h)."""
    eta, h, beta, T = 0.05, 0.8, 0.9, 60
    tx = optax.sgd(eta, momentum=beta, nesterov=nesterov)

    def body(carry, _):
        y, s = carry
        upd, s = tx.update(-h * y, s, y)
        return (y + upd, s), y + upd

    y0 = jnp.ones((1,), jnp.float32) * 1e-3
    _, ys = jax.lax.scan(body, (y0, tx.init(y0)), None, length=T)
    ys = np.concatenate([[1e-3], np.asarray(ys)[:, 0]])
    r1, r2 = se.momentum_roots(eta, h, beta, nesterov)
    assert r1 > 1 + eta * h and 0 < r2 < 1
    y1 = 1 + (1 + beta) * eta * h if nesterov else 1 + eta * h
    a, b = (y1 - r2) / (r1 - r2), (r1 - y1) / (r1 - r2)
    t = np.arange(T + 1)
    np.testing.assert_allclose(ys, 1e-3 * (a * r1 ** t + b * r2 ** t), rtol=2e-5)
    np.testing.assert_allclose(ys[-1] / ys[-2], r1, rtol=1e-5)
    # escape steps of the closed form against the experiment's own simulation of the method
    cfg = se.Config(momentum=beta)
    surface = saddles.strict_saddle(2, h, 1.0)
    y0s = np.float32(np.geomspace(1e-6, 1e-1, 11))
    x0, keys = _starts(y0s, 2)
    esc, _, _ = se.simulate(surface, "nesterov" if nesterov else "momentum", cfg, eta, 200, np.eye(2)[0], x0, keys,
                            record=False)
    pred = se.momentum_escape_steps(y0s.astype(float), eta, h, beta, cfg.radius, 200, nesterov)
    assert np.max(np.abs(np.asarray(esc) - pred)) <= 1


def test_median_ci_brackets_the_median():
    x = np.arange(101.0)
    med, lo, hi = se.median_ci(x)
    assert med == 50 and lo < 50 < hi and hi - lo < 30


@pytest.mark.parametrize("field,value", [
    ("learning_rate", -0.1), ("learning_rate", 1.0), ("steps", 20), ("nd_learning_rate", 0.25),
    ("nd_steps", 100), ("y0_range", (1e-2, 1e-8)), ("y0_range", (1e-8, 2.0)), ("y0_range", "small"),
    ("momentum", 1.0), ("starts", 4), ("pgd_wait_steps", -1), ("newton_damping", 0.0), ("nd_dim", 1),
])
def test_bad_config_values_raise_one_line_errors_naming_the_field(field, value):
    with pytest.raises(ValueError) as err:
        dataclasses.replace(se.Config(), **{field: value})
    msg = str(err.value)
    assert f"Config.{field}" in msg and "\n" not in msg

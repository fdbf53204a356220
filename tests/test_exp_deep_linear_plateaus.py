"""deep_linear_plateaus (Saxe, McClelland & Ganguli 2014) in quick mode, plus its mathematics:
the closed form against the gradient flow integrated numerically, the engine's MSE against the
(1/n) ||W - W*||^2 the time scale is derived from, the balanced construction, and the Hessian at
the saddles."""
import copy
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from lossatlas import train
from lossatlas.checks import assert_passed
from lossatlas_experiments import deep_linear_plateaus as dlp


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick("deep_linear_plateaus")


def test_quick_run_learns_mode_by_mode(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    assert (path / "deep_linear_plateaus.png").exists() and (path / "table.md").exists()
    n, S = len(cfg.singular_values), cfg.seeds
    assert res["bal_modes"].shape == (cfg.steps + 1, n) and res["rand_modes"].shape == (S, cfg.steps + 1, n)
    assert res["depth_a1"].shape == (len(cfg.depths), S, cfg.depth_steps + 1)
    assert not res["diverged"].any()
    # the balanced construction starts every mode at a0 and keeps the modes decoupled all along
    np.testing.assert_allclose(res["bal_modes"][0], cfg.init_strength, rtol=1e-4)
    np.testing.assert_allclose(res["bal_a0"], cfg.init_strength, rtol=1e-4)
    assert np.max(res["bal_offdiag"]) < 1e-5 * cfg.singular_values[0]
    # stronger modes first: the balanced t_half are ordered like s
    t = dlp.summary(res, cfg)["t_bal"]
    assert np.all(np.diff(t) > 0)


def _balanced_flow(s, a0, eta, n, t_eval):
    """a(t) = b1 b2 under the gradient flow db/dt = -eta dL/db of L = (1/n)(s - b1 b2)^2 (time in steps)."""
    def rhs(_, b):
        r = s - b[0] * b[1]
        return [eta * (2 / n) * r * b[1], eta * (2 / n) * r * b[0]]
    sol = solve_ivp(rhs, (0, t_eval[-1]), [math.sqrt(a0)] * 2, t_eval=t_eval, rtol=1e-10, atol=1e-14,
                    method="LSODA")
    return sol.y[0] * sol.y[1]


@pytest.mark.parametrize("s,a0", [(4.0, 1e-6), (0.5, 1e-3)])
def test_closed_form_equals_the_integrated_gradient_flow(s, a0):
    eta, n = 0.02, 4
    tau = dlp.tau(eta, n)
    t = np.linspace(0, 3 * dlp.t_half(s, a0, tau), 400)
    a_ode = _balanced_flow(s, a0, eta, n, t)
    np.testing.assert_allclose(dlp.strength(t, s, a0, tau), a_ode, rtol=1e-6, atol=1e-12)
    t_ode = np.interp(s / 2, a_ode, t)          # a(t) is increasing
    np.testing.assert_allclose(dlp.t_half(s, a0, tau), t_ode, rtol=1e-4)
    np.testing.assert_allclose(dlp.t_half_depth(s, a0, tau, 2), dlp.t_half(s, a0, tau), rtol=1e-6)


def test_deeper_balanced_flow_by_quadrature_matches_the_ode():
    """t_half of tau du/dt = L u^(2-2/L) (s - u), L = 3, against 3 balanced factors integrated."""
    s, b0, eta, n, L = 2.0, 0.1, 0.01, 4, 3
    tau = dlp.tau(eta, n)

    def rhs(_, b):
        u = np.prod(b)
        return [eta * (2 / n) * (s - u) * u / bi for bi in b]
    hit = lambda _, b: np.prod(b) - s / 2  # noqa: E731
    hit.terminal = True
    sol = solve_ivp(rhs, (0, 1e7), [b0] * L, events=hit, rtol=1e-10, atol=1e-14, method="LSODA")
    np.testing.assert_allclose(dlp.t_half_depth(s, b0 ** L, tau, L), sol.t_events[0][0], rtol=1e-5)


def _tiny(**kw):
    return dlp.Config(**{"learning_rate": 0.02, "steps": 3000, "seeds": 3, **kw})


def test_balanced_construction_whitened_data_and_the_engines_mse():
    cfg = _tiny()
    ds, U, V = dlp.balanced_dataset(cfg, jax.random.PRNGKey(5))
    n, P = len(cfg.singular_values), cfg.num_train
    np.testing.assert_allclose(ds.x_train.T @ ds.x_train / P, np.eye(n), atol=1e-5)   # whitened exactly
    np.testing.assert_allclose(U.T @ U, np.eye(n), atol=1e-6)
    np.testing.assert_allclose(V.T @ V, np.eye(n), atol=1e-6)
    tcfg = dlp.balanced_config(cfg)
    params = train.init(tcfg, ds, jax.random.PRNGKey(5)).params
    M = dlp.mode_matrix_fn(train.model_fns(tcfg, ds), U, V)(params, {})
    np.testing.assert_allclose(np.asarray(M), cfg.init_strength * np.eye(n), atol=1e-4 * cfg.init_strength)
    # the engine's training loss is (1/n) ||W - W*||_F^2 on whitened inputs: the tau = n/(2 eta) convention
    w_star = U @ np.diag(cfg.singular_values) @ V.T
    p = jax.tree_util.tree_map(lambda a: a + 0.3 * jax.random.normal(jax.random.PRNGKey(1), a.shape), params)
    w1, w2 = (np.asarray(w, np.float64) for w in dlp.layer_matrices(p))
    loss = float(train.model_fns(tcfg, ds).loss(p, {}, (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))))
    np.testing.assert_allclose(loss, np.sum((w2 @ w1 - w_star) ** 2) / n, rtol=1e-4)


def _hessian_at(cfg, width, per_mode):
    """Eigenvalues of the dense Hessian at W2 = U B R^T, W1 = R B V^T (B = diag(per_mode), R = the
    first n columns of the identity in the hidden space): W = 0 for per_mode = 0."""
    ds, U, V = dlp.balanced_dataset(cfg, jax.random.PRNGKey(2))
    n = len(cfg.singular_values)
    tcfg = dlp.train_config(cfg, 2, "naive", width, steps=cfg.steps)
    R = np.eye(width)[:, :n]
    B = np.diag(per_mode)
    params = {"dense_0": {"kernel": jnp.asarray((R @ B @ V.T).T, jnp.float32)},
              "readout": {"kernel": jnp.asarray((U @ B @ R.T).T, jnp.float32)}}
    fns = train.model_fns(tcfg, ds)
    batch = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    return np.asarray(dlp.hessian_eigvals(lambda q: fns.loss(q, {}, batch), params), np.float64)


@pytest.mark.parametrize("width", [4, 6])
def test_hessian_at_the_origin_is_a_saddle_with_eigenvalues_plus_minus_2s_over_n(width):
    cfg = _tiny()
    s, n = np.asarray(cfg.singular_values), len(cfg.singular_values)
    eig = _hessian_at(cfg, width, np.zeros(n))
    # 2 n width parameters: each hidden unit pairs its outgoing and incoming weights through -(2/n) W*
    expected = np.sort(np.concatenate([np.repeat(2 * s / n, width), np.repeat(-2 * s / n, width)]))
    np.testing.assert_allclose(eig, expected, atol=1e-5)
    assert eig[0] == pytest.approx(dlp.saddle_eigenvalue(s[0], n), abs=1e-5)


def test_hessian_at_the_next_saddle_and_at_the_minimum():
    cfg = _tiny()
    s, n = np.asarray(cfg.singular_values), len(cfg.singular_values)
    # mode 1 learned, the rest at zero: the saddle of the second plateau, lambda_min = -(2/n) s_2
    eig = _hessian_at(cfg, n, np.sqrt(np.where(np.arange(n) == 0, s, 0.0)))
    assert eig[0] == pytest.approx(-2 * s[1] / n, abs=1e-5)
    # every mode learned: a global minimum, positive semidefinite (zeros in the gauge directions)
    eig = _hessian_at(cfg, n, np.sqrt(s))
    assert eig[0] > -1e-5 and eig[-1] > 1


def test_checks_fail_when_the_effect_is_absent(quick):
    _, res, _, cfg = quick
    names = lambda r: {c["name"]: c["passed"] for c in dlp.checks(r, cfg)}  # noqa: E731
    assert all(names(res).values())
    slow = copy.deepcopy(res)                       # a time scale off by 2 (e.g. a loss with a 1/2)
    slow["tau"] = 2 * res["tau"]
    assert not names(slow)["balanced init: t_half of every mode matches the closed form"]
    flat = copy.deepcopy(res)                       # no negative curvature mid plateau
    flat["bal_hessian"] = np.abs(res["bal_hessian"])
    assert not names(flat)["the first plateau is a saddle: lambda_min = -(2/n) s_1"]
    rev = copy.deepcopy(res)                        # depth order reversed
    rev["depth_a1"] = res["depth_a1"][::-1]
    assert not names(rev)["deeper nets wait longer at the same per-layer init"]
    unlearned = copy.deepcopy(res)                  # stopped before the weakest mode is learned
    unlearned["bal_modes"] = res["bal_modes"] * np.where(np.arange(res["bal_modes"].shape[1]) == 3, 0.9, 1.0)
    assert not names(unlearned)["after every mode is learned the Hessian is positive semidefinite"]


@pytest.mark.parametrize("field,value", [
    ("singular_values", (1.0, 2.0)), ("singular_values", (4.0,)), ("init_strength", 0.3),
    ("init_strength", 0.0), ("learning_rate", 0.1), ("steps", 500), ("depths", (3, 2)), ("depths", (1, 2)),
    ("seeds", 2), ("random_width", 3), ("checkpoints", 5000), ("num_train", 2),
])
def test_bad_config_values_raise_one_line_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field) as err:
        dataclasses.replace(_tiny(), **{field: value})
    assert "\n" not in str(err.value)

"""Closed-form checks of the continual-learning strategies' mathematics and of the
mode-connectivity curves (issue 15, "Mathematics with no test").

Every test builds a tiny toy (two parameters, a hand-made ``Context``), calls the library's
pure functions directly, and compares with a closed form computed here in numpy.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.continual import buffer as membuf
from lossatlas.continual import strategies as S
from lossatlas.landscape import curve_point

# ----------------------------------------------------------------------------- toy problem

C = np.array([0.3, -0.7], np.float32)  # minimum of the toy task loss


def _task_loss_np(w):
    return 0.5 * float(np.sum((np.asarray(w, np.float64) - C) ** 2))


def _apply(p, x):
    """Two parameters, two classes: logits_k = x_k * w_k."""
    return x * p["w"][None, :]


def _softmax_np(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _data(num_tasks=2, n=16, k=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "x_train": jnp.asarray(rng.normal(size=(num_tasks, n, 2)).astype(np.float32) * 1.5),
        "y_train": jnp.asarray(rng.integers(0, k, size=(num_tasks, n)).astype(np.int32)),
        "masks": jnp.ones((num_tasks, num_tasks, k), bool),
    }


def _ctx(data, task=0, lam=1.0, key=0, apply=_apply, loss=None):
    if loss is None:
        loss = lambda p, b: 0.5 * jnp.sum(jnp.square(p["w"] - jnp.asarray(C)))  # noqa: E731
    return S.Context(task=jnp.asarray(task, jnp.int32), step=jnp.zeros((), jnp.int32),
                     key=jax.random.PRNGKey(key), lam=jnp.asarray(lam, jnp.float32), data=data,
                     apply=apply, loss=loss, num_tasks=int(data["x_train"].shape[0]),
                     batch_size=int(data["x_train"].shape[1]))


def _exact_fisher_np(w, x):
    """Exact diagonal Fisher of logits_k = x_k w_k: d log p_k / d w_i = (delta_ki - p_i) x_i, so
    F_i = mean_n sum_k p_k (delta_ki - p_i)^2 x_i^2 = mean_n x_i^2 p_i (1 - p_i)."""
    x = np.asarray(x, np.float64)
    p = _softmax_np(x * np.asarray(w, np.float64)[None, :])
    return np.mean(x ** 2 * p * (1 - p), axis=0)


def _params(w):
    return {"w": jnp.asarray(np.asarray(w, np.float32))}


BATCH = {"x": jnp.zeros((1, 2)), "y": jnp.zeros((1,), jnp.int32), "task": jnp.zeros((1,), jnp.int32),
         "weight": jnp.ones((1,))}


# ----------------------------------------------------------------------------- 1. L2 / EWC penalty

@pytest.mark.parametrize("lam", [0.5, 3.0])
def test_l2_penalty_closed_form(lam):
    data = _data()
    theta_star, theta = np.array([1.2, -0.4], np.float32), np.array([-0.3, 0.9], np.float32)
    strat = S.l2(lam)
    ctx = _ctx(data, lam=lam)
    state = strat.init(_params([0.0, 0.0]), ctx)
    # before any consolidation the penalty is zero
    np.testing.assert_allclose(float(strat.loss(state, _params(theta), BATCH, ctx)), _task_loss_np(theta), rtol=1e-6)
    state = strat.consolidate(state, _params(theta_star), ctx)
    got = float(strat.loss(state, _params(theta), BATCH, ctx))
    want = _task_loss_np(theta) + lam / 2 * np.sum((theta.astype(np.float64) - theta_star) ** 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("lam", [0.7, 40.0])
def test_ewc_penalty_closed_form(lam):
    data = _data()
    theta_star, theta = np.array([1.2, -0.4], np.float32), np.array([-0.3, 0.9], np.float32)
    strat = S.ewc(lam, fisher="exact")
    ctx = _ctx(data, task=0, lam=lam)
    state = strat.init(_params([0.0, 0.0]), ctx)
    state = strat.consolidate(state, _params(theta_star), ctx)
    f = _exact_fisher_np(theta_star, data["x_train"][0])
    np.testing.assert_allclose(np.asarray(state.importance["w"]), f, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.anchor["w"]), theta_star, rtol=1e-6)
    got = float(strat.loss(state, _params(theta), BATCH, ctx))
    want = _task_loss_np(theta) + lam / 2 * np.sum(f * (theta.astype(np.float64) - theta_star) ** 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)

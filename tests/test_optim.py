"""Mathematical checks of lossatlas.optim: convergence, exact update rules, schedules, tracing."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_schedule

DIM = 4


def _quadratic():
    """Well-conditioned SPD A (eigenvalues in [1, 2]) and optimum c, as float64 numpy."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    A = q @ np.diag(np.linspace(1.0, 2.0, DIM)) @ q.T
    c = rng.standard_normal(DIM)
    return A, c


A64, C64 = _quadratic()
A = jnp.asarray(A64, dtype=jnp.float32)
C = jnp.asarray(C64, dtype=jnp.float32)
W0 = jnp.zeros(DIM, dtype=jnp.float32)


def f(w):
    d = w - C
    return 0.5 * d @ (A @ d)


def grad_f(w):
    return A @ (w - C)


def _run(opt, steps, w0=W0):
    """`steps` optimiser steps on f from w0 (jitted scan)."""
    def step(carry, _):
        w, state = carry
        updates, state = opt.update(grad_f(w), state, w)
        return (optax.apply_updates(w, updates), state), None

    (w, _), _ = jax.lax.scan(step, (w0, opt.init(w0)), None, length=steps)
    return w


def _updates(opt, grads_seq, w0):
    """The update sequence produced by feeding fixed gradients (numpy list) to opt."""
    w, state, out = w0, opt.init(w0), []
    for g in grads_seq:
        u, state = opt.update(g, state, w)
        w = optax.apply_updates(w, u)
        out.append(np.asarray(u))
    return out


# --------------------------------------------------------------------------- convergence

LRS = {"sgd": 0.3, "momentum": 0.1, "nesterov": 0.1, "adam": 0.05, "adamw": 0.05,
       "rmsprop": 0.01, "adagrad": 0.5}


def test_every_optimizer_has_a_convergence_setting():
    assert set(LRS) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_minimises_convex_quadratic(name):
    opt = make_optimizer(name, LRS[name], schedule="cosine", total_steps=300)
    w = jax.jit(lambda: _run(opt, 300))()
    f0 = float(f(W0))
    assert f0 > 0.5
    assert float(f(w)) < 1e-4 * f0
    np.testing.assert_allclose(w, C, atol=2e-2)


# --------------------------------------------------------------------------- exact update rules

def test_sgd_one_step_is_w_minus_lr_grad():
    lr = 0.125
    w = jnp.array([1.0, -2.0, 3.0, 0.5])
    g = grad_f(w)
    opt = make_optimizer("sgd", lr)
    u, _ = opt.update(g, opt.init(w), w)
    np.testing.assert_allclose(optax.apply_updates(w, u), w - lr * g, rtol=1e-7, atol=0)


def test_momentum_matches_heavy_ball_by_hand():
    lr, mu = 0.1, 0.9
    opt = make_optimizer("momentum", lr, momentum=mu)
    w = jnp.array([1.0, -2.0, 3.0, 0.5])
    state = opt.init(w)
    w_ref, v = np.asarray(w, np.float64), np.zeros(DIM)
    for _ in range(3):
        g = grad_f(w)
        u, state = opt.update(g, state, w)
        w = optax.apply_updates(w, u)
        # heavy ball: v <- mu v + g(w); w <- w - lr v
        v = mu * v + A64 @ (w_ref - C64)
        w_ref = w_ref - lr * v
        np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)


def test_nesterov_matches_by_hand_and_differs_from_momentum():
    lr, mu = 0.1, 0.9
    grads = [np.array([1.0, -1.0, 2.0, 0.5], np.float32), np.array([0.5, 0.5, -1.0, 1.0], np.float32),
             np.array([-1.0, 2.0, 0.0, 1.0], np.float32)]
    w0 = jnp.zeros(DIM)
    mom = _updates(make_optimizer("momentum", lr, momentum=mu), grads, w0)
    nes = _updates(make_optimizer("nesterov", lr, momentum=mu), grads, w0)
    v = np.zeros(DIM)
    for g, um, un in zip(grads, mom, nes):
        v = mu * v + g
        np.testing.assert_allclose(um, -lr * v, rtol=1e-6, atol=1e-7)
        # Sutskever-style Nesterov: step along g + mu * v_new.
        np.testing.assert_allclose(un, -lr * (g + mu * v), rtol=1e-6, atol=1e-7)
    assert not np.allclose(mom[1], nes[1])


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_adam_first_step_is_lr_times_sign(scale):
    lr = 0.01
    g = scale * jnp.array([1.0, -3.0, 0.25, -0.5])
    for name in ("adam", "adamw"):
        opt = make_optimizer(name, lr)
        u, _ = opt.update(g, opt.init(jnp.ones(DIM)), jnp.ones(DIM))
        np.testing.assert_allclose(u, -lr * np.sign(g), rtol=1e-4)


# --------------------------------------------------------------------------- weight decay

def test_sgd_weight_decay_zero_gradient_shrinks_params():
    lr, wd = 0.1, 0.05
    w = jnp.array([1.0, -2.0, 3.0, 0.5])
    opt = make_optimizer("sgd", lr, weight_decay=wd)
    u, _ = opt.update(jnp.zeros(DIM), opt.init(w), w)
    np.testing.assert_allclose(optax.apply_updates(w, u), (1 - lr * wd) * w, rtol=1e-6)


def test_adamw_decoupled_decay_matches_optax():
    lr, wd = 0.01, 0.1
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(DIM).astype(np.float32) for _ in range(4)]
    w0 = jnp.array([1.0, -2.0, 3.0, 0.5])
    ours = _updates(make_optimizer("adamw", lr, weight_decay=wd), grads, w0)
    ref = _updates(optax.adamw(lr, weight_decay=wd), grads, w0)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    # Decoupled: with zero gradient the step is exactly -lr * wd * w (not normalised by Adam) ...
    opt = make_optimizer("adamw", lr, weight_decay=wd)
    u, _ = opt.update(jnp.zeros(DIM), opt.init(w0), w0)
    np.testing.assert_allclose(u, -lr * wd * w0, rtol=1e-5)
    # ... whereas adam's L2 penalty goes through the normalisation: step ~ -lr * sign(w).
    opt = make_optimizer("adam", lr, weight_decay=wd)
    u, _ = opt.update(jnp.zeros(DIM), opt.init(w0), w0)
    np.testing.assert_allclose(u, -lr * np.sign(w0), rtol=1e-4)


# --------------------------------------------------------------------------- clipping

def test_clip_norm_bounds_global_norm_of_sgd_update():
    lr, clip = 0.1, 2.0
    g = 1e6 * jnp.array([3.0, -4.0, 1.0, 2.0])
    w = jnp.zeros(DIM)
    opt = make_optimizer("sgd", lr, clip_norm=clip)
    u, _ = opt.update(g, opt.init(w), w)
    np.testing.assert_allclose(_norm(u), lr * clip, rtol=1e-5)
    np.testing.assert_allclose(u / np.linalg.norm(u), -g / np.linalg.norm(g), rtol=1e-5)
    # Over a pytree the *global* norm is clipped.
    tree = {"a": g, "b": -g[:2]}
    opt_tree = make_optimizer("sgd", lr, clip_norm=clip)
    ut, _ = opt_tree.update(tree, opt_tree.init(tree), tree)
    np.testing.assert_allclose(_norm(ut), lr * clip, rtol=1e-5)
    # Small gradients pass through unchanged.
    small = jnp.array([0.1, 0.0, -0.1, 0.0])
    u, _ = opt.update(small, opt.init(w), w)
    np.testing.assert_allclose(u, -lr * small, rtol=1e-6)


def test_clip_value_bounds_each_element():
    v = 0.5
    g = jnp.array([10.0, -10.0, 0.2, -0.3])
    w = jnp.zeros(DIM)
    opt = make_optimizer("sgd", 1.0, clip_value=v)
    u, _ = opt.update(g, opt.init(w), w)
    np.testing.assert_allclose(u, [-0.5, 0.5, -0.2, 0.3], rtol=1e-6)
    assert np.all(np.abs(np.asarray(u)) <= v)


# --------------------------------------------------------------------------- schedules

def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.square(np.asarray(x, np.float64))) for x in jax.tree.leaves(tree))))


def _values(sched, steps):
    return np.asarray(jax.vmap(sched)(jnp.asarray(steps)))


def test_constant_schedule():
    s = make_schedule(0.3, "constant")
    np.testing.assert_allclose(_values(s, [0, 1, 10, 1000]), 0.3, rtol=1e-6)


def test_cosine_schedule_endpoints_and_midpoint():
    lr, total, ff = 0.2, 100, 0.1
    s = make_schedule(lr, "cosine", total_steps=total, final_fraction=ff)
    v = _values(s, np.arange(total + 20))
    np.testing.assert_allclose(v[0], lr, rtol=1e-6)
    np.testing.assert_allclose(v[total], ff * lr, rtol=1e-5)
    np.testing.assert_allclose(v[total // 2], lr * (ff + (1 - ff) * 0.5), rtol=1e-5)
    np.testing.assert_allclose(v[total:], ff * lr, rtol=1e-5)  # stays at the floor
    assert np.all(np.diff(v[: total + 1]) <= 1e-9)
    # default final_fraction decays to zero
    np.testing.assert_allclose(make_schedule(lr, "cosine", total_steps=total)(total), 0.0, atol=1e-8)


def test_warmup_schedule_linear_then_constant():
    lr, warm = 0.4, 10
    s = make_schedule(lr, "warmup", total_steps=100, warmup_steps=warm)
    steps = np.arange(40)
    v = _values(s, steps)
    np.testing.assert_allclose(v[: warm + 1], lr * steps[: warm + 1] / warm, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(v[warm:], lr, rtol=1e-6)
    assert v[0] == 0.0


def test_warmup_cosine_schedule_peaks_at_warmup_steps():
    lr, warm, total, ff = 0.4, 10, 50, 0.05
    s = make_schedule(lr, "warmup_cosine", total_steps=total, warmup_steps=warm, final_fraction=ff)
    steps = np.arange(total + 10)
    v = _values(s, steps)
    assert int(np.argmax(v)) == warm
    np.testing.assert_allclose(v[warm], lr, rtol=1e-6)
    assert v[0] == 0.0
    np.testing.assert_allclose(v[: warm + 1], lr * steps[: warm + 1] / warm, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(v[total:], ff * lr, rtol=1e-5)
    mid = warm + (total - warm) // 2
    np.testing.assert_allclose(v[mid], lr * (ff + (1 - ff) * 0.5), rtol=1e-5)
    assert np.all(np.diff(v[warm: total + 1]) <= 1e-9)


def test_optimizer_uses_schedule():
    # sgd with warmup: the first update is zero, the step at `warmup_steps` is the full lr.
    opt = make_optimizer("sgd", 0.5, schedule="warmup", warmup_steps=2, total_steps=10)
    g = np.ones(DIM, np.float32)
    ups = _updates(opt, [g, g, g, g], jnp.zeros(DIM))
    np.testing.assert_allclose([u[0] for u in ups], [0.0, -0.25, -0.5, -0.5], rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- traced hyperparameters

TRACE_CASES = [(name, "constant") for name in OPTIMIZERS] + [
    ("momentum", "cosine"), ("adam", "warmup"), ("sgd", "warmup_cosine"), ("adamw", "warmup_cosine")]


@pytest.mark.parametrize("name, schedule", TRACE_CASES)
def test_traced_learning_rate_matches_python_float(name, schedule):
    lrs = np.array([0.01, 0.05, 0.2], np.float32)
    kwargs = dict(schedule=schedule, total_steps=8, warmup_steps=2 if "warmup" in schedule else 0,
                  weight_decay=0.01, clip_norm=5.0)
    w0 = jnp.array([1.0, -2.0, 3.0, 0.5])

    def run(lr):
        return _run(make_optimizer(name, lr, **kwargs), 5, w0)

    swept = jax.jit(jax.vmap(run))(jnp.asarray(lrs))
    for i, lr in enumerate(lrs):
        ref = jax.jit(lambda: run(float(lr)))()
        np.testing.assert_allclose(swept[i], ref, rtol=2e-5, atol=1e-6)


def test_traced_other_hyperparameters_match_python_floats():
    w0 = jnp.array([1.0, -2.0, 3.0, 0.5])
    mus = np.array([0.0, 0.5, 0.9], np.float32)
    wds = np.array([0.0, 0.1, 0.3], np.float32)

    def run(mu, wd):
        return _run(make_optimizer("nesterov", 0.05, momentum=mu, weight_decay=wd, clip_value=1.0), 4, w0)

    swept = jax.jit(jax.vmap(run))(jnp.asarray(mus), jnp.asarray(wds))
    for i in range(3):
        ref = jax.jit(lambda: run(float(mus[i]), float(wds[i])))()
        np.testing.assert_allclose(swept[i], ref, rtol=2e-5, atol=1e-6)


# --------------------------------------------------------------------------- errors

def test_unknown_optimizer_lists_known():
    with pytest.raises(ValueError) as info:
        make_optimizer("lion", 0.1)
    assert "lion" in str(info.value)
    for name in OPTIMIZERS:
        assert name in str(info.value)


def test_unknown_schedule_lists_known():
    for call in (lambda: make_schedule(0.1, "linear"), lambda: make_optimizer("sgd", 0.1, schedule="linear")):
        with pytest.raises(ValueError) as info:
            call()
        assert "linear" in str(info.value)
        for name in SCHEDULES:
            assert name in str(info.value)


@pytest.mark.parametrize("schedule", ["warmup", "warmup_cosine"])
def test_warmup_needs_positive_warmup_steps(schedule):
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule(0.1, schedule, total_steps=10, warmup_steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_optimizer("adam", 0.1, schedule=schedule, total_steps=10, warmup_steps=0)

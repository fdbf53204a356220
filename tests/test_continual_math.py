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


# ----------------------------------------------------------------------------- 2. online EWC decay

@pytest.mark.parametrize("gamma", [0.0, 0.35, 1.0])
def test_online_ewc_decay_and_latest_anchor(gamma):
    data = _data()
    lam = 2.5
    theta1, theta2 = np.array([1.2, -0.4], np.float32), np.array([0.5, 0.8], np.float32)
    theta = np.array([-0.3, 0.2], np.float32)
    strat = S.ewc(lam, fisher="exact", online=True, gamma=gamma)
    state = strat.init(_params([0.0, 0.0]), _ctx(data, task=0, lam=lam))
    state = strat.consolidate(state, _params(theta1), _ctx(data, task=0, lam=lam))
    state = strat.consolidate(state, _params(theta2), _ctx(data, task=1, lam=lam))
    f1 = _exact_fisher_np(theta1, data["x_train"][0])
    f2 = _exact_fisher_np(theta2, data["x_train"][1])
    np.testing.assert_allclose(np.asarray(state.importance["w"]), gamma * f1 + f2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.anchor["w"]), theta2, rtol=1e-6)
    got = float(strat.loss(state, _params(theta), BATCH, _ctx(data, task=1, lam=lam)))
    want = _task_loss_np(theta) + lam / 2 * np.sum((gamma * f1 + f2) * (theta.astype(np.float64) - theta2) ** 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_multitask_ewc_equals_sum_of_penalties():
    """Offline EWC stores sum_t F_t (theta - theta*_t)^2 as A (theta - m)^2 + const: the
    penalty's theta-dependence (differences between two thetas) equals the sum of per-task
    penalties."""
    data = _data()
    lam = 1.5
    theta1, theta2 = np.array([1.2, -0.4], np.float32), np.array([0.5, 0.8], np.float32)
    strat = S.ewc(lam, fisher="exact")
    state = strat.init(_params([0.0, 0.0]), _ctx(data, task=0, lam=lam))
    state = strat.consolidate(state, _params(theta1), _ctx(data, task=0, lam=lam))
    state = strat.consolidate(state, _params(theta2), _ctx(data, task=1, lam=lam))
    f1 = _exact_fisher_np(theta1, data["x_train"][0])
    f2 = _exact_fisher_np(theta2, data["x_train"][1])
    np.testing.assert_allclose(np.asarray(state.importance["w"]), f1 + f2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(state.anchor["w"]), (f1 * theta1 + f2 * theta2) / (f1 + f2), rtol=1e-5)

    def pen_np(th):
        th = th.astype(np.float64)
        return lam / 2 * np.sum(f1 * (th - theta1) ** 2 + f2 * (th - theta2) ** 2)

    ctx = _ctx(data, task=1, lam=lam)
    a, b = np.array([-0.3, 0.2], np.float32), np.array([0.9, -1.1], np.float32)
    pen = lambda th: float(strat.loss(state, _params(th), BATCH, ctx)) - _task_loss_np(th)  # noqa: E731
    np.testing.assert_allclose(pen(a) - pen(b), pen_np(a) - pen_np(b), rtol=1e-4)


# ----------------------------------------------------------------------------- 3. SI path integral

def _walk(strat, state, grads, path, ctx):
    """Feed SI's ``observe`` the steps path[t] -> path[t + 1] with gradients grads[t]."""
    for t in range(len(grads)):
        state = strat.observe(state, _params(grads[t]), _params(path[t]), _params(path[t + 1]), BATCH, ctx)
    return state


def _path_integral(grads, path):
    """Zenke et al.'s omega = sum_t -g(t) * (theta(t+1) - theta(t)), in float64."""
    return np.sum(-grads * (path[1:] - path[:-1]), axis=0)


def test_si_path_integral_and_importance():
    """Zenke et al. 2017: omega_k = sum_t -g_k(t) Delta theta_k(t) with g the *task* gradient;
    after the task Omega_k += omega_k / ((theta_end,k - theta_start,k)^2 + xi). The program hands
    observe the full gradient g + lam Omega (theta_old - theta*), so in the second task the
    test feeds that and expects SI to remove its own penalty's gradient."""
    data = _data()
    lam, xi = 0.8, 0.1
    rng = np.random.default_rng(3)
    strat = S.si(lam, xi=xi)
    ctx = _ctx(data, task=0, lam=lam)

    # task 0: a path theta_0 .. theta_K with arbitrary gradients
    path0 = np.cumsum(rng.normal(size=(6, 2)).astype(np.float32) * 0.3, axis=0)
    grads0 = rng.normal(size=(5, 2)).astype(np.float32)
    state = _walk(strat, strat.init(_params(path0[0]), ctx), grads0, path0, ctx)
    p64 = path0.astype(np.float64)
    omega0 = _path_integral(grads0, p64)
    np.testing.assert_allclose(np.asarray(state.omega["w"]), omega0, rtol=1e-5, atol=1e-6)
    state = strat.consolidate(state, _params(path0[-1]), ctx)
    big_omega = omega0 / ((p64[-1] - p64[0]) ** 2 + xi)
    np.testing.assert_allclose(np.asarray(state.importance["w"]), big_omega, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(state.anchor["w"]), path0[-1])
    np.testing.assert_allclose(np.asarray(state.omega["w"]), 0.0)
    # the loss: task loss + (lam/2) sum Omega (theta - theta*)^2
    theta = np.array([0.4, -0.2], np.float32)
    want = _task_loss_np(theta) + lam / 2 * np.sum(big_omega * (theta - p64[-1]) ** 2)
    np.testing.assert_allclose(float(strat.loss(state, _params(theta), BATCH, ctx)), want, rtol=1e-5)

    # task 1: the observed gradient includes the penalty's gradient, which SI removes
    ctx1 = _ctx(data, task=1, lam=lam)
    path1 = p64[-1] + np.cumsum(rng.normal(size=(5, 2)) * 0.3, axis=0)
    path1 = np.concatenate([p64[-1:], path1]).astype(np.float32)
    task_g = rng.normal(size=(5, 2)).astype(np.float32)
    full_g = (task_g + lam * big_omega * (path1[:-1] - p64[-1])).astype(np.float32)
    state = _walk(strat, state, full_g, path1, ctx1)
    q64 = path1.astype(np.float64)
    omega1 = _path_integral(task_g, q64)
    np.testing.assert_allclose(np.asarray(state.omega["w"]), omega1, rtol=1e-4, atol=1e-5)
    state = strat.consolidate(state, _params(path1[-1]), ctx1)
    np.testing.assert_allclose(np.asarray(state.importance["w"]),
                               big_omega + omega1 / ((q64[-1] - q64[0]) ** 2 + xi), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- 4. LwF distillation

def _kd_np(student, teacher, head_masks, head_weights, temp):
    """T^2 KL(softmax(teacher/T) || softmax(student/T)) on each head's units, weighted mean over heads."""
    student, teacher = np.asarray(student, np.float64), np.asarray(teacher, np.float64)
    w = np.asarray(head_weights, np.float64)
    w = w / w.sum()
    out = np.zeros(student.shape[0])
    for h, mask in enumerate(np.asarray(head_masks)):
        q = _softmax_np(teacher[:, mask] / temp)
        p = _softmax_np(student[:, mask] / temp)
        out += w[h] * np.sum(q * (np.log(q) - np.log(p)), axis=-1)
    return temp ** 2 * out


@pytest.mark.parametrize("temp", [1.0, 2.0, 5.0])
def test_distillation_is_t2_scaled_kl(temp):
    rng = np.random.default_rng(4)
    student = rng.normal(size=(5, 4)).astype(np.float32) * 2
    teacher = rng.normal(size=(5, 4)).astype(np.float32) * 2
    masks = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [1, 1, 1, 1]], bool)
    weights = np.array([1.0, 3.0, 0.0], np.float32)
    got = S.distillation(jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(masks), jnp.asarray(weights), temp)
    np.testing.assert_allclose(np.asarray(got), _kd_np(student, teacher, masks, weights, temp), rtol=1e-4, atol=1e-6)
    # a KL (not a cross-entropy): zero when the student equals the teacher
    same = S.distillation(jnp.asarray(teacher), jnp.asarray(teacher), jnp.asarray(masks), jnp.asarray(weights), temp)
    np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-6)


def test_lwf_loss_adds_lambda_times_distillation():
    temp, lam = 2.0, 0.6

    def apply3(p, x):
        return jnp.concatenate([x * p["w"][None, :], jnp.zeros((x.shape[0], 1), x.dtype)], axis=1)

    data = _data(k=3)
    masks = np.ones((2, 2, 3), bool)
    masks[0, 0] = [True, True, False]  # task 0's head at task 1: units 0 and 1
    data["masks"] = jnp.asarray(masks)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 2)).astype(np.float32)
    wts = np.array([1, 0, 1, 1, 0.5, 1], np.float32)
    batch = {"x": jnp.asarray(x), "y": jnp.zeros((6,), jnp.int32), "task": jnp.ones((6,), jnp.int32),
             "weight": jnp.asarray(wts)}
    teacher_w, student_w = np.array([1.5, -0.5], np.float32), np.array([-0.4, 0.9], np.float32)
    strat = S.lwf(lam, temperature=temp)
    ctx0, ctx1 = _ctx(data, task=0, lam=lam, apply=apply3), _ctx(data, task=1, lam=lam, apply=apply3)
    state = strat.init(_params(teacher_w), ctx0)
    # no teacher before the first consolidation
    np.testing.assert_allclose(float(strat.loss(state, _params(student_w), batch, ctx0)), _task_loss_np(student_w),
                               rtol=1e-6)
    state = strat.consolidate(state, _params(teacher_w), ctx0)
    got = float(strat.loss(state, _params(student_w), batch, ctx1))
    to_logits = lambda w: np.concatenate([x * w[None, :], np.zeros((6, 1))], axis=1)  # noqa: E731
    kd = _kd_np(to_logits(student_w), to_logits(teacher_w), masks[0][:1], [1.0], temp)
    want = _task_loss_np(student_w) + lam * np.sum(wts * kd) / np.sum(wts)
    np.testing.assert_allclose(got, want, rtol=1e-5)


# ----------------------------------------------------------------------------- 5. A-GEM projection

def test_agem_projection_closed_form():
    rng = np.random.default_rng(6)
    g_ref = {"a": rng.normal(size=(3,)).astype(np.float32), "b": rng.normal(size=(2, 2)).astype(np.float32)}
    flat = lambda t: np.concatenate([np.ravel(t["a"]), np.ravel(t["b"])]).astype(np.float64)  # noqa: E731
    r = flat(g_ref)
    base = {"a": rng.normal(size=(3,)).astype(np.float32), "b": rng.normal(size=(2, 2)).astype(np.float32)}
    # a conflicting gradient: base - c g_ref with c = base.r / r.r + 1 has g . g_ref = -r.r < 0
    c = flat(base) @ r / (r @ r) + 1.0
    conflicting = {k: (v - c * g_ref[k]).astype(np.float32) for k, v in base.items()}
    agreeing = {k: (-v).astype(np.float32) for k, v in conflicting.items()}
    g = flat(conflicting)
    assert g @ r < 0 and flat(agreeing) @ r > 0
    out = S.agem_project(jax.tree_util.tree_map(jnp.asarray, conflicting), jax.tree_util.tree_map(jnp.asarray, g_ref))
    want = g - (g @ r) / (r @ r) * r
    np.testing.assert_allclose(flat(jax.tree_util.tree_map(np.asarray, out)), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat(jax.tree_util.tree_map(np.asarray, out)) @ r, 0.0, atol=1e-5)
    out = S.agem_project(jax.tree_util.tree_map(jnp.asarray, agreeing), jax.tree_util.tree_map(jnp.asarray, g_ref))
    np.testing.assert_array_equal(flat(jax.tree_util.tree_map(np.asarray, out)), flat(agreeing))
    # barely agreeing (g . g_ref = +1e-5 r.r > 0) stays unchanged: the test is strict, g . g_ref < 0
    c_edge = flat(base) @ r / (r @ r) - 1e-5
    edge = {k: (v - c_edge * g_ref[k]).astype(np.float32) for k, v in base.items()}
    assert flat(edge) @ r > 0
    out = S.agem_project(jax.tree_util.tree_map(jnp.asarray, edge), jax.tree_util.tree_map(jnp.asarray, g_ref))
    np.testing.assert_array_equal(flat(jax.tree_util.tree_map(np.asarray, out)), flat(edge))
    # an empty memory (g_ref = 0) leaves g unchanged
    zero = jax.tree_util.tree_map(jnp.zeros_like, g_ref)
    out = S.agem_project(jax.tree_util.tree_map(jnp.asarray, conflicting), zero)
    np.testing.assert_array_equal(flat(jax.tree_util.tree_map(np.asarray, out)), g)


# ----------------------------------------------------------------------------- 6. reservoir sampling

def test_replay_reservoir_inclusion_probability():
    """Algorithm R through replay's own observe hook: after N distinct ids the memory holds
    exactly ``capacity`` distinct ids, and each id is kept with probability capacity / N
    (binomial bound over a few hundred keys, all in one vmapped call)."""
    capacity, n, b, keys = 20, 200, 10, 400
    p = capacity / n
    data = {"x_train": jnp.zeros((1, n, 2)), "y_train": jnp.zeros((1, n), jnp.int32), "masks": jnp.ones((1, 1, 2), bool)}
    strat = S.replay(capacity)
    ids = jnp.arange(n, dtype=jnp.int32).reshape(n // b, b)

    def one(key):
        ctx = _ctx(data)
        state = strat.init(_params([0.0, 0.0]), ctx)

        def step(state, i):
            batch = {"x": jnp.stack([ids[i].astype(jnp.float32), jnp.zeros((b,))], axis=1), "y": ids[i],
                     "task": jnp.zeros((b,), jnp.int32), "weight": jnp.ones((b,))}
            c = ctx._replace(key=jax.random.fold_in(key, i), step=i)
            state = strat.observe(state, None, None, None, batch, c)
            return state, state.filled.sum()

        return jax.lax.scan(step, state, jnp.arange(n // b))

    buf, filled = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(0), keys))
    y, filled_slots = np.asarray(buf.y), np.asarray(buf.filled)
    # capacity respected; the memory fills up at capacity / batch steps, then stays full
    np.testing.assert_array_equal(np.asarray(filled), np.minimum(b * np.arange(1, n // b + 1), capacity)[None].repeat(keys, 0))
    assert filled_slots.all() and (np.asarray(buf.seen) == n).all()
    assert all(len(set(row)) == capacity for row in y), "an id stored twice"
    np.testing.assert_array_equal(np.asarray(buf.x)[:, :, 0], y)  # x and y of a slot stay together
    freq = np.bincount(y.ravel(), minlength=n) / keys
    sigma = np.sqrt(p * (1 - p) / keys)
    assert np.all(np.abs(freq - p) < 5 * sigma), (freq.min(), freq.max(), p)
    # early and late ids are equally likely (a biased draw shows here first)
    for part in (freq[: n // 4], freq[-n // 4:]):
        assert abs(part.mean() - p) < 5 * sigma / np.sqrt(n // 4), (part.mean(), p)


def test_reservoir_keeps_everything_below_capacity():
    buf = membuf.buffer_init(8, (1,))
    buf = membuf.reservoir_add(buf, jnp.arange(5.0)[:, None], jnp.arange(5), jnp.zeros((5,), jnp.int32),
                               jax.random.PRNGKey(1))
    np.testing.assert_array_equal(np.asarray(buf.y)[:5], np.arange(5))
    np.testing.assert_array_equal(np.asarray(buf.filled), [True] * 5 + [False] * 3)


# ----------------------------------------------------------------------------- 7. curves

@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.77, 1.0])
def test_curve_point_bezier_and_polychain(t):
    rng = np.random.default_rng(7)
    make = lambda: {"u": rng.normal(size=(3,)).astype(np.float32), "v": rng.normal(size=(2, 2)).astype(np.float32)}  # noqa: E731
    a, w, b = make(), make(), make()
    to_j = lambda tree: jax.tree_util.tree_map(jnp.asarray, tree)  # noqa: E731
    bez = curve_point("bezier", to_j(a), to_j(w), to_j(b), t)
    poly = curve_point("polychain", to_j(a), to_j(w), to_j(b), t)
    for k in a:
        want_bez = (1 - t) ** 2 * a[k] + 2 * t * (1 - t) * w[k] + t ** 2 * b[k]
        np.testing.assert_allclose(np.asarray(bez[k]), want_bez, rtol=1e-5, atol=1e-6)
        # a -> bend on [0, 1/2], bend -> b on [1/2, 1], constant speed
        want_poly = a[k] + 2 * t * (w[k] - a[k]) if t < 0.5 else w[k] + (2 * t - 1) * (b[k] - w[k])
        np.testing.assert_allclose(np.asarray(poly[k]), want_poly, rtol=1e-5, atol=1e-6)

"""Tests for lossatlas.grads: gradient check, per-example gradients, noise scale, per-class gradients."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas import grads, losses
from lossatlas import models as M

KEY = jax.random.PRNGKey(0)
N = 37  # not a multiple of the chunk size 8: the remainder path is always exercised


def flat(tree):
    """[N, P] float64 numpy from a params tree with a leading example axis."""
    leaves = jax.tree_util.tree_leaves(tree)
    return np.concatenate([np.asarray(x, np.float64).reshape(x.shape[0], -1) for x in leaves], axis=1)


def tree_close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


@pytest.fixture(scope="module")
def problem():
    """A tiny MLP classifier on random data: (loss_fn, params, data=(x, y))."""
    model = M.get_model("mlp", widths=(8,), num_outputs=3)
    kx, ky, kp = jax.random.split(KEY, 3)
    x = jax.random.normal(kx, (N, 5))
    y = jax.random.randint(ky, (N,), 0, 3)
    params = model.init(kp, x[:1])["params"]

    def loss_fn(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    return loss_fn, params, (x, y), model


# ---------------------------------------------------------------- check
@pytest.mark.parametrize("name", ["mlp", "cnn1d", "rnn", "transformer_lm"])
def test_check_models_float64(name):
    cfg = M.tiny_config(name)
    if name == "rnn":
        cfg["cell"] = "tanh"
    model = M.get_model(name, **cfg)
    x = M.example_input(name, batch=3, key=jax.random.PRNGKey(0))
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    if name == "transformer_lm":
        y = jnp.roll(x, -1, axis=1)

        def f(p, x, y):
            return losses.token_nll(model.apply({"params": p}, x), y)
        kw = {"num_coords": 12, "key": KEY}  # 4856 parameters: sample 12 per leaf
    else:
        y = jnp.arange(3) % 3

        def f(p, x, y):
            return losses.cross_entropy(model.apply({"params": p}, x), y)
        kw = {}
    with jax.enable_x64(True):
        err = grads.check(f, params, x, y, **kw)
    names = {"/".join(str(k.key) for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(params)}
    assert set(err) == names | {"max"}
    assert err["max"] == max(v for k, v in err.items() if k != "max")
    assert err["max"] < 1e-6, err


def test_check_detects_a_wrong_gradient():
    @jax.custom_jvp
    def bad_sin(x):
        return jnp.sin(x)

    @bad_sin.defjvp
    def _(primals, tangents):  # derivative off by 10%
        (x,), (t,) = primals, tangents
        return jnp.sin(x), 1.1 * jnp.cos(x) * t

    params = {"w": jnp.linspace(-1.0, 1.0, 7), "b": jnp.arange(3.0)}

    def f(p, scale):
        return jnp.sum(bad_sin(p["w"])) + scale * jnp.sum(p["b"] ** 3)

    with jax.enable_x64(True):
        err = grads.check(f, params, 0.5)
    assert err["w"] == pytest.approx(0.1 / 1.1, rel=1e-4)   # ||0.1 g|| / ||1.1 g||
    assert err["b"] < 1e-8
    assert err["max"] == err["w"]


def test_check_sampled_coordinates_and_float32_fallback(problem):
    loss_fn, params, data, _ = problem
    with jax.enable_x64(True):
        a = grads.check(loss_fn, params, data, num_coords=5, key=KEY, chunk_size=4)
        b = grads.check(loss_fn, params, data, num_coords=5, key=KEY, chunk_size=4)
    assert a == b and a["max"] < 1e-6
    with pytest.warns(UserWarning, match="enable_x64"):
        err = grads.check(loss_fn, params, data)
    assert err["max"] < 3e-2
    assert grads.check(loss_fn, params, data, dtype=jnp.float32)["max"] < 3e-2


# ---------------------------------------------------------------- per_example
def test_per_example_matches_a_loop_and_the_full_gradient(problem):
    loss_fn, params, data, _ = problem
    per = grads.per_example(loss_fn, params, data)
    assert jax.tree_util.tree_structure(per) == jax.tree_util.tree_structure(params)
    grad_fn = jax.jit(jax.grad(loss_fn))
    for i in range(N):
        one = jax.tree_util.tree_map(lambda a: a[i:i + 1], data)
        tree_close(jax.tree_util.tree_map(lambda g: g[i], per), grad_fn(params, one))
    tree_close(jax.tree_util.tree_map(lambda g: g.mean(0), per), jax.grad(loss_fn)(params, data))


def test_per_example_chunked_equals_unchunked(problem):
    loss_fn, params, data, _ = problem
    full = grads.per_example(loss_fn, params, data)
    for size in (8, 1, 100):
        chunked = grads.per_example(loss_fn, params, data, chunk_size=size)
        assert jax.tree_util.tree_leaves(chunked)[0].shape[0] == N
        tree_close(chunked, full)


# ---------------------------------------------------------------- noise
def test_noise_scale_matches_dense_computation(problem):
    loss_fn, params, data, _ = problem
    g = flat(grads.per_example(loss_fn, params, data))            # [N, P]
    mean = g.mean(0)
    tr = np.sum((g - mean) ** 2) / (N - 1)
    var = np.var(g, axis=0, ddof=1)
    snr = np.abs(mean[var > 0]) / np.sqrt(var[var > 0])
    out = grads.noise_scale(loss_fn, params, data, chunk_size=8, batch_size=16)
    np.testing.assert_allclose(flat(jax.tree_util.tree_map(lambda x: x[None], out["mean_grad"]))[0], mean,
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["grad_norm_sq"], mean @ mean, rtol=1e-5)
    np.testing.assert_allclose(out["trace_sigma"], tr, rtol=1e-5)
    np.testing.assert_allclose(out["grad_norm_sq_unbiased"], mean @ mean - tr / N, rtol=1e-4)
    np.testing.assert_allclose(out["b_simple"], tr / (mean @ mean), rtol=1e-5)
    np.testing.assert_allclose(out["snr"], 16 * (mean @ mean) / tr, rtol=1e-5)
    np.testing.assert_allclose(out["coord_snr_mean"], snr.mean(), rtol=1e-4)
    np.testing.assert_allclose(out["coord_snr_median"], np.median(snr), rtol=1e-4)
    assert float(out["num_examples"]) == N
    # The chunk size changes nothing but memory.
    other = grads.noise_scale(loss_fn, params, data, chunk_size=5, batch_size=16)
    np.testing.assert_allclose(other["trace_sigma"], out["trace_sigma"], rtol=1e-5)


def test_b_simple_is_invariant_to_duplicating_the_dataset(problem):
    loss_fn, params, data, _ = problem
    dup = jax.tree_util.tree_map(lambda a: jnp.concatenate([a, a]), data)
    b = float(grads.noise_scale(loss_fn, params, data, chunk_size=8)["b_simple"])
    b2 = float(grads.noise_scale(loss_fn, params, dup, chunk_size=8)["b_simple"])
    # finite-population B_simple (covariance over N) is exactly invariant
    assert b2 * (2 * N - 1) / (2 * N) == pytest.approx(b * (N - 1) / N, rel=1e-5)
    assert b2 == pytest.approx(b, rel=0.02)


def test_minibatch_gradient_error_falls_like_inverse_sqrt_batch(digits):
    model = M.get_model("mlp", widths=(8,), num_outputs=10)
    data = (jnp.asarray(digits.x_train), jnp.asarray(digits.y_train))
    params = model.init(KEY, data[0][:1])["params"]

    def loss_fn(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    n = len(digits.y_train)
    sizes = (1, 4, 16, 64, n)      # without replacement from 1437 examples; B = N is the full gradient
    err = np.asarray(grads.minibatch_gradient_error(loss_fn, params, data, sizes, KEY, num_batches=64,
                                                    chunk_size=256))
    assert err.shape == (len(sizes),) and np.all(np.diff(err) < 0)
    slope = np.polyfit(np.log(sizes[:4]), np.log(err[:4]), 1)[0]
    assert -0.7 <= slope <= -0.3, (slope, err)
    assert err[-1] < 1e-4


# ---------------------------------------------------------------- per class
def test_class_gradients_sum_to_the_full_gradient(problem):
    loss_fn, params, data, _ = problem
    y = data[1]
    out = grads.class_gradients(loss_fn, params, data, y, 3, chunk_size=8)
    np.testing.assert_array_equal(out.counts, np.bincount(np.asarray(y), minlength=3))
    w = out.counts.astype(jnp.float32) / N
    total = jax.tree_util.tree_map(lambda g: jnp.tensordot(w, g, axes=1), out.grads)
    tree_close(total, jax.grad(loss_fn)(params, data))
    cos = np.asarray(out.cosine)
    assert cos.shape == (3, 3)
    np.testing.assert_allclose(cos, cos.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-5)
    assert np.all(np.abs(cos) <= 1 + 1e-5)


def test_class_gradients_with_a_mask_match_a_manual_computation(problem):
    loss_fn, params, data, model = problem
    x, y = data
    wrong = jnp.argmax(model.apply({"params": params}, x), -1) != y
    mask = wrong & (y != 2)               # class 2 gets no selected example
    out = grads.class_gradients(loss_fn, params, data, y, 4, mask=mask, chunk_size=8)
    per = grads.per_example(loss_fn, params, data)   # checked against jax.grad above
    for c in range(4):
        idx = np.flatnonzero(np.asarray(mask & (y == c)))
        assert int(out.counts[c]) == len(idx)
        g_c = jax.tree_util.tree_map(lambda g: g[c], out.grads)
        if len(idx):
            tree_close(g_c, jax.tree_util.tree_map(lambda g: g[idx].mean(0), per))
        else:                              # classes 2 and 3: zero gradient, NaN cosines
            assert all(np.all(np.asarray(g) == 0) for g in jax.tree_util.tree_leaves(g_c))
            assert np.all(np.isnan(out.cosine[c])) and np.all(np.isnan(out.cosine[:, c]))
    assert len(np.flatnonzero(np.asarray(mask & (y == 0)))) > 0
    assert np.isfinite(out.cosine[0, 1]) and out.cosine[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_alignment_pairs_are_drawn_from_the_right_classes():
    # the gradient of w[y] is onehot(y): cosine 1 within a class, 0 between classes
    labels = jnp.array([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4], jnp.int32)  # class 2 and 4 have one example

    def loss_fn(w, batch):
        return jnp.mean(w[batch])

    out = grads.within_between_alignment(loss_fn, jnp.ones(5), labels, labels, 5, num_pairs=50, key=KEY,
                                         chunk_size=16)
    np.testing.assert_allclose(out["within_cosines"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(out["between_cosines"], 0.0, atol=0)
    assert out["within_cosines"].shape == (50,)


def test_within_class_alignment_exceeds_between_class_after_training(digits):
    model = M.get_model("mlp", widths=(32,), num_outputs=10)
    data = (jnp.asarray(digits.x_train), jnp.asarray(digits.y_train))

    def loss_fn(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    params = model.init(KEY, data[0][:1])["params"]
    tx = optax.adam(1e-2)

    @jax.jit
    def train(params):
        def step(carry, _):
            p, s = carry
            updates, s = tx.update(jax.grad(loss_fn)(p, data), s, p)
            return (optax.apply_updates(p, updates), s), None
        return jax.lax.scan(step, (params, tx.init(params)), None, length=60)[0][0]

    params = train(params)
    out = grads.within_between_alignment(loss_fn, params, data, data[1], 10, num_pairs=200, key=KEY)
    assert float(out["within"]) > float(out["between"]) + 0.1, out


# ---------------------------------------------------------------- compile once, bad input
def test_a_second_call_reuses_the_compiled_program(problem):
    _, params, data, model = problem
    traces = []

    def loss_fn(p, batch):
        traces.append(1)
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    grads.noise_scale(loss_fn, params, data, chunk_size=8)
    first = len(traces)
    grads.noise_scale(loss_fn, jax.tree_util.tree_map(lambda p: p * 2, params), data, chunk_size=8)
    assert len(traces) == first


def test_vmap_over_parameter_sets_equals_a_loop(problem):
    loss_fn, params, data, _ = problem
    stacked = jax.tree_util.tree_map(lambda p: jnp.stack([p, 0.5 * p]), params)
    many = jax.jit(jax.vmap(lambda p: grads.noise_scale(loss_fn, p, data, chunk_size=8)["b_simple"]))(stacked)
    for i in range(2):
        one = grads.noise_scale(loss_fn, jax.tree_util.tree_map(lambda p: p[i], stacked), data, chunk_size=8)
        np.testing.assert_allclose(many[i], one["b_simple"], rtol=1e-5)


def test_bad_input_raises_a_value_error_naming_the_field(problem):
    loss_fn, params, (x, y), _ = problem
    data = (x, y)
    cases = [
        (lambda: grads.per_example(loss_fn, params, data, chunk_size=0), "chunk_size"),
        (lambda: grads.per_example(loss_fn, params, (x, y[:-1])), "batch"),
        (lambda: grads.noise_scale(loss_fn, params, (x[:1], y[:1])), "2 examples"),
        (lambda: grads.noise_scale(loss_fn, params, data, batch_size=0), "batch_size"),
        (lambda: grads.minibatch_gradient_error(loss_fn, params, data, (1, N + 1), KEY, 4), "batch_sizes"),
        (lambda: grads.minibatch_gradient_error(loss_fn, params, data, (1,), KEY, 0), "num_batches"),
        (lambda: grads.class_gradients(loss_fn, params, data, y[:-1], 3), "labels"),
        (lambda: grads.class_gradients(loss_fn, params, data, y, 2), "labels"),
        (lambda: grads.class_gradients(loss_fn, params, data, y.astype(jnp.float32), 3), "labels"),
        (lambda: grads.class_gradients(loss_fn, params, data, y, 0), "num_classes"),
        (lambda: grads.class_gradients(loss_fn, params, data, y, 3, mask=y[:3] > 0), "mask"),
        (lambda: grads.within_between_alignment(loss_fn, params, data, y, 3, 0, KEY), "num_pairs"),
        (lambda: grads.within_between_alignment(loss_fn, params, data, jnp.zeros_like(y), 3, 4, KEY),
         "single class"),
        (lambda: grads.check(loss_fn, params, data, num_coords=3), "key"),
        (lambda: grads.check(loss_fn, params, data, eps=-1.0, dtype=jnp.float32), "eps"),
        (lambda: grads.check(loss_fn, params, data, dtype=jnp.int32), "dtype"),
        (lambda: grads.check(lambda p, d: p["dense_0"]["bias"], params, data, dtype=jnp.float32), "scalar"),
        (lambda: grads.check(loss_fn, {"w": jnp.arange(3)}, data, dtype=jnp.float32), "params"),
    ]
    for call, field in cases:
        with pytest.raises(ValueError, match=field):
            call()

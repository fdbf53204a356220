"""Landscape: filter normalisation on real flax kernels, slices against Python loops, trajectory
PCA on a planted path, mode connectivity on a curved valley."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lossatlas import landscape as L
from lossatlas.losses import cross_entropy
from lossatlas.models import get_model, tiny_config

MLP = get_model("mlp", widths=(6,), num_outputs=3)


def loss(p, batch):
    return cross_entropy(MLP.apply({"params": p}, batch[0]), batch[1])


def accuracy(p, batch):
    return jnp.mean((jnp.argmax(MLP.apply({"params": p}, batch[0]), -1) == batch[1]).astype(jnp.float32))


@functools.lru_cache(maxsize=None)
def _problem(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=10).astype(np.int32)
    params = jax.jit(MLP.init)(jax.random.PRNGKey(seed), x[:1])["params"]
    return params, (jnp.asarray(x), jnp.asarray(y))


RANDOM_DIRECTION = jax.jit(L.random_direction, static_argnames=("normalization", "ignore_1d"))
LOSS = jax.jit(loss)


def _filter_norms(leaf):
    return np.sqrt(np.sum(np.square(np.asarray(leaf)), axis=tuple(range(leaf.ndim - 1))))


def test_filter_normalisation_uses_last_axis_of_flax_kernels():
    cfg = tiny_config("cnn2d")                        # channels (4, 8), hidden 16, 3 outputs
    cnn = get_model("cnn2d", **cfg)
    shapes = jax.eval_shape(cnn.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32))
    # flax's own layout: the output features are the last axis of every kernel
    kernels = [x.shape for x in jax.tree_util.tree_leaves(shapes["params"]) if len(x.shape) >= 2]
    assert [k[-1] for k in kernels] == [*cfg["channels"], cfg["hidden"], cfg["num_outputs"]]
    rng = np.random.default_rng(0)
    # filter norms made very different so that normalising the wrong axis cannot pass
    params = jax.tree_util.tree_map(
        lambda s: jnp.asarray(rng.normal(size=s.shape) * (1.0 + np.arange(s.shape[-1])), jnp.float32), shapes["params"])
    d = RANDOM_DIRECTION(jax.random.PRNGKey(1), params)
    kinds = set()
    for (path, p), dl in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree_util.tree_leaves(d)):
        assert dl.shape == p.shape and dl.dtype == p.dtype
        if p.ndim >= 2:                               # Conv [h, w, in, out], Dense [in, out]: filter = [..., j]
            kinds.add(p.ndim)
            np.testing.assert_allclose(_filter_norms(dl), _filter_norms(p), rtol=1e-5)
            rows = np.linalg.norm(np.asarray(dl).reshape(-1, p.shape[-1]), axis=1)
            assert not np.allclose(rows, np.linalg.norm(np.asarray(p).reshape(-1, p.shape[-1]), axis=1), rtol=1e-2)
        else:
            assert np.all(np.asarray(dl) == 0), path   # biases zeroed (ignore_1d)
    assert kinds == {2, 4}
    # layer normalisation and keeping the 1-D leaves
    d = RANDOM_DIRECTION(jax.random.PRNGKey(1), params, normalization="layer", ignore_1d=False)
    for p, dl in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(d)):
        np.testing.assert_allclose(np.linalg.norm(dl), np.linalg.norm(p), rtol=1e-5)
    d = RANDOM_DIRECTION(jax.random.PRNGKey(1), params, normalization="none", ignore_1d=False)
    assert all(np.all(np.asarray(x) != 0) for x in jax.tree_util.tree_leaves(d))
    # a hand-made Dense kernel [in=3, out=2] whose two output filters have norms 1 and 100
    kernel = jnp.array([[1.0, 0.0], [0.0, 100.0], [0.0, 0.0]])
    dk = L.normalize_direction({"k": jnp.ones((3, 2))}, {"k": kernel})["k"]
    np.testing.assert_allclose(np.linalg.norm(dk, axis=0), [1.0, 100.0], rtol=1e-6)


def test_line_and_plane_match_python_loop():
    params, data = _problem(0)
    d1 = RANDOM_DIRECTION(jax.random.PRNGKey(1), params)
    d2 = RANDOM_DIRECTION(jax.random.PRNGKey(2), params)
    shift = jax.jit(lambda p, a, b: jax.tree_util.tree_map(lambda w, u, v: w + a * u + b * v, p, d1, d2))
    ref = lambda a, b: float(LOSS(shift(params, a, b), data))               # noqa: E731
    alphas = jnp.linspace(-1.0, 1.0, 5)
    got = jax.jit(lambda p, al: L.line(loss, p, d1, al, data=data, chunk_size=3, point_batch=2))(params, alphas)
    np.testing.assert_allclose(got, [ref(a, 0.0) for a in alphas], rtol=1e-5)
    np.testing.assert_allclose(got[2], LOSS(params, data), rtol=1e-6)      # alpha = 0
    xs, ys = jnp.array([-0.5, 0.0, 0.5]), jnp.array([-1.0, 0.0, 0.25, 1.0])
    grid = jax.jit(lambda p: L.plane(loss, p, d1, d2, xs, ys, data=data))(params)
    assert grid.shape == (3, 4)
    np.testing.assert_allclose(grid, [[ref(x, y) for y in ys] for x in xs], rtol=1e-5)
    np.testing.assert_allclose(grid[1, 1], LOSS(params, data), rtol=1e-6)


def test_interpolate_endpoints_and_metric():
    (pa, data), (pb, _) = _problem(0), _problem(1)
    out = jax.jit(lambda a, b: L.interpolate(loss, a, b, 7, data=data, chunk_size=4, metric_fn=accuracy,
                                             point_batch=3))(pa, pb)
    assert out.alphas.shape == out.losses.shape == out.metrics.shape == (7,)
    np.testing.assert_allclose([out.alphas[0], out.alphas[-1]], [0.0, 1.0])
    np.testing.assert_allclose([out.losses[0], out.losses[-1]], [LOSS(pa, data), LOSS(pb, data)], rtol=1e-6)
    np.testing.assert_allclose([out.metrics[0], out.metrics[-1]], [accuracy(pa, data), accuracy(pb, data)], atol=1e-6)
    mid = jax.tree_util.tree_map(lambda a, b: 0.5 * a + 0.5 * b, pa, pb)
    np.testing.assert_allclose(out.losses[3], LOSS(mid, data), rtol=1e-5)
    assert L.interpolate(lambda p: loss(p, data), pa, pb, 3).metrics is None


def test_trajectory_projection_recovers_planted_path():
    params, _ = _problem(0)
    final, unravel = ravel_pytree(params)
    n = final.size
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(n, 2)))
    u, v = q[:, 0], q[:, 1]
    t = np.arange(24) * 2 * np.pi / 24                                      # a full period: a is orthogonal to b
    a, b = 3.0 * np.cos(t), np.sin(t)
    path = final[None] + jnp.asarray(a[:, None] * u + b[:, None] * v, jnp.float32)
    checkpoints = jax.vmap(unravel)(path)
    out = jax.jit(L.trajectory_projection)(checkpoints, params)
    assert out.coords.shape == (24, 2)
    np.testing.assert_allclose(np.abs(out.coords), np.abs(np.stack([a, b], 1)), atol=1e-4)
    dirs = jax.vmap(lambda d: ravel_pytree(d)[0])(out.directions)
    np.testing.assert_allclose(np.abs(dirs @ q), np.eye(2), atol=1e-5)
    np.testing.assert_allclose(out.explained_variance_ratio, [0.9, 0.1], atol=1e-5)  # 9 : 1
    # default final (the last checkpoint) and centred PCA: the path is reconstructed exactly
    out = jax.jit(functools.partial(L.trajectory_projection, center=True))(checkpoints)
    dirs = jax.vmap(lambda d: ravel_pytree(d)[0])(out.directions)
    np.testing.assert_allclose(path[-1][None] + out.coords @ dirs, path, atol=1e-5)
    np.testing.assert_allclose(out.coords[-1], 0.0, atol=1e-6)
    np.testing.assert_allclose(jnp.sum(out.explained_variance_ratio), 1.0, rtol=1e-5)


def ring(p, batch=None):
    """Curved valley: zero loss on a circle through (-1, 0) and (1, 0) centred at (0, -0.3);
    the straight line between them crosses the hill at the centre (loss 1 at the origin)."""
    x, y = p["w"][0], p["w"][1]
    r = jnp.square(x) + jnp.square(y + 0.3) - 1.09
    if batch is None:
        return jnp.square(r)
    return jnp.mean(jnp.square(r + batch[:, 0]))                         # per-example offsets


def test_connect_finds_low_loss_curve():
    a, b = {"w": jnp.array([-1.0, 0.0])}, {"w": jnp.array([1.0, 0.0])}
    res = jax.jit(lambda a, b, k: L.connect(ring, a, b, k, num_steps=300, learning_rate=0.05,
                                            num_samples_per_step=8))(a, b, jax.random.PRNGKey(0))
    np.testing.assert_allclose(res.line_barrier, 1.0, rtol=1e-4)
    assert res.curve_barrier < 0.1 * res.line_barrier
    np.testing.assert_allclose([res.curve_losses[0], res.curve_losses[-1]], 0.0, atol=1e-6)   # endpoints fixed
    assert res.bend["w"][1] > 0.3                                        # the bend left the straight line
    assert res.train_losses.shape == (300,) and res.train_losses[-20:].mean() < res.train_losses[:5].mean()
    # polygonal chain trained on minibatches of a dataset (offsets with mean 0: same valley + a constant)
    data = jnp.asarray(np.array([-0.1, 0.1, -0.05, 0.05, 0.0, 0.02, -0.02, 0.0], np.float32)[:, None])
    res = jax.jit(lambda a, b, k: L.connect(ring, a, b, k, curve="polychain", num_steps=300, learning_rate=0.05,
                                            num_samples_per_step=8, data=data, chunk_size=3, batch_size=4))(
        a, b, jax.random.PRNGKey(1))
    assert res.curve_barrier < 0.3 * res.line_barrier
    np.testing.assert_allclose(res.curve_losses[30], ring(res.bend, data), rtol=1e-5)   # t = 0.5 is the bend


def test_bad_inputs_raise_clear_errors():
    params, data = _problem(0)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match=r"^random_direction: normalization must be one of 'filter', 'layer', 'none', "
                                         r"got 'batch'$"):
        L.random_direction(key, params, normalization="batch")
    with pytest.raises(ValueError, match=r"^connect: curve must be one of 'bezier', 'polychain', got 'spline'$"):
        L.connect(ring, {"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, key, curve="spline")
    with pytest.raises(ValueError, match=r"^map_points: point_batch must be an integer >= 1 or None, got 0$"):
        L.line(loss, params, params, jnp.zeros(3), data=data, point_batch=0)
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        L.trajectory_projection(jax.tree_util.tree_map(lambda x: x[None], params))
    with pytest.raises(ValueError, match=r"^connect: batch_size must be None when data is None, got 4$"):
        L.connect(ring, {"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, key, batch_size=4)

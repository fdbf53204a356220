"""lossatlas.batching: chunked dataset means equal the full-batch mean for any chunk size."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import batching

N = 13  # prime: no chunk size in 2..12 divides it


def _data():
    x = jax.random.normal(jax.random.PRNGKey(0), (N, 3))
    x = x.at[0].set(100.0)  # a loud first example: any padding (copies of it) left unmasked shows
    y = jnp.arange(1, N + 1, dtype=jnp.float32)
    return {"x": x, "y": y}


def _mean_fn(w):
    def fn(batch):  # a batch mean, as every analysis loss is
        return jnp.mean(jnp.tanh(batch["x"] @ w) * batch["y"])
    return fn


@pytest.mark.parametrize("size", [1, 4, 5, 12, N, 50])
def test_mean_over_data_equals_unchunked_mean_under_jit(size):
    data, w = _data(), jnp.array([0.3, -0.2, 0.1])
    full = _mean_fn(w)(data)
    chunked = jax.jit(lambda d, w: batching.mean_over_data(_mean_fn(w), d, size))(data, w)
    np.testing.assert_allclose(chunked, full, rtol=1e-5)
    # gradients through the chunked mean equal the full-batch gradient
    g_full = jax.grad(lambda w: _mean_fn(w)(data))(w)
    g_chunk = jax.jit(jax.grad(lambda w: batching.dataset_loss(lambda w, b: _mean_fn(w)(b), data, size)(w)))(w)
    np.testing.assert_allclose(g_chunk, g_full, rtol=1e-5)


@pytest.mark.parametrize("size", [4, 5])
def test_chunk_mask_removes_the_padding_exactly(size):
    data = _data()
    n = batching.num_examples(data)
    chunks, mask = batching.chunk(data, n, size)
    num = -(-N // size)
    assert chunks["x"].shape == (num, size, 3) and mask.shape == (num, size)
    assert float(mask.sum()) == N
    per_example = lambda c: jnp.tanh(c["x"][..., 0]) * c["y"]  # noqa: E731
    masked = jax.jit(lambda c, m: jnp.sum(per_example(c) * m) / N)(chunks, mask)
    np.testing.assert_allclose(masked, jnp.mean(per_example(data)), rtol=1e-6)
    unmasked = jnp.sum(per_example(chunks)) / N  # the padding repeats example 0: visibly wrong
    assert abs(float(unmasked) - float(masked)) > 1e-3
    back = batching.unchunk(chunks, n)
    np.testing.assert_array_equal(back["x"], data["x"])


def test_num_examples_and_chunk_size_refuse_bad_data_in_one_line():
    data = _data()
    with pytest.raises(ValueError, match=r"^f: data must be arrays sharing one leading example axis"):
        batching.num_examples({"x": data["x"], "y": data["y"][:5]}, "f")
    with pytest.raises(ValueError, match=r"^data\['x'\] must have a leading example axis, got a scalar$"):
        batching.num_examples({"x": jnp.float32(1.0)})
    with pytest.raises(ValueError, match=r"^dataset_loss: chunk_size must be an integer >= 1 or None, got 0$"):
        batching.dataset_loss(lambda p, b: 0.0, data, 0)
    with pytest.raises(ValueError, match=r"^mean_over_data: chunk_size must be None when data is None"):
        batching.mean_over_data(lambda b: 0.0, None, 4)

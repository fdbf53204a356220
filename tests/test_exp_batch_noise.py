"""The batch_noise experiment in quick mode: noise scale, critical batch size, escaping a shallow minimum.

The noise scale itself is checked against dense per-example gradients computed here, in
float64 NumPy, from McCandlish et al.'s (2018) definitions: B_simple = tr(Sigma) / |G|^2 with
G the mean per-example gradient and Sigma their covariance, and the minibatch SNR
|G|^2 / (tr(Sigma) / B).
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lossatlas import losses, models
from lossatlas.checks import assert_passed
from lossatlas.grads.noise import noise_scale

NAME = "batch_noise"


def test_batch_noise_quick(run_quick):
    path, res, checks, cfg = run_quick(NAME)
    assert_passed(checks)
    nz = res["noise"]
    assert np.all(np.isfinite(nz["b_simple"])) and np.all(nz["b_simple"] > 0)
    assert res["steps"].shape == (len(cfg.batch_sizes), len(cfg.learning_rates), cfg.seeds)
    reached = res["steps"][np.isfinite(res["steps"])]
    assert np.all((reached > 0) & (reached <= cfg.max_steps))
    esc = res["escape"]
    # runs start off the narrow minimum, left of the barrier; full-batch GD rolls back to the minimum
    assert np.std(esc["start_x"]) > 0.5 * cfg.start_std and np.all(esc["start_x"] < esc["barrier"])
    np.testing.assert_allclose(esc["final_x"][-1], esc["x0"], atol=1e-3)
    for name in ("batch_noise.png", "batch_noise.pdf", "table.md", "checks.json"):
        assert (path / name).exists()


def test_noise_scale_equals_dense_per_example_gradients():
    model = models.get_model("mlp", widths=(5,), num_outputs=3)
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(7), 3)
    n = 37
    x = jax.random.normal(kx, (n, 4))
    y = jax.random.randint(ky, (n,), 0, 3)
    params = model.init(kp, x[:1])["params"]

    def loss_fn(p, batch):
        return losses.cross_entropy(model.apply({"params": p}, batch[0]), batch[1])

    flat, unravel = ravel_pytree(params)
    per_ex = jax.jit(jax.vmap(lambda xi, yi: jax.grad(lambda f: loss_fn(unravel(f), (xi[None], yi[None])))(flat)))(x, y)
    g_nxp = np.asarray(per_ex, np.float64)
    big_g = g_nxp.mean(axis=0)
    sigma = np.cov(g_nxp, rowvar=False, ddof=1)            # per-example gradient covariance [P, P]
    b_simple = np.trace(sigma) / (big_g @ big_g)
    for b, chunk in ((None, 8), (16, 37)):
        ns = noise_scale(loss_fn, params, (x, y), chunk_size=chunk, batch_size=b)
        bb = 1 if b is None else b
        np.testing.assert_allclose(float(ns["grad_norm_sq"]), big_g @ big_g, rtol=1e-5)
        np.testing.assert_allclose(float(ns["trace_sigma"]), np.trace(sigma), rtol=1e-5)
        np.testing.assert_allclose(float(ns["b_simple"]), b_simple, rtol=1e-5)
        np.testing.assert_allclose(float(ns["snr"]), (big_g @ big_g) / (np.trace(sigma) / bb), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(ravel_pytree(ns["mean_grad"])[0]), big_g, rtol=1e-5, atol=1e-7)
    # a minibatch of B examples has gradient noise E|g_B - G|^2 = tr(Sigma) / B (with replacement)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, (20000, 4))
    err = np.mean(np.sum(np.square(g_nxp[idx].mean(axis=1) - big_g), axis=1))
    np.testing.assert_allclose(err, np.trace(sigma) * (n - 1) / n / 4, rtol=0.05)

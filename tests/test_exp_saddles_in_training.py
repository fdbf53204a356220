"""saddles_in_training in quick mode, the overlap mathematics against a dense eigh projection on a
tiny trained net, and config validation."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lossatlas import curvature, train
from lossatlas.checks import assert_passed
from lossatlas_experiments import kit
from lossatlas_experiments import saddles_in_training as sit


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick("saddles_in_training")


def test_quick_run_checks_pass(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    assert (path / "saddles_in_training.png").exists() and (path / "table.md").exists()
    G, S, K = len(cfg.momentums), cfg.seeds, len(cfg.checkpoint_steps)
    for name in ("index", "index_stderr", "loss", "top_overlap", "bottom_overlap"):
        assert res[name].shape == (G, S, K) and np.all(np.isfinite(res[name])), name
    assert not res["diverged"].any()
    assert np.all((res["index"] >= 0) & (res["index"] <= 1)) and np.all(res["index_stderr"] >= 0)
    assert np.all(res["index_stderr"][..., 0] > 0)           # probes disagree at init (a spread spectrum)
    # the two optimizers start from the same initial points (the grid axis does not change the init)
    np.testing.assert_allclose(res["loss"][0, :, 0], res["loss"][1, :, 0], rtol=1e-6)
    np.testing.assert_allclose(res["chance"], cfg.k / int(res["num_params"]), rtol=1e-6)
    assert res["density"].shape == (2, G, S, len(res["density_x"]))


def _tiny():
    cfg = sit.Config(num_train=200, widths=(5,), epochs=2, batch_size=50, checkpoint_steps=(0, 4, 8),
                     curvature_examples=40, num_steps=10, num_probes=4, eig_iters=8, k=3, seeds=3)
    ds = kit.dataset(cfg)
    return cfg, ds, sit.train_config(cfg)


def test_overlap_equals_dense_eigh_projection_on_a_tiny_net():
    """eigenspace_overlap on a trained tiny MLP (40-5-10, 265 parameters), as the experiment calls
    it, with Lanczos run to the full dimension, equals projecting the gradient on jnp.linalg.eigh's
    top-k / bottom-k eigenvectors of the dense Hessian (float64)."""
    cfg, ds, tcfg = _tiny()
    state, _ = train.make_train(tcfg, ds)(jax.random.PRNGKey(1))
    fns = train.model_fns(tcfg, ds)
    with jax.enable_x64(True):
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), state.params)
        data = (jnp.asarray(ds.x_train[:40], jnp.float64), jnp.asarray(ds.y_train[:40]))
        loss = lambda p, b: fns.loss(p, state.model_state, b)  # noqa: E731
        flat, unravel = ravel_pytree(params)
        n = flat.size
        hess = np.asarray(jax.jit(jax.hessian(lambda f: loss(unravel(f), data)))(flat))
        lam, vecs = np.linalg.eigh(0.5 * (hess + hess.T))
        g = np.asarray(ravel_pytree(jax.grad(loss)(params, data))[0])
        out = jax.jit(lambda p, k: curvature.eigenspace_overlap(loss, p, 3, k, num_iters=n, data=data,
                                                                chunk_size=16))(params, jax.random.PRNGKey(2))
    assert lam[0] < 0 < lam[-1]                          # a real saddle-type spectrum
    proj = lambda v: np.sum((v.T @ g) ** 2) / (g @ g)    # noqa: E731
    np.testing.assert_allclose(out.top_overlap, proj(vecs[:, -3:]), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out.bottom_overlap, proj(vecs[:, :3]), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(out.bottom_values, lam[:3], atol=1e-8 * lam[-1])
    np.testing.assert_allclose(out.chance, 3 / n)


@pytest.mark.parametrize("field,value", [
    ("momentums", (0.9,)), ("momentums", (0.0, 1.0)), ("momentums", (0.5, 0.5)), ("seeds", 2),
    ("checkpoint_steps", (10, 100, 4000)), ("checkpoint_steps", (0, 100)), ("checkpoint_steps", (0, 100, 3999)),
    ("eig_iters", 15), ("curvature_examples", 5000), ("index_rel_tol", 1.0), ("dataset", "digits"),
    ("density_sigma", 0.0), ("activation", "sigmoid"), ("widths", ()), ("k", 0),
])
def test_bad_config_raises_a_one_line_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^Config\.{field} must be") as err:
        dataclasses.replace(sit.Config(), **{field: value})
    assert "\n" not in str(err.value)

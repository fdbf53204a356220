"""TrainConfig.precision: bf16 computes the model in bfloat16, float32 is the unchanged default."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas.train import TrainConfig, program, sweep

BASE = TrainConfig(model="mlp", model_cfg={"widths": (32, 32)}, learning_rate=1e-2, batch_size=64, epochs=2,
                   eval_batch_size=128)


@pytest.fixture(scope="module")
def small(mnist1d):
    return mnist1d.subset(num_train=512, num_test=200)


def test_precision_is_validated():
    with pytest.raises(ValueError, match=r"TrainConfig\.precision.*'float32', 'tf32', 'bf16'"):
        BASE.replace(precision="fp16")
    assert BASE.precision == "float32"


def test_forward_at_each_precision(small):
    """float32 is the plain flax forward bit for bit; bf16 is exactly the forward on bf16-cast
    params and inputs (returned as float32), a different but close result."""
    prog = program(BASE, small)
    params = prog.init(jax.random.PRNGKey(0), prog.hparams()).params
    x = jnp.asarray(small.x_test[:64])
    plain = prog.model.apply({"params": params}, x)
    f32, _ = prog.apply(params, {}, x, train=False)
    np.testing.assert_array_equal(np.asarray(f32), np.asarray(plain))

    bf = program(BASE.replace(precision="bf16"), small)
    out, _ = bf.apply(params, {}, x, train=False)
    assert out.dtype == jnp.float32
    cast = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), params)
    manual = bf.model.apply({"params": cast}, x.astype(jnp.bfloat16)).astype(jnp.float32)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(manual))
    rel = float(jnp.max(jnp.abs(out - plain)) / jnp.max(jnp.abs(plain)))
    assert 1e-5 < rel < 3e-2  # bf16 has an 8-bit mantissa: relative rounding ~ 2^-8 per op


def test_tf32_sets_matmul_precision_while_tracing(small):
    """tf32 traces every matmul with Precision.HIGH (JAX's name for tensorfloat32); float32 keeps
    the process default (what a plain flax forward gets)."""
    def precisions(cfg):
        prog = program(cfg, small)
        params = prog.init(jax.random.PRNGKey(0), prog.hparams()).params
        jaxpr = jax.make_jaxpr(lambda p, x: prog.apply(p, {}, x, train=False)[0])(params, small.x_test[:4])
        return [e.params["precision"] for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]

    tf32, f32 = precisions(BASE.replace(precision="tf32")), precisions(BASE)
    assert len(tf32) == 3 and all(p == (jax.lax.Precision.HIGH,) * 2 for p in tf32), tf32
    prog = program(BASE, small)
    params = prog.init(jax.random.PRNGKey(0), prog.hparams()).params
    plain = jax.make_jaxpr(lambda p, x: prog.model.apply({"params": p}, x))(params, small.x_test[:4])
    assert f32 == [e.params["precision"] for e in plain.jaxpr.eqns if e.primitive.name == "dot_general"]


def test_bf16_sweep_is_close_to_float32(small):
    """Same seeds, same data order: bf16 training differs from float32 but tracks it."""
    key = jax.random.PRNGKey(3)
    _, h32 = sweep(BASE, small, seeds=2, key=key)
    _, h16 = sweep(BASE.replace(precision="bf16"), small, seeds=2, key=key)
    l32, l16 = np.asarray(h32["test_loss"]), np.asarray(h16["test_loss"])
    assert not np.array_equal(l32, l16)
    np.testing.assert_allclose(l16, l32, rtol=0.1)
    assert np.all(np.asarray(h16["loss"]).dtype == np.float32)

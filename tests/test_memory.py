"""lossatlas.memory: XLA's estimate, chunked vmapped programs equal to fused ones, the refusal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lossatlas as la
from lossatlas import continual as cl
from lossatlas import memory


def test_estimate_matches_known_buffers():
    n = 512
    f = jax.jit(lambda x: jnp.tanh(x) * 2.0)  # one [n, n] float32 in, one out
    x = jax.ShapeDtypeStruct((n, n), jnp.float32)
    est = memory.analyze(f.lower(x).compile())
    assert est.argument == n * n * 4 and est.output == n * n * 4
    total = memory.estimate(f, x)
    assert 2 * n * n * 4 <= total <= 3 * 2 * n * n * 4
    # a vmapped program's estimate grows about linearly with its members
    g = jax.jit(jax.vmap(lambda k: jnp.sum(jax.random.normal(k, (256, 256)) @ jnp.ones((256, 256)))))
    est = [memory.estimate(g, jax.ShapeDtypeStruct((m, 2), jnp.uint32)) for m in (4, 8, 16)]
    assert est[0] < est[1] < est[2] and 0.5 < (est[2] - est[1]) / (2 * (est[1] - est[0])) < 2


def test_limit_sources(monkeypatch):
    monkeypatch.delenv(memory.ENV_VAR, raising=False)
    free = memory.available_bytes()
    assert free is not None and free > 0  # CPU: available RAM
    cap, source = memory.limit_bytes()
    assert cap == pytest.approx(memory.SAFETY_FRACTION * free, rel=0.2) and "free" in source
    monkeypatch.setenv(memory.ENV_VAR, "1.5G")
    assert memory.limit_bytes() == (1.5 * 2**30, memory.ENV_VAR)
    with memory.limit(1234):
        assert memory.limit_bytes()[0] == 1234
    monkeypatch.setenv(memory.ENV_VAR, "lots")
    with pytest.raises(ValueError, match="LOSSATLAS_MEMORY_LIMIT='lots' is not a byte count"):
        memory.limit_bytes()


def _close(a, b, **kw):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_run_vmapped_chunks_both_axes_with_padding():
    # f(keys [S], scales [G]) -> [G, S]: 3 x 5 members, cut so that even one grid point is too big
    f = jax.jit(jax.vmap(jax.vmap(lambda k, s: jnp.sum(jnp.tanh(s * jax.random.normal(k, (128, 128))), 0),
                                  (0, None)), (None, 0)))
    keys, scales = jax.random.split(jax.random.PRNGKey(0), 5), jnp.asarray([0.5, 1.0, 2.0])
    full = memory.run_vmapped(f, (keys, scales), (1, 0), what="toy", lower="seeds")
    assert not memory.last_plan.chunked
    one_two = memory.estimate(f, jax.ShapeDtypeStruct((2, 2), jnp.uint32), jax.ShapeDtypeStruct((1,), jnp.float32))
    one_three = memory.estimate(f, jax.ShapeDtypeStruct((3, 2), jnp.uint32), jax.ShapeDtypeStruct((1,), jnp.float32))
    with memory.limit((one_two + one_three) / 2):
        dry = memory.plan(f, (jax.ShapeDtypeStruct((5, 2), jnp.uint32), jax.ShapeDtypeStruct((3,), jnp.float32)),
                          (1, 0))  # a dry run on shapes
        out = memory.run_vmapped(f, (keys, scales), (1, 0), what="toy", lower="seeds")
    plan = memory.last_plan
    assert dry.chunks == plan.chunks == (1, 2) and plan.num_chunks == 9 and plan.required <= plan.limit
    assert plan.compiles == 0  # the dry run's executables are reused
    assert out.shape == full.shape == (3, 5, 128)
    np.testing.assert_allclose(out, full, rtol=1e-6, atol=1e-6)  # every member equals its fused self
    with memory.limit(one_two / 4), pytest.raises(memory.MemoryLimitError) as err:
        memory.run_vmapped(f, (keys, scales), (1, 0), what="toy", lower="seeds")
    assert "\n" not in str(err.value) and "toy: needs ~" in str(err.value) and str(err.value).endswith("lower seeds")


@pytest.fixture(scope="module")
def tiny_sweep(digits):
    cfg = la.TrainConfig(model="mlp", model_cfg={"widths": (16,)}, optimizer="sgd", learning_rate=0.1,
                         batch_size=64, epochs=2)
    grid = {"learning_rate": [0.3, 0.1, 0.03]}
    prog = la.train.program(cfg, digits)
    traces = prog.num_traces
    state, hist = la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)
    plan = memory.last_plan
    assert prog.num_traces == traces + 1 and plan.compiles == 1 and not plan.chunked  # the default path
    return cfg, grid, (state, hist), plan


def test_sweep_chunked_equals_fused(tiny_sweep, digits, monkeypatch):
    cfg, grid, fused, plan = tiny_sweep
    assert plan.sizes == (3, 2)
    monkeypatch.setenv(memory.ENV_VAR, str(int(plan.required) - 1))  # just too small for the fused run
    chunked = la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)
    cplan = memory.last_plan
    assert cplan.chunked and cplan.source == memory.ENV_VAR and cplan.chunks[0] < 3
    assert cplan.compiles <= 2  # the smallest chunk and the chosen chunk, no more
    _close(chunked, fused, rtol=1e-5, atol=1e-6)
    again = la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)  # cached executables: nothing compiles
    assert memory.last_plan.compiles == 0
    _close(again, chunked, rtol=0, atol=0)


def test_impossible_limit_names_what_to_lower(tiny_sweep, digits):
    cfg, grid, _, _ = tiny_sweep
    with memory.limit(1000), pytest.raises(memory.MemoryLimitError) as err:
        la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)
    msg = str(err.value)
    assert isinstance(err.value, MemoryError) and isinstance(err.value, ValueError) and "\n" not in msg
    assert msg.startswith("sweep (mlp x3 points x2 seeds): needs ~") and "1000 B is available" in msg
    assert msg.endswith("lower " + la.train.engine.MEMORY_HINT)
    with memory.limit(1000), pytest.raises(memory.MemoryLimitError, match="^make_train: needs ~.* lower seeds"):
        la.make_train(cfg, digits)(jax.random.PRNGKey(0))


def test_chunked_epochs_path_is_estimated_and_refused(tiny_sweep, digits):
    """Inside a checkpointing block (how the CLI runs) a chunk of epochs is estimated too: an
    impossible limit is a one-line refusal, and a normal one runs the checked executable."""
    from lossatlas import checkpoint
    cfg, grid, fused, _ = tiny_sweep
    with checkpoint.checkpointing(None), memory.limit(1000), pytest.raises(memory.MemoryLimitError) as err:
        la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)
    assert str(err.value).startswith("sweep (mlp x3 points x2 seeds): needs ~") and "\n" not in str(err.value)
    with checkpoint.checkpointing(None):
        chunked = la.sweep(cfg, digits, key=jax.random.PRNGKey(0), seeds=2, grid=grid)
    _close(chunked, fused, rtol=1e-4, atol=1e-5)


LAMS = [0.0, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]


def test_run_stream_chunked_equals_fused(digits):
    stream = cl.permuted(digits, 2, jax.random.PRNGKey(0)).subset(num_train=64, num_test=40)
    cfg = cl.StreamConfig(model_cfg={"widths": (16,)}, learning_rate=0.1, batch_size=32, epochs=1, eval_every=1)
    fused = cl.run_stream(stream, cl.ewc(fisher="exact", chunk_size=8), cfg, key=jax.random.PRNGKey(0), seeds=2, lams=LAMS)
    plan = memory.last_plan
    assert plan.sizes == (1, len(LAMS), 2) and not plan.chunked  # [streams, lambdas, seeds]
    # XLA's estimate of a chunk program is not a fixed fraction of the whole (buffers shared by
    # every member): with 8 lambdas, 75% of the whole makes it chunk over lambdas
    with memory.limit(int(plan.required * 0.75)):
        chunked = cl.run_stream(stream, cl.ewc(fisher="exact", chunk_size=8), cfg, key=jax.random.PRNGKey(0), seeds=2, lams=LAMS)
    assert memory.last_plan.chunked and memory.last_plan.chunks[1] < len(LAMS)
    for k in ("R", "init_acc", "loss", "curves", "diverged_at"):
        np.testing.assert_allclose(chunked[k], fused[k], rtol=1e-5, atol=1e-6, err_msg=k)
    with memory.limit(1000), pytest.raises(memory.MemoryLimitError, match=r"^run_stream \(ewc .*\): .* lower seeds"):
        cl.run_stream(stream, cl.ewc(fisher="exact", chunk_size=8), cfg, key=jax.random.PRNGKey(0), seeds=2, lams=LAMS)

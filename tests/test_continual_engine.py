"""The stream program is train's engine: one-task stream == make_train; methods and streams as vmap axes."""
import jax
import numpy as np
import pytest

from lossatlas import continual as cl
from lossatlas import data, train

KEY = jax.random.PRNGKey(0)
leaves = jax.tree_util.tree_leaves


@pytest.fixture(scope="module")
def stream2(digits):
    return cl.permuted(digits, 2, KEY).subset(num_train=96, num_test=60)


def test_one_task_naive_stream_is_make_train(digits):
    """Same key, same config: the parameters after a one-task naive stream are make_train's (Adam, clipping,
    weight decay and init_scale come from the same train program)."""
    st = cl.permuted(digits, 1, KEY).subset(num_train=96, num_test=40)
    cfg = cl.StreamConfig(model_cfg={"widths": (16,)}, optimizer="adamw", learning_rate=3e-3, weight_decay=1e-2,
                          clip_norm=1.0, init_scale=0.7, batch_size=16, epochs=3, keep_params=True)
    assert isinstance(cfg, train.TrainConfig)
    key = jax.random.PRNGKey(3)
    out = cl.run_stream(st, cl.naive(), cfg, key=key)
    ds = data.Dataset("task0", st.x_train[0], st.y_train[0], st.x_test[0], st.y_test[0], st.num_outputs)
    state, hist = train.make_train(cfg.train_config(), ds)(jax.random.split(key, 1)[0])
    for a, b in zip(leaves(out["params"]), leaves(state.params)):
        np.testing.assert_allclose(a[0, 0, 0], b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["loss"][0, 0], hist["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["R"][0, 0, 0, 0], hist["test_acc"][-1], atol=1e-6)
    # and the initial parameters are the ones init_params gives for that key
    init = cl.init_params(st, cfg, jax.random.split(key, 1)[0])
    moved = [np.abs(a[0, 0, 0] - b).max() for a, b in zip(leaves(out["params"]), leaves(init))]
    assert max(moved) > 1e-3


def test_stack_member_equals_strategy_alone(stream2):
    """Member i of a stack (one program: member x lambda x seed) follows strategy i run alone, same key."""
    cfg = cl.StreamConfig(model_cfg={"widths": (16,)}, batch_size=16, epochs=2, keep_params=True)
    members = {"l2": cl.l2(), "ewc": cl.ewc(fisher="empirical"), "si": cl.si()}
    stack = cl.stack_strategies(members)
    key, lams = jax.random.PRNGKey(4), [0.5, 20.0]
    both = cl.run_stream(stream2, stack, cfg, key=key, seeds=2, lams=lams)
    assert both["R"].shape == (3, 2, 2, 2, 2) and both["members"] == ("l2", "ewc", "si")
    for i, (name, strat) in enumerate(members.items()):
        alone = cl.run_stream(stream2, strat, cfg, key=key, seeds=2, lams=lams)
        np.testing.assert_allclose(both["loss"][i], alone["loss"], rtol=1e-4, atol=1e-6, err_msg=name)
        for a, b in zip(leaves(both["params"]), leaves(alone["params"])):
            np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5, err_msg=name)
    # the members really differ (the index is not ignored)
    assert not np.allclose(both["loss"][0], both["loss"][1])


def test_one_point_one_stream_vmaps_only_the_seeds(stream2):
    """A size-1 point or stream axis is indexed, not vmapped: every vmap level re-batches each scan body
    while tracing (the warm-cache cost of a run), so one strategy on one stream traces one batch level;
    the numbers are those of the same point inside a larger grid."""
    from lossatlas.continual import run as run_mod
    from lossatlas.continual.program import host_data
    cfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=16)
    prog = cl.program(stream2, cl.ewc(fisher="empirical"), cfg)
    data = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], host_data(stream2))
    keys = jax.random.split(KEY, 3)
    jaxpr = jax.make_jaxpr(run_mod._fused(prog))(keys, (np.zeros(1, np.int32), np.ones(1, np.float32)), data)

    def first_scan(jx):  # the task scan (outermost), inside the jit
        for e in jx.eqns:
            if e.primitive.name == "scan":
                return e
            inner = e.params.get("jaxpr")
            found = inner is not None and first_scan(getattr(inner, "jaxpr", inner))
            if found:
                return found
        return None
    task_scan = first_scan(jaxpr.jaxpr)
    carry = [v.aval.shape for v in task_scan.outvars[:task_scan.params["num_carry"]]]
    assert carry and all(s[:1] == (3,) for s in carry if s), carry  # [seeds, ...], not [1, 1, seeds, ...]
    one = cl.run_stream(stream2, cl.ewc(fisher="empirical"), cfg, key=KEY, seeds=3, lams=[10.0])
    grid = cl.run_stream(stream2, cl.ewc(fisher="empirical"), cfg, key=KEY, seeds=3, lams=[0.0, 10.0])
    np.testing.assert_allclose(one["loss"][0], grid["loss"][1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one["R"][0], grid["R"][1], atol=1e-6)


def test_stack_with_a_grid_per_member(stream2):
    """A mapping of grids runs as one flat axis of (member, lambda) points."""
    cfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=16)
    stack = cl.stack_strategies([cl.naive(), cl.l2()])
    out = cl.run_stream(stream2, stack, cfg, key=KEY, lams={"naive": [0.0], "l2": [1.0, 100.0]})
    np.testing.assert_array_equal(out["member"], [0, 1, 1])
    np.testing.assert_array_equal(out["lams"], [0.0, 1.0, 100.0])
    alone = cl.run_stream(stream2, cl.l2(), cfg, key=KEY, lams=[1.0, 100.0])
    np.testing.assert_allclose(out["loss"][1:], alone["loss"], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"lams must give a list for every member \['naive', 'l2'\]"):
        cl.run_stream(stream2, stack, cfg, key=KEY, lams={"l2": [1.0]})
    with pytest.raises(ValueError, match="labels must be distinct"):
        cl.stack_strategies([cl.ewc(), cl.ewc(fisher="sampled")])


def test_streams_and_validation_as_data(stream2, digits):
    """A list of same-shaped streams is a leading axis equal to separate runs; validation on the test
    stream itself reproduces R."""
    other = cl.permuted(digits, 2, jax.random.PRNGKey(9)).subset(num_train=96, num_test=60)
    cfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=16, epochs=2)
    key = jax.random.PRNGKey(2)
    out = cl.run_stream([stream2, other], cl.ewc(), cfg, key=key, seeds=2, lams=[1.0],
                        validation=[stream2, other])
    assert out["R"].shape == (2, 1, 2, 2, 2)
    np.testing.assert_array_equal(out["val_R"], out["R"])
    for d, s in enumerate((stream2, other)):
        alone = cl.run_stream(s, cl.ewc(), cfg, key=key, seeds=2, lams=[1.0])
        np.testing.assert_allclose(out["loss"][d], alone["loss"], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out["R"][d], alone["R"], atol=1.5 / 60)
    assert not np.allclose(out["loss"][0], out["loss"][1])
    with pytest.raises(ValueError, match=r"stream\[1\] must have the shapes of stream\[0\]"):
        cl.run_stream([stream2, other.subset(num_train=50)], cl.naive(), cfg, key=key)


def test_key_is_required_and_config_is_checked_once(stream2):
    cfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=16)
    with pytest.raises(ValueError, match="run_stream: key is required"):
        cl.run_stream(stream2, cl.naive(), cfg, key=None)
    with pytest.raises(ValueError, match=r"^StreamConfig.learning_rate must be a number >= 0, got -1.0$"):
        cl.StreamConfig(learning_rate=-1.0)
    with pytest.raises(ValueError, match=r"^StreamConfig.eval_every must be an integer >= 0, got -1$"):
        cl.StreamConfig(eval_every=-1)
    with pytest.raises(ValueError, match="StreamConfig.loss must be one of None, 'cross_entropy', got 'mse'"):
        cl.StreamConfig(loss="mse")
    with pytest.raises(ValueError, match="StreamConfig has no field"):
        cfg.replace(lam=1.0)

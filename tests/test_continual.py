"""lossatlas.continual: streams, Fisher estimators, memory, strategies, stream program, metrics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import continual as cl
from lossatlas import data, grads, models, train
from lossatlas.continual import buffer as membuf
from lossatlas.continual.program import host_data

KEY = jax.random.PRNGKey(0)


# ------------------------------------------------------------------------------- metrics

R3 = np.array([[0.9, 0.1, 0.2],
               [0.7, 0.8, 0.3],
               [0.6, 0.5, 0.95]])
B3 = np.array([0.1, 0.15, 0.1])


def test_metrics_by_hand():
    assert np.isclose(cl.average_accuracy(R3), (0.6 + 0.5 + 0.95) / 3)
    assert np.isclose(cl.learning_accuracy(R3), (0.9 + 0.8 + 0.95) / 3)
    assert np.isclose(cl.backward_transfer(R3), ((0.6 - 0.9) + (0.5 - 0.8)) / 2)
    assert np.isclose(cl.forward_transfer(R3, B3), ((0.1 - 0.15) + (0.3 - 0.1)) / 2)
    # forgetting: task 0 max(0.9, 0.7) - 0.6; task 1 max(0.1, 0.8) - 0.5
    np.testing.assert_allclose(cl.forgetting_per_task(R3), [0.3, 0.3])
    assert np.isclose(cl.forgetting(R3), 0.3)
    ref = np.array([0.95, 0.9, 0.97])
    assert np.isclose(cl.intransigence(R3, ref), ((0.95 - 0.9) + (0.9 - 0.8) + (0.97 - 0.95)) / 3)
    # leading axes: [2 lambdas, 3 seeds, T, T] -> [2, 3]
    stack = np.broadcast_to(R3, (2, 3, 3, 3))
    s = cl.summarize(stack, np.broadcast_to(B3, (2, 3, 3)), reference=ref)
    assert set(s) == {"acc", "learning_acc", "bwt", "forgetting", "fwt", "intransigence", "diverged"}
    assert not s["diverged"].any()
    assert all(v.shape == (2, 3) for v in s.values())
    np.testing.assert_allclose(s["bwt"], cl.backward_transfer(R3))


def test_forgetting_uses_every_earlier_row():
    # task 0 peaks after task 1 (positive backward transfer), then drops: forgetting measures from the peak
    r = np.array([[0.5, 0.0, 0.0], [0.9, 0.6, 0.0], [0.4, 0.6, 0.7]])
    np.testing.assert_allclose(cl.forgetting_per_task(r), [0.5, 0.0])
    assert np.isclose(cl.backward_transfer(r), ((0.4 - 0.5) + 0.0) / 2)


def test_mean_ci():
    v = np.array([[1.0, 2.0, 3.0, 4.0]])
    mean, half = cl.mean_ci(v, axis=-1)
    from scipy import stats
    assert np.isclose(mean[0], 2.5)
    assert np.isclose(half[0], stats.t.ppf(0.975, 3) * np.std(v[0], ddof=1) / 2)
    m1, h1 = cl.mean_ci(np.array([0.3]), axis=0)
    assert m1 == 0.3 and h1 == 0


def test_diverged_members_are_flagged_and_left_out():
    r = np.broadcast_to(R3, (2, 3, 3)).copy()  # [seeds=2, T, T]
    r[1, 1:] = np.nan  # seed 1 diverged during task 1
    s = cl.summarize(r, np.broadcast_to(B3, (2, 3)))
    np.testing.assert_array_equal(s["diverged"], [False, True])
    assert all(np.isnan(v[1]) and np.isclose(v[0], s2) for k, v in s.items() if k != "diverged"
               for s2 in [cl.summarize(R3, B3)[k]])
    mean, half, n = cl.mean_ci(s["acc"], axis=0, return_count=True)
    assert np.isclose(mean, cl.average_accuracy(R3)) and half == 0 and n == 1  # over the survivor only
    d = cl.summarize(np.broadcast_to(R3, (2, 3, 3)), diverged_at=np.array([-1, 7]))  # flagged by the step
    np.testing.assert_array_equal(d["diverged"], [False, True])
    assert np.isnan(d["acc"][1]) and not np.isnan(d["acc"][0])
    m, h = cl.mean_ci(np.full((3,), np.nan))
    assert np.isnan(m) and np.isnan(h)


def test_metric_errors():
    with pytest.raises(ValueError, match=r"R must be \[\.\.\., T, T\]"):
        cl.average_accuracy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="at least 2 tasks"):
        cl.backward_transfer(np.ones((1, 1)))
    with pytest.raises(ValueError, match="init_acc must be"):
        cl.forward_transfer(R3, np.zeros(2))


# ------------------------------------------------------------------------------- streams

@pytest.fixture(scope="module")
def digits_ds():
    return data.load("digits")


def test_permuted_stream(digits_ds):
    st = cl.permuted(digits_ds, 4, KEY, scenario="domain")
    perms = st.meta["permutations"]
    assert perms.shape == (4, 64)
    for p in perms:
        assert np.array_equal(np.sort(p), np.arange(64))
    assert np.array_equal(perms[0], np.arange(64))  # keep_first
    assert len({tuple(p) for p in perms}) == 4
    np.testing.assert_array_equal(st.x_train[2], digits_ds.x_train[:, perms[2]])
    np.testing.assert_array_equal(st.y_train[3], digits_ds.y_train)
    assert st.num_outputs == 10 and st.masks.all()
    # same key, same stream; another key, other permutations
    assert np.array_equal(cl.permuted(digits_ds, 4, KEY).meta["permutations"], perms)
    assert not np.array_equal(cl.permuted(digits_ds, 4, jax.random.PRNGKey(1)).meta["permutations"], perms)


def test_permuted_task_and_class_masks(digits_ds):
    t_il = cl.permuted(digits_ds, 3, KEY, scenario="task")
    c_il = cl.permuted(digits_ds, 3, KEY, scenario="class")
    for st in (t_il, c_il):
        assert st.num_outputs == 30
        np.testing.assert_array_equal(st.y_train[2], digits_ds.y_train + 20)
    own = np.zeros((3, 30), bool)
    for t in range(3):
        own[t, 10 * t:10 * (t + 1)] = True
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(t_il.masks[i, j], own[j])  # task id given: the task's own head
            np.testing.assert_array_equal(c_il.masks[i, j], own[:max(i, j) + 1].any(0))  # classes seen so far


def test_split_stream_partitions_classes(digits_ds):
    st = cl.split(digits_ds, KEY, classes_per_task=2, scenario="class")
    groups = st.meta["task_classes"]
    assert groups.shape == (5, 2)
    assert sorted(groups.ravel().tolist()) == list(range(10))  # a partition of the labels
    for t in range(5):
        assert set(np.unique(st.y_train[t])) == set(groups[t].tolist())
        assert set(np.unique(st.y_test[t])) == set(groups[t].tolist())
        # class-IL: units of every class seen so far
        np.testing.assert_array_equal(np.flatnonzero(st.masks[t, 0]), np.sort(groups[:t + 1].ravel()))
    # equal sizes per task: the smallest task's count
    counts = [min(np.isin(digits_ds.y_train, g).sum() for g in groups)]
    assert st.num_train == counts[0]
    dom = cl.split(digits_ds, KEY, classes_per_task=2, scenario="domain")
    assert dom.num_outputs == 2 and set(np.unique(dom.y_train)) == {0, 1}
    # within-task label = position of the class in its group
    x0 = dom.x_train[1][dom.y_train[1] == 1][0]
    assert any(np.array_equal(x0, x) for x in digits_ds.x_train[digits_ds.y_train == groups[1, 1]])
    task = cl.split(digits_ds, KEY, classes_per_task=5, scenario="task")
    assert task.num_tasks == 2 and task.masks[1, 0].sum() == 5 and not (task.masks[0, 0] & task.masks[0, 1]).any()
    natural = cl.split(digits_ds, KEY, shuffle_classes=False)
    assert natural.meta["task_classes"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


def test_rotated_stream(digits_ds):
    st = cl.rotated(digits_ds, 3, angles=[0.0, 90.0, 180.0])
    img = digits_ds.x_train.reshape(-1, 8, 8)
    r90 = st.x_train[1].reshape(-1, 8, 8)
    # a quarter turn maps the pixel grid onto itself: bilinear rotation is exact
    assert np.allclose(r90, np.rot90(img, 1, axes=(1, 2)), atol=1e-5) or \
        np.allclose(r90, np.rot90(img, -1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(st.x_train[2].reshape(-1, 8, 8), img[:, ::-1, ::-1], atol=1e-5)
    np.testing.assert_array_equal(st.x_train[0], digits_ds.x_train)
    drawn = cl.rotated(digits_ds, 4, KEY, max_angle=90.0)
    a = drawn.meta["angles"]
    assert a[0] == 0 and np.all((a >= 0) & (a < 90)) and len(set(a.tolist())) == 4


def test_stream_errors(digits_ds, mnist1d):
    with pytest.raises(ValueError, match="rotation is defined for images only"):
        cl.rotated(mnist1d, 3, KEY)
    with pytest.raises(ValueError, match="scenario must be one of"):
        cl.permuted(digits_ds, 3, KEY, scenario="multi")
    with pytest.raises(ValueError, match="num_tasks must be an integer >= 1"):
        cl.permuted(digits_ds, 0, KEY)
    with pytest.raises(ValueError, match="classes_per_task=3 does not divide the 10 classes"):
        cl.split(digits_ds, KEY, classes_per_task=3)
    with pytest.raises(ValueError, match="key is required"):
        cl.permuted(digits_ds, 3, None)
    with pytest.raises(ValueError, match="num_train must be an integer"):
        cl.permuted(digits_ds, 2, KEY).subset(num_train=0)
    assert cl.split(digits_ds, KEY, classes_per_task=3, num_tasks=3).num_tasks == 3
    st = cl.split(mnist1d, KEY, classes_per_task=2, scenario="task")  # 1-D signals split fine
    assert st.input_shape == (40,)


# ------------------------------------------------------------------------------- Fisher

def _tiny():
    model = models.get_model("mlp", widths=(5,), num_outputs=3, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(1), (7, 4))
    y = jnp.array([0, 1, 2, 1, 0, 2, 2])
    params = model.init(jax.random.PRNGKey(2), x)["params"]
    mask = jnp.array([True, True, True])
    logits_fn = lambda p, xs: cl.masked(model.apply({"params": p}, xs), mask)  # noqa: E731
    return model, logits_fn, params, x, y


def test_exact_fisher_equals_dense_expectation():
    _, f, params, x, y = _tiny()
    got = jax.jit(lambda p: cl.fisher_diag(f, p, x, method="exact", chunk_size=3))(params)
    logp = jax.jit(lambda p, xi: jax.nn.log_softmax(f(p, xi[None])[0]))
    grad_k = jax.jit(jax.grad(lambda p, xi, k: logp(p, xi)[k]))
    want = jax.tree_util.tree_map(lambda a: np.zeros(a.shape), params)
    for n in range(x.shape[0]):  # the plain definition: sum_k p_k (d log p_k)^2, averaged over examples
        prob = np.exp(np.asarray(logp(params, x[n]), np.float64))
        for k in range(3):
            g = grad_k(params, x[n], k)
            want = jax.tree_util.tree_map(lambda a, b: a + prob[k] * np.asarray(b, np.float64) ** 2 / x.shape[0], want, g)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


def test_empirical_and_batch_fisher():
    _, f, params, x, y = _tiny()

    def nll(p, batch):
        xs, ys = batch
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f(p, xs)), ys[:, None], 1))

    per = grads.per_example(nll, params, (x, y))
    want = jax.tree_util.tree_map(lambda g: jnp.mean(g ** 2, 0), per)
    got = cl.fisher_diag(f, params, x, y, method="empirical", chunk_size=4)  # padded last chunk
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)
    got = cl.fisher_diag(f, params, x, y, method="batch", batch_size=3)  # 2 full batches, the 7th example unused
    g1, g2 = jax.grad(nll)(params, (x[:3], y[:3])), jax.grad(nll)(params, (x[3:6], y[3:6]))
    want = jax.tree_util.tree_map(lambda a, b: (a ** 2 + b ** 2) / 2, g1, g2)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-9)


def test_sampled_fisher_is_unbiased():
    _, f, params, x, y = _tiny()
    exact = cl.fisher_diag(f, params, x, method="exact")
    keys = jax.random.split(jax.random.PRNGKey(3), 2000)
    samples = jax.jit(jax.vmap(lambda k: cl.fisher_diag(f, params, x, method="sampled", key=k)))(keys)
    for a, s in zip(jax.tree_util.tree_leaves(exact), jax.tree_util.tree_leaves(samples)):
        se = np.std(s, 0) / np.sqrt(len(keys)) + 1e-9
        z = np.abs(np.mean(s, 0) - a) / se
        assert z.max() < 5, z.max()  # mean of samples within 5 standard errors of the exact Fisher
    with pytest.raises(ValueError, match="method must be one of"):
        cl.fisher_diag(f, params, x, method="kfac")
    with pytest.raises(ValueError, match="needs the true labels"):
        cl.fisher_diag(f, params, x, method="empirical")


# ------------------------------------------------------------------------------- memory

def test_reservoir_is_uniform_and_bounded():
    cap, n, b, trials = 10, 50, 5, 4000

    def fill(key):
        buf = membuf.buffer_init(cap, (1,))
        def body(buf, i):
            ids = i * b + jnp.arange(b)
            return membuf.reservoir_add(buf, ids[:, None].astype(jnp.float32), ids, ids, jax.random.fold_in(key, i)), \
                jnp.sum(buf.filled)
        buf, counts = jax.lax.scan(body, buf, jnp.arange(n // b))
        return buf, counts

    bufs, counts = jax.jit(jax.vmap(fill))(jax.random.split(KEY, trials))
    assert int(counts.max()) <= cap and np.all(np.asarray(bufs.filled))
    assert np.all(np.asarray(bufs.seen) == n)
    ids = np.asarray(bufs.y)
    assert all(len(set(r.tolist())) == cap for r in ids)  # no example stored twice
    freq = np.bincount(ids.ravel(), minlength=n) / trials
    sigma = np.sqrt(0.2 * 0.8 / trials)
    assert np.abs(freq - cap / n).max() < 5 * sigma, (freq.min(), freq.max())


def test_reservoir_batch_equals_sequential_algorithm_r():
    cap, b = 4, 6
    key = jax.random.PRNGKey(7)
    buf = membuf.buffer_init(cap, (1,))
    ids = jnp.arange(b)
    buf = membuf.reservoir_add(buf, ids[:, None].astype(jnp.float32), ids, ids, key)  # 0..5: fills, then draws
    ids2 = jnp.arange(b, 2 * b)
    buf = membuf.reservoir_add(buf, ids2[:, None].astype(jnp.float32), ids2, ids2, jax.random.fold_in(key, 1))
    slots = [None] * cap
    for batch_key, start in ((key, 0), (jax.random.fold_in(key, 1), b)):
        for j in range(b):
            i = start + j
            if i < cap:
                slots[i] = i
            else:
                r = int(jax.random.randint(jax.random.fold_in(batch_key, j), (), 0, i + 1))
                if r < cap:
                    slots[r] = i
    assert np.asarray(buf.y).tolist() == slots


def test_per_task_memory_and_sampling():
    buf = membuf.buffer_init(6, (2,))
    x = jnp.arange(20.0).reshape(10, 2)
    buf = jax.jit(membuf.add_task_examples, static_argnums=4)(buf, x, jnp.arange(10), jnp.int32(1), 3, KEY)
    assert np.asarray(buf.filled).tolist() == [False, False, True, True, False, False]
    assert np.asarray(buf.task)[2:4].tolist() == [1, 1]
    sample = jax.jit(membuf.sample, static_argnums=2)
    s = sample(buf, KEY, 50)
    assert np.all(np.asarray(s["task"]) == 1) and np.all(np.asarray(s["weight"]) == 1)
    empty = sample(membuf.buffer_init(6, (2,)), KEY, 50)
    assert np.all(np.asarray(empty["weight"]) == 0)
    holes = buf._replace(filled=jnp.array([True, False, True, True, False, True]), y=jnp.arange(6))
    counts = np.bincount(np.asarray(sample(holes, KEY, 4000)["y"]), minlength=6)
    assert counts[1] == counts[4] == 0 and np.all(np.abs(counts[[0, 2, 3, 5]] - 1000) < 5 * np.sqrt(750))


# ------------------------------------------------------------------------------- strategy pieces

def test_agem_projection():
    k1, k2 = jax.random.split(KEY)
    g = {"a": jax.random.normal(k1, (5,)), "b": jax.random.normal(k2, (3, 2))}
    ref = jax.tree_util.tree_map(lambda v: -v + 0.1, g)  # strongly conflicting
    dot = lambda u, v: sum(jnp.vdot(a, b) for a, b in zip(jax.tree_util.tree_leaves(u), jax.tree_util.tree_leaves(v)))  # noqa: E731
    assert dot(g, ref) < 0
    proj = cl.agem_project(g, ref)
    assert float(dot(proj, ref)) >= -1e-5 and abs(float(dot(proj, ref))) < 1e-4  # onto the constraint boundary
    # the projection removes only the component along ref
    diff = jax.tree_util.tree_map(jnp.subtract, g, proj)
    c = dot(diff, ref) / dot(ref, ref)
    for d, r in zip(jax.tree_util.tree_leaves(diff), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(d, c * r, rtol=1e-5, atol=1e-6)
    aligned = jax.tree_util.tree_map(lambda v: 2.0 * v, g)
    same = cl.agem_project(g, aligned)
    for a, b in zip(jax.tree_util.tree_leaves(same), jax.tree_util.tree_leaves(g)):
        np.testing.assert_array_equal(a, b)
    zero = cl.agem_project(g, jax.tree_util.tree_map(jnp.zeros_like, g))
    for a, b in zip(jax.tree_util.tree_leaves(zero), jax.tree_util.tree_leaves(g)):
        np.testing.assert_array_equal(a, b)


def test_distillation_zero_for_identical_models_and_per_head():
    logits = jax.random.normal(KEY, (4, 6))
    heads = jnp.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], bool)
    assert np.allclose(cl.distillation(logits, logits, heads, jnp.ones(2), 2.0), 0, atol=1e-6)
    other = logits.at[:, 4].add(3.0)  # differs only on head 1
    kd = cl.distillation(other, logits, heads, jnp.array([1.0, 0.0]), 2.0)
    assert np.allclose(kd, 0, atol=1e-6)
    kd1 = cl.distillation(other, logits, heads, jnp.array([0.0, 1.0]), 2.0)
    assert np.all(kd1 > 1e-3)


def test_strategy_errors():
    with pytest.raises(ValueError, match="fisher must be one of"):
        cl.ewc(fisher="diag")
    with pytest.raises(ValueError, match="pass online=True"):
        cl.ewc(gamma=0.5)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        cl.l2(-1.0)
    with pytest.raises(ValueError, match="xi must be > 0"):
        cl.si(xi=0.0)
    with pytest.raises(ValueError, match="memory must be one of"):
        cl.replay(memory="ring")
    with pytest.raises(ValueError, match="unknown strategy 'gem'; known:"):
        cl.get_strategy("gem")
    assert cl.ewc(5.0) == cl.ewc(7.0) and hash(cl.ewc(5.0)) == hash(cl.ewc(7.0))  # lam is traced, not static
    assert cl.ewc() != cl.ewc(fisher="sampled")


# ------------------------------------------------------------------------------- the stream program

@pytest.fixture(scope="module")
def tiny_stream(digits_ds):
    return cl.permuted(digits_ds, 3, KEY).subset(num_train=192, num_test=120)


CFG = cl.StreamConfig(model_cfg={"widths": (32,)}, learning_rate=0.2, batch_size=16, epochs=4, eval_every=12,
                      keep_params=True)
LAMS = [0.0, 10.0]


def _run(stream, strat, **kw):
    kw.setdefault("key", jax.random.PRNGKey(5))
    kw.setdefault("seeds", 3)  # 3 seeds on 2 CPU devices: padded to 4 and sharded
    return cl.run_stream(stream, strat, CFG, **kw)


@pytest.fixture(scope="module")
def ewc_runs(tiny_stream):
    """EWC over a lambda grid whose first point is 0, and naive fine-tuning (two compiled programs)."""
    return (_run(tiny_stream, cl.ewc(fisher="empirical"), lams=LAMS), _run(tiny_stream, cl.naive()))


def test_ewc_lambda0_equals_naive_bit_for_bit(ewc_runs):
    ewc, naive = ewc_runs
    for k in ("R", "init_acc", "curves"):
        np.testing.assert_array_equal(ewc[k][0], naive[k][0], err_msg=k)
    for a, b in zip(jax.tree_util.tree_leaves(ewc["params"]), jax.tree_util.tree_leaves(naive["params"])):
        np.testing.assert_array_equal(a[0], b[0])  # the parameters after every task, bit for bit
    # the reported objective adds 0 * penalty: XLA may round that sum differently (1 ulp)
    np.testing.assert_allclose(ewc["loss"][0], naive["loss"][0], rtol=1e-6)


def test_stream_program_shapes_and_curves(ewc_runs, tiny_stream):
    out, _ = ewc_runs
    t, steps = 3, 4 * (192 // 16)
    assert out["R"].shape == (2, 3, t, t) and out["init_acc"].shape == (2, 3, t)
    assert out["loss"].shape == (2, 3, t * steps) and out["steps_per_task"] == steps
    blocks = steps // 12
    assert out["curves"].shape == (2, 3, t * blocks, t)
    np.testing.assert_array_equal(out["curve_steps"], np.arange(1, t * blocks + 1) * 12)
    # the last evaluation of each task inside the scan is row t of R
    np.testing.assert_array_equal(out["curves"][:, :, blocks - 1::blocks], out["R"])
    # fine-tuning on permuted digits learns each task and forgets earlier ones
    naive = ewc_runs[1]["R"][0]
    assert np.all(np.diagonal(naive, axis1=-2, axis2=-1) > 0.6)
    assert np.all(cl.backward_transfer(naive) < -0.15)
    # EWC forgets less than fine-tuning (mean over seeds)
    assert cl.backward_transfer(out["R"][1]).mean() > cl.backward_transfer(naive).mean() + 0.05


def test_vmap_equals_loop_and_same_key_same_numbers(ewc_runs, tiny_stream):
    out, _ = ewc_runs
    strat = cl.ewc(fisher="empirical")
    prog = cl.program(tiny_stream, strat, CFG)
    traces = prog.num_traces
    again = _run(tiny_stream, strat, lams=LAMS)  # cached program: no retrace
    assert prog.num_traces == traces
    for k in ("R", "loss", "curves"):
        np.testing.assert_array_equal(again[k], out[k])
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    data = jax.tree_util.tree_map(jax.numpy.asarray, host_data(tiny_stream))
    single = jax.jit(prog.run)
    for li, lam in list(enumerate(LAMS))[1:]:  # the EWC member (lam > 0)
        for si_, k in enumerate(keys):
            one = jax.device_get(single(k, lam, data))
            np.testing.assert_allclose(one["loss"], out["loss"][li, si_], rtol=2e-4, atol=1e-5)
            np.testing.assert_allclose(one["R"], out["R"][li, si_], atol=1.5 / 120)
    other = _run(tiny_stream, strat, lams=LAMS, key=jax.random.PRNGKey(6))
    assert not np.array_equal(other["loss"], out["loss"])


def _bwt(stream, strat, lam):
    out = cl.run_stream(stream, strat, CFG.replace(eval_every=0, keep_params=False), key=jax.random.PRNGKey(5),
                        seeds=2, lams=[lam])
    assert np.all(np.isfinite(out["loss"])), strat.name
    return cl.backward_transfer(out["R"][0]).mean()


def test_every_strategy_traces(tiny_stream):
    """Every built-in strategy traces through the program with the expected output shapes (no compile)."""
    for name in sorted(cl.STRATEGIES):
        prog = cl.program(tiny_stream, cl.get_strategy(name), CFG)
        out = jax.eval_shape(prog.run, jax.random.PRNGKey(0), 1.0, host_data(tiny_stream))
        assert out["R"].shape == (3, 3) and out["curves"].shape == (3, 4, 3), name
        assert jax.tree_util.tree_structure(out["params"]) == jax.tree_util.tree_structure(
            jax.eval_shape(lambda k: cl.init_params(tiny_stream, CFG, k), jax.random.PRNGKey(0))), name


@pytest.mark.slow
def test_every_strategy_protects_old_tasks(tiny_stream, ewc_runs):
    """Slow (7 compiles): joint, replay, A-GEM, SI, online EWC, L2 and LwF each forget less than fine-tuning
    on the 3-task stream. The value tests below check joint, replay, A-GEM, LwF and online EWC by default;
    this one remains the only check of SI and L2's values."""
    naive_bwt = cl.backward_transfer(ewc_runs[1]["R"][0]).mean()
    for strat, lam in ((cl.joint(), 0.0), (cl.replay(96), 0.0), (cl.agem(96, ref_batch=48), 0.0), (cl.si(), 3.0),
                       (cl.ewc(fisher="exact", online=True, gamma=0.9), 10.0), (cl.l2(), 3.0), (cl.lwf(), 3.0)):
        bwt = _bwt(tiny_stream, strat, lam)
        assert bwt > naive_bwt + 0.03, (strat.name, bwt, naive_bwt)


# ------------------------------------------------------------------------------- values through run_stream
# Each strategy runs through the public entry point on two 2-task streams of the same shapes (one compile
# per strategy; the streams are a leading axis): permuted digits in domain-IL (naive fine-tuning forgets
# ~0.4 of task 0) and split digits in class-IL (naive forgets task 0 completely: task 1's units win every
# argmax). 8 seeds of one key: A-GEM, LwF and EWC train task 0 exactly as naive does (see the equality
# tests), so their comparisons with naive are paired by seed. Each margin comes from the expected size of
# the effect (the literature, and a 4-seed exploration with another key), noted at the assert, and was
# fixed before this key and these 8 seeds ran; "measured" gives their values (2026-11-30, 2 CPU cores).

VAL_SEEDS = 8
VAL_KEY = jax.random.PRNGKey(11)
VAL_CFG = cl.StreamConfig(model_cfg={"widths": (64,)}, learning_rate=0.3, batch_size=16, epochs=6, keep_params=True)
VAL_STEPS = 6 * (256 // 16)  # steps per task
VAL_STRATEGIES = {  # name -> (strategy, lams); one program each (a stack would run every member's hooks
    "naive": (cl.naive(), [0.0]),  # for every point under vmap: ~10x the run time of separate programs here)
    "joint": (cl.joint(), [0.0]),
    "joint_all": (cl.joint(all_tasks=True), [0.0]),
    "replay": (cl.replay(64), [0.0]),  # reservoir memory (the default)
    "agem": (cl.agem(64, ref_batch=64), [0.0]),  # per-task memory (the default): empty during task 0
    "lwf": (cl.lwf(), [0.0, 0.3]),
    "online_ewc": (cl.ewc(fisher="exact", online=True, fisher_examples=64), [10.0]),  # 64: the Fisher's cost
}


@pytest.fixture(scope="module")
def value_streams(digits_ds):
    dom = cl.permuted(digits_ds, 2, KEY, scenario="domain").subset(num_train=256, num_test=150)
    cls = cl.split(digits_ds, KEY, classes_per_task=5, scenario="class").subset(num_train=256, num_test=150)
    return dom, cls


@pytest.fixture(scope="module")
def value_runs(value_streams):
    """name -> run_stream output, axes [stream (domain, class), L, S=8, ...]."""
    return {name: cl.run_stream(list(value_streams), strat, VAL_CFG, key=VAL_KEY, seeds=VAL_SEEDS, lams=lams)
            for name, (strat, lams) in VAL_STRATEGIES.items()}


def _task0_after_task1(out, d=0, li=0):
    """[S]: accuracy on task 0 after training task 1 (R[1, 0]), stream d (0: domain-IL), lambda point li."""
    return out["R"][d, li, :, 1, 0]


def _forgetting(out, d=0, li=0):
    return out["R"][d, li, :, 0, 0] - out["R"][d, li, :, 1, 0]


def test_naive_forgets_in_this_setup(value_runs):
    """The premise of the comparisons below: fine-tuning learns each task and then forgets task 0."""
    r = value_runs["naive"]["R"]  # [2, 1, S, 2, 2]
    assert np.all(np.isfinite(r))
    # domain-IL: both tasks learnt (a 64-unit MLP reaches ~0.9 on 256 digits) and >= 0.2 of task 0 lost
    assert r[0, 0, :, 0, 0].mean() > 0.75 and r[0, 0, :, 1, 1].mean() > 0.75  # measured: 0.91, 0.88
    assert _forgetting(value_runs["naive"]).mean() > 0.2  # measured: 0.91 -> 0.52
    # class-IL: task 0's classes are not predicted again after task 1 (van de Ven & Tolias 2019)
    assert r[1, 0, :, 0, 0].mean() > 0.8 and r[1, 0, :, 1, 0].max() < 0.1  # measured: 0.96 -> 0.00


def test_joint_keeps_the_first_task(value_runs):
    """Cumulative joint training (task 1's batches drawn from tasks 0 and 1) keeps task 0 in both scenarios."""
    for d, name in enumerate(("domain", "class")):
        forget_naive = _forgetting(value_runs["naive"], d).mean()
        forget_joint = _forgetting(value_runs["joint"], d).mean()
        # joint keeps seeing task 0, so its forgetting should be ~0; a quarter of naive's (~0.1 in
        # domain-IL, ~0.24 in class-IL) leaves room for capacity sharing and test-set noise
        assert forget_joint < 0.25 * forget_naive, (name, forget_joint, forget_naive)
        # measured: domain -0.00 vs 0.38, class 0.02 vs 0.96


def test_joint_over_all_tasks_matches_training_on_the_union(value_runs, value_streams):
    """joint(all_tasks=True) is SGD on the union of the tasks' training sets (drawn with replacement): its
    final accuracy matches lossatlas.train.sweep on the union (same config and number of steps, 8 seeds)."""
    dom = value_streams[0]
    union = data.Dataset("union", np.concatenate(list(dom.x_train)), np.concatenate(list(dom.y_train)),
                         np.concatenate(list(dom.x_test)), np.concatenate(list(dom.y_test)), dom.num_outputs)
    cfg = VAL_CFG.train_config()
    assert 2 * VAL_STEPS == cfg.epochs * (union.x_train.shape[0] // cfg.batch_size)  # as many steps
    _, hist = train.sweep(cfg, union, key=VAL_KEY, seeds=VAL_SEEDS)
    union_acc = hist["test_acc"][:, -1].mean()
    # the union's test set is the two tasks' (equal sizes): its accuracy is the mean of R's last row
    joint_acc = value_runs["joint_all"]["R"][0, 0, :, 1].mean()
    # they differ in sampling (with / without replacement) and seeds: per-seed sd ~0.03-0.04 on 300 test
    # examples, so the difference of two 8-seed means has sd ~0.02 and 0.08 is 4 sd; a run that learnt
    # one task only would score ~0.6-0.7 on the union
    assert abs(joint_acc - union_acc) < 0.08, (joint_acc, union_acc)  # measured: 0.853 vs 0.838
    naive_acc = value_runs["naive"]["R"][0, 0, :, 1].mean()
    assert joint_acc > naive_acc + 0.05, (joint_acc, naive_acc)  # measured: 0.853 vs 0.703


def test_replay_and_agem_forget_less_than_naive(value_runs):
    naive = _task0_after_task1(value_runs["naive"])
    replay, agem = _task0_after_task1(value_runs["replay"]), _task0_after_task1(value_runs["agem"])
    # domain-IL: rehearsing 64 stored examples restores most of the ~0.4 naive loses (expected gain ~0.3;
    # margin 0.15, half of it). A-GEM only removes the part of each step that raises the memory's loss,
    # so less (expected ~0.15; margin 0.05, a third: the paired gain's seed sd is ~0.05-0.07, so the
    # margin is > 3 standard errors of an 8-seed mean below the expectation)
    assert replay.mean() > naive.mean() + 0.15, (replay.mean(), naive.mean())  # measured: +0.26
    assert agem.mean() > naive.mean() + 0.05, (agem.mean(), naive.mean())  # measured: +0.14
    # class-IL: naive keeps nothing of task 0; replay keeps most of it (Chaudhry et al. 2019's tiny
    # memories; expected > 0.6 here). A-GEM does not help in class-IL (measured 0.02): not asserted.
    assert _task0_after_task1(value_runs["replay"], d=1).mean() > 0.4  # measured: 0.85


def test_agem_with_an_empty_memory_is_naive(value_runs):
    """A-GEM's per-task memory is empty during task 0: the reference gradient is exactly zero and the
    projection leaves each step unchanged, so task 0 is fine-tuning bit for bit (same key)."""
    agem, naive = value_runs["agem"], value_runs["naive"]
    np.testing.assert_array_equal(agem["loss"][..., :VAL_STEPS], naive["loss"][..., :VAL_STEPS])
    np.testing.assert_array_equal(agem["R"][..., 0, :], naive["R"][..., 0, :])
    np.testing.assert_array_equal(agem["init_acc"], naive["init_acc"])
    for a, b in zip(jax.tree_util.tree_leaves(agem["params"]), jax.tree_util.tree_leaves(naive["params"])):
        np.testing.assert_array_equal(a[:, :, :, 0], b[:, :, :, 0])  # [D, L, S, task, ...]: after task 0
        assert not np.array_equal(a[:, :, :, 1], b[:, :, :, 1])  # task 1, with a memory, differs


def _kl_task0(stream, out, li):
    """[S]: mean over task 0's test inputs of KL(p after task 0 || p after task 1), task 0's mask at task 1."""
    apply = cl.model_apply(stream, VAL_CFG)
    mask = jnp.asarray(stream.masks[1, 0])

    def kl(old, new):
        lo = jax.nn.log_softmax(cl.masked(apply(old, stream.x_test[0]), mask))
        ln = jax.nn.log_softmax(cl.masked(apply(new, stream.x_test[0]), mask))
        return jnp.mean(jnp.sum(jnp.where(mask, jnp.exp(lo) * (lo - ln), 0.0), axis=-1))

    p = jax.tree_util.tree_map(lambda a: a[0, li], out["params"])  # domain-IL: [S, task, ...]
    return np.asarray(jax.vmap(lambda q: kl(jax.tree_util.tree_map(lambda a: a[0], q),
                                            jax.tree_util.tree_map(lambda a: a[1], q)))(p))


def test_lwf_lambda0_is_naive_and_distillation_keeps_old_outputs(value_runs, value_streams):
    lwf, naive = value_runs["lwf"], value_runs["naive"]
    # lambda = 0 adds 0 * distillation: naive's run, same key, same numbers
    for k in ("R", "init_acc"):
        np.testing.assert_array_equal(lwf[k][:, 0], naive[k][:, 0], err_msg=k)
    for a, b in zip(jax.tree_util.tree_leaves(lwf["params"]), jax.tree_util.tree_leaves(naive["params"])):
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
    np.testing.assert_allclose(lwf["loss"][:, 0], naive["loss"][:, 0], rtol=1e-6)  # + 0 * KD may round (1 ulp)
    # distillation's own quantity: how far training task 1 moves the outputs on task 0's inputs. LwF
    # distils the task-0 model on task 1's inputs only; to protect task 0 the move must shrink on task
    # 0's inputs too. Expected: well under naive's; margin: below 0.7x naive's (seed means) at lam = 0.3.
    kl_naive, kl_lwf = _kl_task0(value_streams[0], naive, 0), _kl_task0(value_streams[0], lwf, 1)
    assert kl_lwf.mean() < 0.7 * kl_naive.mean(), (kl_lwf, kl_naive)  # measured: 0.39 vs 1.00
    # and it keeps more of task 0 (paired by seed); expected ~0.15 (exploration), margin 0.05
    gain = _task0_after_task1(lwf, li=1) - _task0_after_task1(naive)
    assert gain.mean() > 0.05, gain  # measured: +0.17 (every seed > 0.1)


def test_online_ewc_forgets_less_than_naive(value_runs):
    """Online EWC (a running Fisher anchored at the latest solution) keeps more of task 0 in domain-IL
    (van de Ven & Tolias 2019: EWC helps in domain-IL, not in class-IL, which is not asserted)."""
    gain = _task0_after_task1(value_runs["online_ewc"]) - _task0_after_task1(value_runs["naive"])
    assert gain.mean() > 0.05, gain  # expected ~0.1-0.2 at lam = 10 (exploration); measured: +0.20


def test_program_errors(tiny_stream):
    with pytest.raises(ValueError, match="eval_every=5 must divide the 48 steps per task"):
        cl.run_stream(tiny_stream, cl.naive(), CFG.replace(eval_every=5), key=KEY)
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        cl.run_stream(tiny_stream, cl.naive(), CFG, key=KEY, seeds=0)
    with pytest.raises(ValueError, match=r"lams\[1\] must be a finite number >= 0"):
        cl.run_stream(tiny_stream, cl.naive(), CFG, key=KEY, lams=[1.0, -2.0])
    with pytest.raises(ValueError, match="batch_size=500 is larger than a task's training set"):
        cl.run_stream(tiny_stream, cl.naive(), CFG.replace(batch_size=500), key=KEY)
    with pytest.raises(ValueError, match=r"model_cfg\['norm'\] must be 'layer' or 'none'"):
        cl.StreamConfig(model_cfg={"norm": "batch"})
    with pytest.raises(ValueError, match="StreamConfig.learning_rate must be"):
        cl.StreamConfig(learning_rate=-1.0)


def test_divergence_is_frozen_flagged_and_isolated(tiny_stream):
    # L2 with SGD: lr * lam > 2 makes the penalty's oscillation explode from task 1 on
    cfg = CFG.replace(epochs=1, eval_every=4, keep_params=False)
    out = cl.run_stream(tiny_stream, cl.l2(), cfg, key=jax.random.PRNGKey(5), seeds=2, lams=[1.0, 1e6])
    steps = out["steps_per_task"]
    div = out["diverged_at"]
    assert div.shape == (2, 2) and np.all(div[0] == -1)
    assert np.all((div[1] >= steps) & (div[1] < 2 * steps))  # during task 1, not task 0
    for s in range(2):
        d = div[1, s]
        assert np.all(np.isfinite(out["loss"][1, s, :d])) and np.all(np.isnan(out["loss"][1, s, d:]))
        assert np.all(np.isfinite(out["R"][1, s, 0])) and np.all(np.isnan(out["R"][1, s, 1:]))
        blk = cfg.eval_every
        assert np.all(np.isnan(out["curves"][1, s, (d // blk) + (d % blk > 0):]))
    m = cl.summarize(out["R"], out["init_acc"], diverged_at=out["diverged_at"])
    np.testing.assert_array_equal(m["diverged"], [[False, False], [True, True]])
    assert np.all(np.isnan(m["acc"][1])) and np.all(np.isfinite(m["acc"][0]))  # not ~10% accuracy
    # the healthy neighbour equals its solo run
    solo = cl.run_stream(tiny_stream, cl.l2(), cfg, key=jax.random.PRNGKey(5), seeds=2, lams=[1.0])
    assert np.all(solo["diverged_at"] == -1)
    np.testing.assert_allclose(out["loss"][0], solo["loss"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["R"][0], solo["R"][0], atol=1.5 / 120)
    np.testing.assert_allclose(out["curves"][0], solo["curves"][0], atol=1.5 / 120)

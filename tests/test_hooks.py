"""Engine hooks (initial state, checkpoints, probes) equal what a hand-written loop computes."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas import losses, train
from lossatlas.train import Checkpoints, TrainConfig, make_train, sweep
from lossatlas.train import probes as probes_lib

CFG = TrainConfig(model="mlp", model_cfg={"widths": (16,)}, optimizer="sgd", learning_rate=0.05,
                  batch_size=64, epochs=3, eval_batch_size=128)
SPE = 256 // 64


@pytest.fixture(scope="module")
def small(mnist1d):
    return mnist1d.subset(num_train=256, num_test=64)


def _hand_loop(small, key):
    """An independent loop of jitted SGD steps over the engine's documented shuffles
    (``fold_in(fold_in(state.key, 0), epoch)``); returns the parameters after every step."""
    fns = train.model_fns(CFG, small)
    init = train.init(CFG, small, key)
    params, run_key = init.params, init.key  # shuffles come from the state's key
    x, y = jnp.asarray(small.x_train), jnp.asarray(small.y_train)
    tx = optax.sgd(CFG.learning_rate)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt, idx):
        g = jax.grad(lambda p: losses.cross_entropy(fns.apply(p, {}, x[idx]), y[idx]))(params)
        u, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, u), opt

    out = [params]
    for epoch in range(CFG.epochs):
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(run_key, 0), epoch), 256)
        for s in range(SPE):
            params, opt = step(params, opt, perm[s * 64:(s + 1) * 64])
            out.append(params)
    return out, x, y, run_key


@pytest.fixture(scope="module")
def reference(small):
    return _hand_loop(small, jax.random.PRNGKey(5))


def _close(a, b, **kw):
    jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, **kw), a, b)


def test_init_is_the_state_make_train_starts_from(small, reference):
    key = jax.random.PRNGKey(5)
    _, _, init_state = make_train(CFG, small, return_init=True)(key)
    _close(init_state.params, train.init(CFG, small, key).params, rtol=0, atol=0)
    _close(init_state.params, reference[0][0], rtol=0, atol=0)
    assert int(init_state.step) == 0


def test_epoch_and_step_checkpoints_equal_the_hand_loop(small, reference):
    params_by_step = reference[0]
    key = jax.random.PRNGKey(5)
    state, hist = make_train(CFG, small, checkpoints=Checkpoints(epochs=(0, 1, 3)))(key)
    ck = hist["checkpoints"]["params"]
    for i, epoch in enumerate((0, 1, 3)):
        _close(jax.tree_util.tree_map(lambda a: a[i], ck), params_by_step[epoch * SPE], rtol=2e-5, atol=2e-6)
    _close(jax.tree_util.tree_map(lambda a: a[-1], ck), state.params, rtol=0, atol=0)
    # steps that are not epoch boundaries, with the optimizer state kept too
    steps = (1, 6, 11)
    run = make_train(CFG, small, checkpoints=Checkpoints(steps=steps, opt_state=True))
    _, hist = run(key)
    assert list(run.checkpoint_steps) == list(steps)
    for i, s in enumerate(steps):
        _close(jax.tree_util.tree_map(lambda a: a[i], hist["checkpoints"]["params"]), params_by_step[s],
               rtol=2e-5, atol=2e-6)
    assert "opt_state" in hist["checkpoints"]


def test_probes_equal_the_hand_loop_and_dense_hessian(small, reference):
    """A stateless probe (gradient norm on the step's minibatch) after every 2 steps, and the
    warm-started lambda_max probe once per epoch against the dense Hessian's top eigenvalue."""
    params_by_step, x, y, run_key = reference
    key = jax.random.PRNGKey(5)
    fns = train.model_fns(CFG, small)
    seen = {}

    def batch_loss(p, batch):
        return fns.loss(p, {}, batch)

    run = make_train(CFG, small, probes={"gnorm": probes_lib.grad_norm(fns.loss)}, probe_every=2)
    _, hist = run(key)
    assert list(run.probe_steps) == list(range(2, CFG.epochs * SPE + 1, 2))
    for j, s in enumerate(run.probe_steps):
        epoch, within = divmod(s - 1, SPE)  # the minibatch of step s (1-based)
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(run_key, 0), epoch), 256)
        idx = perm[within * 64:(within + 1) * 64]
        g = jax.grad(batch_loss)(params_by_step[s], (x[idx], y[idx]))
        seen[s] = float(jnp.sqrt(sum(jnp.sum(v ** 2) for v in jax.tree_util.tree_leaves(g))))
        np.testing.assert_allclose(hist["probes"]["gnorm"][j], seen[s], rtol=1e-4)

    # lambda_max every 2 epochs would not divide 3 epochs: refused, naming the field
    with pytest.raises(ValueError, match="probe_every"):
        make_train(CFG, small, probes={"l": probes_lib.lambda_max(fns.loss)}, probe_every=2 * SPE)
    full = CFG.replace(batch_size=256, epochs=4)  # full batch: the probe's batch is the training set
    run = make_train(full, small, probes={"lam": probes_lib.lambda_max(fns.loss, num_iters=30)}, probe_every=2,
                     checkpoints=Checkpoints(epochs=(2, 4)))
    _, hist = run(key)
    assert hist["probes"]["lam"].shape == (2,)
    for j in range(2):
        p = jax.tree_util.tree_map(lambda a: a[j], hist["checkpoints"]["params"])
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        h = jax.hessian(lambda v: batch_loss(unravel(v), (x, y)))(flat)
        top = np.max(np.abs(np.linalg.eigvalsh(np.asarray(h, np.float64))))
        np.testing.assert_allclose(abs(hist["probes"]["lam"][j]), top, rtol=2e-2)


def test_sweep_hooks_equal_single_runs(small):
    """Member i of a sweep with checkpoints and probes equals make_train with seed key i."""
    key = jax.random.PRNGKey(9)
    fns = train.model_fns(CFG, small)
    kw = dict(checkpoints=Checkpoints(epochs=(0, 2)), probes={"g": probes_lib.grad_norm(fns.loss)})
    _, hist, init = sweep(CFG, small, key=key, seeds=2, grid={"learning_rate": [0.02, 0.05]}, return_init=True, **kw)
    assert hist["checkpoints"]["params"]["dense_0"]["kernel"].shape[:3] == (2, 2, 2)
    assert hist["probes"]["g"].shape == (2, 2, CFG.epochs)
    k1 = train.seed_keys(key, 2)[1]
    _, h1 = make_train(CFG.replace(learning_rate=0.02), small, **kw)(k1)
    np.testing.assert_allclose(hist["probes"]["g"][0, 1], h1["probes"]["g"], rtol=1e-4)
    _close(jax.tree_util.tree_map(lambda a: a[0, 1], hist["checkpoints"]["params"]),
           h1["checkpoints"]["params"], rtol=1e-4, atol=1e-6)
    _close(jax.tree_util.tree_map(lambda a: a[1, 0], init.params), train.init(CFG, small, train.seed_keys(key, 2)[0]).params,
           rtol=0, atol=0)


def test_chunked_run_with_hooks_equals_fused(small):
    fns = train.model_fns(CFG, small)
    cfg = CFG.replace(epochs=4, chunk_epochs=2)
    kw = dict(checkpoints=Checkpoints(steps=(0, 5, 16)), probes={"g": probes_lib.grad_norm(fns.loss)},
              probe_every=SPE * 2)
    key = jax.random.PRNGKey(2)
    _, fused = make_train(cfg, small, **kw)(key)
    _, chunked = make_train(cfg, small, progress=True, **kw)(key)
    _close(fused["checkpoints"], chunked["checkpoints"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused["probes"]["g"], chunked["probes"]["g"], rtol=1e-5)
    assert fused["probes"]["g"].shape == (2,)


def test_bad_hook_arguments_name_the_field(small):
    with pytest.raises(ValueError, match="Checkpoints: give exactly one"):
        Checkpoints()
    with pytest.raises(ValueError, match="Checkpoints.epochs must be strictly increasing"):
        Checkpoints(epochs=(2, 1))
    with pytest.raises(ValueError, match="Checkpoints.epochs must be within the run's 3 epochs"):
        make_train(CFG, small, checkpoints=Checkpoints(epochs=(4,)))
    with pytest.raises(ValueError, match="probe_every must be"):
        make_train(CFG, small, probes={"g": lambda *a: 0.0}, probe_every=3)
    with pytest.raises(ValueError, match="no probes"):
        make_train(CFG, small, probe_every=2)
    with pytest.raises(ValueError, match="key is required"):
        sweep(CFG, small, key=None)

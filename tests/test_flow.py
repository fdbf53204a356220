"""Gradient flow statistics and divergence isolation in sweeps."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import data, losses, models
from lossatlas.grads.flow import flow, kernel_grad_norms
from lossatlas.train import TrainConfig, make_train, sweep


@pytest.fixture(scope="module")
def batch(mnist1d):
    return jnp.asarray(mnist1d.x_train[:64]), jnp.asarray(mnist1d.y_train[:64])


def test_flow_matches_direct_gradients_and_activations(batch):
    model = models.get_model("mlp", widths=(16, 16, 16), num_outputs=10, activation="tanh")
    x, y = batch
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    f = flow(model, params, batch)
    grads = jax.grad(lambda p: losses.cross_entropy(model.apply({"params": p}, x), y))(params)
    for i, name in enumerate(f.param_names):
        expected = np.sqrt(sum(float(jnp.sum(g ** 2)) for g in jax.tree_util.tree_leaves(grads[name])))
        np.testing.assert_allclose(f.grad_norm[i], expected, rtol=1e-5)
    assert f.param_names == ("dense_0", "dense_1", "dense_2", "readout")
    # hidden state 0 by hand, and its statistics
    h0 = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"][None])
    np.testing.assert_allclose(f.activations["layer_0"], h0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f.act_std[0], jnp.std(h0), rtol=1e-5)
    # back-propagated gradient at the last hidden layer: B * dL/dh = W_out (softmax - onehot)
    h2 = f.activations["layer_2"]
    logits = h2 @ params["readout"]["kernel"] + params["readout"]["bias"][None]
    delta = jax.nn.softmax(logits) - jax.nn.one_hot(y, 10)
    np.testing.assert_allclose(f.backprop["layer_2"], delta @ params["readout"]["kernel"].T, rtol=1e-4, atol=1e-6)


def test_backprop_gradient_equals_finite_difference_of_hidden_perturbation(batch):
    """dL/dh from the perturbation collection equals a finite difference of the loss in h."""
    model = models.get_model("mlp", widths=(8, 8), num_outputs=10, activation="sigmoid")
    x, y = batch
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    f = flow(model, params, batch)
    _, probe = model.apply({"params": params}, x, mutable=["perturbations"])
    zeros = jax.tree_util.tree_map(jnp.zeros_like, probe["perturbations"])
    eps = 1e-2

    def loss_with(delta):
        pert = dict(zeros, layer_0=zeros["layer_0"].at[3, 5].set(delta))
        return losses.cross_entropy(model.apply({"params": params, "perturbations": pert}, x), y)

    fd = (loss_with(eps) - loss_with(-eps)) / (2 * eps)
    np.testing.assert_allclose(f.backprop["layer_0"][3, 5] / x.shape[0], fd, rtol=2e-2, atol=1e-7)


def test_vanishing_and_healthy_flow(batch):
    """Glorot & Bengio: deep sigmoid + small init starves the first layer; He + residual + BN does not."""
    x, y = batch
    bad = models.get_model("mlp", widths=(64,) * 10, num_outputs=10, activation="sigmoid", init="naive")
    g_bad = np.asarray(kernel_grad_norms(flow(bad, bad.init(jax.random.PRNGKey(0), x)["params"], batch)))
    assert g_bad[0] < 1e-3 * g_bad[-1]
    good = models.get_model("mlp", widths=(64,) * 10, num_outputs=10, init="he", residual=True, norm="batch")
    v = good.init(jax.random.PRNGKey(0), x)
    g_good = np.asarray(kernel_grad_norms(flow(good, v["params"], batch, model_state={"batch_stats": v["batch_stats"]},
                                               train=True)))
    assert 0.1 < g_good[0] / g_good[-1] < 10


@pytest.mark.parametrize("kw,train", [(dict(activation="tanh"), False),
                                      (dict(init="he", residual=True, norm="batch"), True)])
def test_scanned_net_reports_every_layer_like_the_unrolled_net(batch, kw, train):
    """A scan_layers MLP gives one flow entry per hidden layer, equal to the unrolled MLP with the same parameters."""
    x, y = batch
    widths = (16,) * 5
    scanned = models.get_model("mlp", widths=widths, num_outputs=10, scan_layers=True, **kw)
    unrolled = models.get_model("mlp", widths=widths, num_outputs=10, **kw)
    v = scanned.init(jax.random.PRNGKey(2), x)
    assert "layers" in v["params"]
    state = {k: c for k, c in v.items() if k != "params"}
    f_s = flow(scanned, v["params"], batch, model_state=state, train=train)
    f_u = flow(unrolled, scanned.unscan(v["params"]), batch, model_state=scanned.unscan(state), train=train)
    assert f_s.layer_names == f_u.layer_names == tuple(f"layer_{i}" for i in range(5))
    assert f_s.param_names == f_u.param_names
    assert [n for n in f_s.param_names if n.startswith("dense_")] == [f"dense_{i}" for i in range(5)]
    assert f_s.grad_norm.shape == (len(f_s.param_names),)
    for field in ("loss", "grad_norm", "weight_norm", "act_mean", "act_std", "act_zero", "dead_units",
                  "backprop_std", "backprop_norm"):
        np.testing.assert_allclose(getattr(f_s, field), getattr(f_u, field), rtol=1e-4, atol=1e-7, err_msg=field)
    for name in f_u.layer_names:
        np.testing.assert_allclose(f_s.backprop[name], f_u.backprop[name], rtol=1e-4, atol=1e-6)
    # and the per-layer gradient norms are those of jax.grad on the scanned parameters, layer by layer
    def loss(p):
        out = scanned.apply({"params": p, **state}, x, train=train, mutable=list(state) or False)
        return losses.cross_entropy(out[0] if state else out, y)
    g = scanned.unscan(jax.grad(loss)(v["params"]))
    for i, n in enumerate(f_s.param_names):
        expected = np.sqrt(sum(float(jnp.sum(a ** 2)) for a in jax.tree_util.tree_leaves(g[n])))
        np.testing.assert_allclose(f_s.grad_norm[i], expected, rtol=1e-4)


def test_saturation_and_dead_units(batch):
    x, y = batch
    relu = models.get_model("mlp", widths=(32,), num_outputs=10)
    p = relu.init(jax.random.PRNGKey(0), x)["params"]
    p = jax.tree_util.tree_map(lambda a: a, p)
    p["dense_0"]["bias"] = p["dense_0"]["bias"].at[:8].set(-1e3)  # 8 of 32 units can never fire
    f = flow(relu, p, batch)
    np.testing.assert_allclose(f.dead_units[0], 8 / 32)
    assert np.isnan(f.act_saturated[0])
    sig = models.get_model("mlp", widths=(32,), num_outputs=10, activation="sigmoid", init_gain=50.0)
    fs = flow(sig, sig.init(jax.random.PRNGKey(0), x)["params"], batch)
    assert fs.act_saturated[0] > 0.5  # a huge init pushes sigmoids into their tails


def test_flow_works_for_every_registry_model():
    for name in models.list_models():
        cfg = models.tiny_config(name)
        model = models.get_model(name, **cfg)
        x = models.example_input(name, batch=4, key=jax.random.PRNGKey(2))
        params = model.init(jax.random.PRNGKey(0), x)["params"]
        if name == "transformer_lm":
            y, loss = jnp.zeros(x.shape, jnp.int32), "token_nll"
        else:
            y, loss = jnp.zeros((4,), jnp.int32), "cross_entropy"
        f = flow(model, params, (x, y), loss=loss)
        assert len(f.layer_names) >= 1 and np.all(np.isfinite(f.grad_norm)), name
        assert set(f.backprop) == set(f.layer_names)


def test_diverging_member_is_frozen_and_others_unaffected(mnist1d):
    """One learning rate diverges; it is flagged and frozen, the other equals a run without it."""
    ds = mnist1d.subset(num_train=400, num_test=100)
    cfg = TrainConfig(model="mlp", model_cfg={"widths": (32, 32)}, optimizer="sgd", learning_rate=0.05,
                      batch_size=50, epochs=3)
    key = jax.random.PRNGKey(0)
    state, hist = sweep(cfg, ds, seeds=2, grid={"learning_rate": [0.05, 1e4]}, key=key)
    assert np.all(hist["diverged_at"][0] == -1)
    div = hist["diverged_at"][1]
    assert np.all(div >= 0) and np.all(div < 24)
    for s in range(2):
        d = int(div[s])
        assert np.all(np.isfinite(hist["loss"][1, s, :d])) and np.all(np.isnan(hist["loss"][1, s, d:]))
        assert np.all(np.isnan(hist["test_loss"][1, s, -1]))
        # frozen state holds finite parameters
        assert all(np.all(np.isfinite(l[1, s])) for l in jax.tree_util.tree_leaves(state.params))
    _, alone = sweep(cfg, ds, seeds=2, key=key)  # the same seeds without the diverging member
    for k in ("loss", "test_loss", "test_acc"):
        np.testing.assert_allclose(hist[k][0], alone[k], rtol=1e-5)
    _, single = make_train(cfg.replace(learning_rate=1e4), ds)(jax.random.split(key, 2)[0])
    assert int(single["diverged_at"]) == int(div[0])


def test_adding_problem_dataset():
    ds = data.load("adding", seq_len=50, num_train=2000, num_test=100)
    assert ds.x_train.shape == (2000, 50, 2) and ds.y_train.shape == (2000, 1) and ds.task == "regression"
    assert np.all(ds.x_train[..., 1].sum(axis=1) == 2)
    marked = (ds.x_train[..., 0] * ds.x_train[..., 1]).sum(axis=1)
    np.testing.assert_allclose(marked, ds.y_train[:, 0], rtol=1e-6)
    # the mean predictor's MSE is the documented baseline 1/6
    assert abs(np.mean((ds.y_train - 1.0) ** 2) - 1 / 6) < 0.02
    with pytest.raises(ValueError, match="seq_len"):
        data.load("adding", seq_len=1)


def test_jacobian_spectrum_dense_lanczos_and_exact():
    """For a deep linear net J = W_L ... W_1 exactly; Lanczos top-k equals the dense SVD."""
    from lossatlas.grads import jacobian_spectrum
    model = models.get_model("deep_linear", widths=(12, 12, 12), num_outputs=6)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 10))
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    apply = lambda p, xb: model.apply({"params": p}, xb)  # noqa: E731
    dense = jacobian_spectrum(apply, params, x)
    kernels = [params[n]["kernel"] for n in sorted(params, key=lambda n: (n == "readout", n))]
    product = kernels[0]
    for w in kernels[1:]:
        product = product @ w
    exact = np.linalg.svd(np.asarray(product), compute_uv=False)
    for i in range(3):  # linear: the same spectrum at every input
        np.testing.assert_allclose(dense[i], exact, rtol=1e-4)
    top = jacobian_spectrum(apply, params, x, method="lanczos", k=3, num_iters=10, key=jax.random.PRNGKey(5))
    np.testing.assert_allclose(top, dense[:, :3], rtol=1e-3)
    with pytest.raises(ValueError, match=r"^jacobian_spectrum: method must be one of 'dense', 'lanczos', got 'svd'$"):
        jacobian_spectrum(apply, params, x, method="svd")
    with pytest.raises(ValueError, match=r"^jacobian_spectrum: key is required"):  # no default key
        jacobian_spectrum(apply, params, x, method="lanczos", k=3)
    with pytest.raises(ValueError, match=r"^jacobian_spectrum: num_iters must be an integer >= 3 or None, got 2$"):
        jacobian_spectrum(apply, params, x, method="lanczos", k=3, num_iters=2, key=jax.random.PRNGKey(5))

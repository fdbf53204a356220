"""Tests for lossatlas.models: shapes, paper configs, inits, causality, BN, training."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lossatlas import models as M

KEY = jax.random.PRNGKey(0)


def n_params(tree):
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(tree))


def init(model, x, key=KEY, train=False):
    return model.init(key, x, train=train)


def apply(model, variables, x, train=False, mutable=False):
    return model.apply(variables, x, train=train, mutable=mutable)


def build(name, batch=4, **over):
    cfg = {**M.tiny_config(name), **over}
    model = M.get_model(name, **cfg)
    x = M.example_input(name, batch=batch, key=KEY)
    return model, init(model, x), x


# ---------------------------------------------------------------- registry / API
def test_registry():
    assert M.list_models() == sorted(M.MODELS)
    assert set(M.MODELS) == {"mlp", "cnn1d", "cnn2d", "rnn", "transformer_lm",
                             "deep_linear"}
    for name, e in M.MODELS.items():
        assert isinstance(e, M.ModelEntry) and e.doc
        cfg = M.tiny_config(name)
        cfg["__mutated__"] = 1
        assert "__mutated__" not in M.tiny_config(name)
        x = M.example_input(name, key=KEY)
        assert x.shape == (4,) + tuple(e.tiny_input_shape)
        assert x.dtype == e.input_dtype


@pytest.mark.parametrize("name", sorted(M.MODELS))
def test_tiny_output_shapes_and_intermediates(name):
    model, variables, x = build(name)
    y = apply(model, variables, x, train=False)
    if name == "transformer_lm":
        assert y.shape == (4, x.shape[1], M.tiny_config(name)["vocab_size"])
    else:
        assert y.shape == (4, M.tiny_config(name)["num_outputs"])
    assert y.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y)))
    # intermediates only appear when requested, and then as layer_{i} keys
    assert "intermediates" not in variables
    y2, state = apply(model, variables, x, train=False, mutable=["intermediates"])
    np.testing.assert_allclose(y, y2, rtol=1e-6, atol=1e-6)
    inter = state["intermediates"]
    assert "layer_0" in inter
    assert all(k.startswith("layer_") for k in inter)
    assert inter["layer_0"][0].shape[0] == 4


def test_errors_name_the_field():
    with pytest.raises(ValueError, match=r"cnn1d.*cnn2d.*deep_linear.*mlp"):
        M.get_model("resnet")
    with pytest.raises(ValueError, match="depth"):
        M.get_model("mlp", depth=3)
    with pytest.raises(ValueError, match="vocab_size"):  # listed as accepted
        M.get_model("transformer_lm", num_outputs=3)
    bad = [("mlp", "activation", "softsign", "relu"), ("mlp", "init", "xavier", "he"),
           ("mlp", "norm", "group", "layer"), ("mlp", "widths", (16, 0), None),
           ("mlp", "num_outputs", -1, None), ("cnn1d", "norm", "layer", "batch"),
           ("cnn2d", "channels", (4, -8), None), ("rnn", "cell", "lstm", "gru"),
           ("rnn", "readout", "max", "flatten"), ("rnn", "recurrent_init", "eye", None),
           ("rnn", "hidden", 0, None), ("deep_linear", "init", "he", "orthogonal"),
           ("transformer_lm", "num_heads", 3, None), ("transformer_lm", "d_model", 0,
                                                      None)]
    for name, field, value, allowed in bad:
        with pytest.raises(ValueError, match=field) as info:
            M.get_model(name, **{field: value})
        assert "\n" not in str(info.value)
        if allowed is not None:
            assert allowed in str(info.value)
    # lists are accepted (converted to tuples, module stays hashable)
    hash(M.get_model("mlp", widths=[4, 4]))


def test_transformer_too_long_raises():
    model, variables, _ = build("transformer_lm")
    too_long = jnp.zeros((1, M.tiny_config("transformer_lm")["max_len"] + 1), jnp.int32)
    with pytest.raises(ValueError, match="max_len"):
        apply(model, variables, too_long)


# ---------------------------------------------------------------- paper configs
def test_mnist1d_cnn_parameter_count():
    model = M.get_model("cnn1d")  # paper defaults: 25 channels, kernels (5,3,3)
    variables = jax.eval_shape(model.init, KEY, jnp.zeros((2, 40)))  # shapes only
    conv1 = 1 * 25 * 5 + 25
    conv2 = 25 * 25 * 3 + 25
    linear = 125 * 10 + 10
    assert n_params(variables["params"]) == conv1 + 2 * conv2 + linear == 5210
    assert variables["params"]["readout"]["kernel"].shape == (125, 10)
    # [B, L, 1] input works too and gives the same function
    tiny, v, x = build("cnn1d")
    np.testing.assert_allclose(apply(tiny, v, x), apply(tiny, v, x[:, :, None]),
                               atol=1e-6)


def test_mnist1d_gru_flatten_size():
    model = M.get_model("rnn", cell="gru", hidden=6, bidirectional=True,
                        readout="flatten")
    variables = jax.eval_shape(model.init, KEY, jnp.zeros((2, 40)))
    assert variables["params"]["readout"]["kernel"].shape == (2 * 6 * 40, 10)
    assert set(variables["params"]) == {"fwd", "bwd", "readout"}
    y = jax.eval_shape(model.apply, variables, jnp.zeros((2, 40)))
    assert y.shape == (2, 10)


# ---------------------------------------------------------------- initialisers
@pytest.mark.parametrize("scheme,gain,expected", [
    ("he", 1.0, lambda i, o: math.sqrt(2 / i)),
    ("lecun", 1.5, lambda i, o: 1.5 * math.sqrt(1 / i)),
    ("glorot", 1.0, lambda i, o: math.sqrt(2 / (i + o))),
    ("naive", 3.0, lambda i, o: 0.03),
])
def test_init_std(scheme, gain, expected):
    fan_in, fan_out = 400, 600
    model = M.get_model("mlp", widths=(fan_out,), init=scheme, init_gain=gain)
    variables = init(model, jnp.zeros((1, fan_in)))
    w = np.asarray(variables["params"]["dense_0"]["kernel"])
    assert w.shape == (fan_in, fan_out)
    assert abs(w.mean()) < 0.01 * expected(fan_in, fan_out) * 5
    assert w.std() == pytest.approx(expected(fan_in, fan_out), rel=0.03)
    np.testing.assert_array_equal(variables["params"]["dense_0"]["bias"], 0.0)


@pytest.mark.parametrize("activation,gain", [("relu", math.sqrt(2)), ("tanh", 1.0)])
def test_orthogonal_init(activation, gain):
    model = M.get_model("mlp", widths=(32, 32), init="orthogonal",
                        activation=activation, init_gain=0.7)
    variables = init(model, jnp.zeros((1, 32)))
    w = np.asarray(variables["params"]["dense_1"]["kernel"], np.float64)
    np.testing.assert_allclose(w.T @ w, (0.7 * gain) ** 2 * np.eye(32), atol=1e-4)
    lin = M.get_model("deep_linear", widths=(32, 32), init="orthogonal", init_gain=2.0)
    w = np.asarray(init(lin, jnp.zeros((1, 32)))["params"]["dense_1"]["kernel"],
                   np.float64)
    np.testing.assert_allclose(w.T @ w, 4.0 * np.eye(32), atol=1e-4)


def spectral_radius(w):
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(w, np.float64)))))


@pytest.mark.parametrize("cell,layer", [("tanh", "recurrent"), ("gru", "hz")])
def test_recurrent_scale_spectral_radius(cell, layer):
    for scale in (0.5, 2.5):
        _, v, _ = build("rnn", cell=cell, recurrent_scale=scale)
        rho = spectral_radius(v["params"]["fwd"][layer]["kernel"])
        assert rho == pytest.approx(scale, rel=1e-4)


def test_recurrent_normal_init_scale():
    _, v, _ = build("rnn", hidden=128, recurrent_init="normal", recurrent_scale=2.0)
    w = np.asarray(v["params"]["fwd"]["recurrent"]["kernel"], np.float64)
    assert w.std() == pytest.approx(2.0 / math.sqrt(128), rel=0.05)
    assert spectral_radius(w) == pytest.approx(2.0, rel=0.2)


# ---------------------------------------------------------------- structure
def test_transformer_is_causal():
    model, variables, x = build("transformer_lm")
    t = 6
    x2 = x.at[:, t].set((x[:, t] + 1) % M.tiny_config("transformer_lm")["vocab_size"])
    y1, y2 = apply(model, variables, x), apply(model, variables, x2)
    np.testing.assert_allclose(y1[:, :t], y2[:, :t], atol=1e-6)
    assert float(jnp.max(jnp.abs(y1[:, t] - y2[:, t]))) > 1e-4
    assert float(jnp.max(jnp.abs(y1[:, t + 1:] - y2[:, t + 1:]))) > 1e-4


@pytest.mark.parametrize("cell,readout", [("tanh", "last"), ("gru", "mean")])
def test_bidirectional_rnn_sees_both_ends(cell, readout):
    model, variables, x = build("rnn", cell=cell, bidirectional=True, readout=readout)
    grad = jax.grad(lambda x: jnp.sum(apply(model, variables, x) ** 2))(x)
    assert bool(jnp.all(jnp.abs(grad[:, 0]) > 1e-7))
    assert bool(jnp.all(jnp.abs(grad[:, -1]) > 1e-7))
    # unidirectional "last" readout of a tanh RNN: backward cell absent
    assert "bwd" not in build("rnn", cell=cell)[1]["params"]


def test_bidirectional_backward_direction_reverses_time():
    model, variables, x = build("rnn", bidirectional=True)
    x = x[:, :, None]  # [B, T, F] input is accepted as well
    _, st = apply(model, variables, x, mutable=["intermediates"])
    ys = st["intermediates"]["layer_0"][0]
    assert ys.shape == (4, 12, 16)
    # running a forward-only model on the reversed input with the backward
    # params reproduces the backward half, time-reversed
    fwd, v_fwd, _ = build("rnn")
    v_fwd = {"params": {**v_fwd["params"], "fwd": variables["params"]["bwd"]}}
    _, st2 = apply(fwd, v_fwd, jnp.flip(x, axis=1), mutable=["intermediates"])
    ys_b = jnp.flip(st2["intermediates"]["layer_0"][0], axis=1)
    np.testing.assert_allclose(ys[:, :, 8:], ys_b, atol=1e-5)
    # and the forward half is the forward-only model with the forward params
    v_fwd = {"params": {**v_fwd["params"], "fwd": variables["params"]["fwd"]}}
    _, st3 = apply(fwd, v_fwd, x, mutable=["intermediates"])
    np.testing.assert_allclose(ys[:, :, :8], st3["intermediates"]["layer_0"][0],
                               atol=1e-5)


def test_residual_skip():
    plain, variables, x = build("mlp", widths=(16, 16, 16))
    res, v_res, _ = build("mlp", widths=(16, 16, 16), residual=True)
    # same parameter tree for both
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(v_res)
    diff = apply(plain, variables, x) - apply(res, variables, x)
    assert float(jnp.max(jnp.abs(diff))) > 1e-4
    # zero the hidden layers i>0: residual layers become the identity
    p = jax.tree_util.tree_map(lambda a: a, variables["params"])
    for i in (1, 2):
        p[f"dense_{i}"] = jax.tree_util.tree_map(jnp.zeros_like, p[f"dense_{i}"])
    _, st = apply(res, {"params": p}, x, mutable=["intermediates"])
    inter = st["intermediates"]
    np.testing.assert_allclose(inter["layer_1"][0], inter["layer_0"][0])
    np.testing.assert_allclose(inter["layer_2"][0], inter["layer_0"][0])
    _, st = apply(plain, {"params": p}, x, mutable=["intermediates"])
    np.testing.assert_array_equal(st["intermediates"]["layer_2"][0], 0.0)


def test_no_skip_when_width_changes():
    plain, v, x = build("mlp", widths=(16, 3), activation="tanh")
    res = M.get_model("mlp", **{**M.tiny_config("mlp"), "widths": (16, 3),
                                "activation": "tanh", "residual": True})
    np.testing.assert_allclose(apply(plain, v, x), apply(res, v, x))


@pytest.mark.parametrize("name,cfg", [
    ("mlp", {"norm": "batch"}), ("cnn1d", {"norm": "batch"}),
    ("cnn2d", {"norm": "batch"})])
def test_batch_norm(name, cfg):
    model, variables, x = build(name, **cfg)
    assert "batch_stats" in variables
    stats0 = variables["batch_stats"]
    x = x * 3.0 + 1.0
    y, upd = apply(model, variables, x, train=True, mutable=["batch_stats"])
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), stats0,
                                     upd["batch_stats"])
    assert all(jax.tree_util.tree_leaves(changed))
    variables = {**variables, "batch_stats": upd["batch_stats"]}
    # eval mode: each example's output is independent of the rest of the batch
    x_other = x.at[1:].set(-2.0 * x[1:] + 5.0)  # same example 0, other batch-mates
    out = apply(model, variables, x, train=False)
    out_other = apply(model, variables, x_other, train=False)
    np.testing.assert_allclose(out[0], out_other[0], rtol=1e-5, atol=1e-5)
    # train mode: batch statistics couple the examples
    tr, _ = apply(model, variables, x, train=True, mutable=["batch_stats"])
    tr_other, _ = apply(model, variables, x_other, train=True, mutable=["batch_stats"])
    assert float(jnp.max(jnp.abs(tr[0] - tr_other[0]))) > 1e-4


def test_layer_norm_mlp_and_deep_linear_is_linear():
    model, variables, x = build("mlp", norm="layer", activation="gelu")
    assert "batch_stats" not in variables
    assert apply(model, variables, x).shape == (4, 3)
    lin, v, x = build("deep_linear")
    np.testing.assert_allclose(apply(lin, v, 2.0 * x - x[::-1]),
                               2.0 * apply(lin, v, x) - apply(lin, v, x[::-1]),
                               rtol=1e-4, atol=1e-5)
    assert all("bias" not in layer for layer in v["params"].values())


# ---------------------------------------------------------------- training
TRAIN_CASES = [(n, {}) for n in sorted(M.MODELS)] + [
    ("rnn", {"cell": "gru", "bidirectional": True, "readout": "flatten"}),
    ("mlp", {"norm": "batch", "residual": True, "init": "he"}),
]


TRAIN_IDS = ["-".join([n, *map(str, o.values())]) for n, o in TRAIN_CASES]


@pytest.mark.parametrize("name,over", TRAIN_CASES, ids=TRAIN_IDS)
def test_tiny_config_trains(name, over):
    model, variables, _ = build(name, **over)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    x = M.example_input(name, batch=16, key=k1)
    if name == "transformer_lm":
        vocab = M.tiny_config(name)["vocab_size"]
        # learnable sequences: next token = current + 1 (mod vocab)
        x = (x[:, :1] + jnp.arange(x.shape[1], dtype=jnp.int32)[None, :]) % vocab
        inputs, targets = x[:, :-1], x[:, 1:]
    else:
        inputs = x
        targets = jax.random.randint(k2, (16,), 0, M.tiny_config(name)["num_outputs"])
    params = variables["params"]
    state = {k: v for k, v in variables.items() if k != "params"}
    opt = optax.adam(1e-2)
    opt_state = opt.init(params)

    def loss_fn(params, state):
        if state:
            logits, new_state = model.apply({"params": params, **state}, inputs,
                                            train=True, mutable=list(state))
        else:
            logits, new_state = model.apply({"params": params}, inputs, train=True), {}
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
        return loss, new_state

    @jax.jit
    def step(params, state, opt_state):
        (loss, new_state), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, loss

    losses = []
    for _ in range(60):
        params, state, opt_state, loss = step(params, state, opt_state)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_scanned_mlp_equals_unrolled_mlp():
    """scan_layers=True computes the same function as the unrolled MLP given the same weights."""
    kw = dict(widths=(8, 8, 8, 8), num_outputs=3, residual=True, norm="layer", activation="tanh")
    plain = M.get_model("mlp", **kw)
    scanned = M.get_model("mlp", scan_layers=True, **kw)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 4))
    p = plain.init(jax.random.PRNGKey(0), x)["params"]
    stack = lambda name: jax.tree_util.tree_map(lambda *a: jnp.stack(a), *[p[f"{name}_{i}"] for i in (1, 2, 3)])  # noqa: E731
    ps = {"dense_0": p["dense_0"], "norm_0": p["norm_0"], "norm_final": p["norm_final"], "readout": p["readout"],
          "layers": {"dense": stack("dense"), "norm": stack("norm")}}
    assert jax.tree_util.tree_structure(ps) == jax.tree_util.tree_structure(
        scanned.init(jax.random.PRNGKey(0), x)["params"])
    np.testing.assert_allclose(scanned.apply({"params": ps}, x), plain.apply({"params": p}, x), rtol=1e-5, atol=1e-6)
    # unscan inverts the stacking, and the scanned net records every hidden layer like the unrolled one
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(np.array_equal, scanned.unscan(ps), p))
    _, st = scanned.apply({"params": ps}, x, mutable=["intermediates"])
    _, st_plain = plain.apply({"params": p}, x, mutable=["intermediates"])
    inter = scanned.unscan(st["intermediates"])
    assert sorted(inter) == sorted(st_plain["intermediates"]) == [f"layer_{i}" for i in range(4)]
    for name, h in st_plain["intermediates"].items():
        np.testing.assert_allclose(inter[name][0], h[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="scan_layers"):
        M.get_model("mlp", widths=(8, 4, 8), scan_layers=True)


# ---------------------------------------------------------------- numpy reference equations
def _perturbed(params, seed, scale=0.5):
    """Init params plus noise (so LayerNorm scales/biases and zero-init biases matter), as float64 numpy."""
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(seed)
    new = [np.asarray(a, np.float64) + scale * rng.normal(size=a.shape) for a in leaves]
    return (jax.tree_util.tree_unflatten(tree, [jnp.asarray(a, jnp.float32) for a in new]),
            jax.tree_util.tree_unflatten(tree, new))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _layer_norm(x, p, eps=1e-6):  # flax nn.LayerNorm default epsilon, biased variance
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


@pytest.mark.parametrize("cell", ["tanh", "gru"])
def test_rnn_cells_match_numpy_equations(cell):
    """Elman: h' = tanh(x W_x + b + h W_h). GRU (Cho et al. 2014, flax convention):
    r = s(x W_ir + b_ir + h W_hr), z = s(x W_iz + b_iz + h W_hz),
    n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), h' = (1 - z) n + z h; h_0 = 0.
    The flatten readout exposes every state to the logits."""
    B, T, F, H = 2, 3, 2, 3
    model = M.get_model("rnn", cell=cell, hidden=H, num_outputs=2, readout="flatten")
    x = np.random.default_rng(1).normal(size=(B, T, F))
    p32, p = _perturbed(model.init(KEY, jnp.asarray(x, jnp.float32))["params"], seed=2)
    out = np.asarray(model.apply({"params": p32}, jnp.asarray(x, jnp.float32)))
    c = p["fwd"]
    h, states = np.zeros((B, H)), []
    for t in range(T):
        xt = x[:, t]
        if cell == "tanh":
            h = np.tanh(xt @ c["input"]["kernel"] + c["input"]["bias"] + h @ c["recurrent"]["kernel"])
        else:
            def lin(name):
                return xt @ c[name]["kernel"] + c[name]["bias"]
            r = _sigmoid(lin("ir") + h @ c["hr"]["kernel"])
            z = _sigmoid(lin("iz") + h @ c["hz"]["kernel"])
            n = np.tanh(lin("in") + r * (h @ c["hn"]["kernel"] + c["hn"]["bias"]))
            h = (1 - z) * n + z * h
        states.append(h)
    ref = np.concatenate(states, axis=1) @ p["readout"]["kernel"] + p["readout"]["bias"]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_transformer_matches_numpy_equations():
    """One pre-LN block: LayerNorm (eps 1e-6, scale and bias), causal multi-head attention with
    softmax(q k^T / sqrt(d_head)) and biased q/k/v/out projections, tanh-approximate GELU MLP,
    final LayerNorm and a biased head, on token + learned position embeddings."""
    V, D, NH, T, B = 5, 4, 2, 5, 2
    model = M.get_model("transformer_lm", vocab_size=V, d_model=D, num_heads=NH, num_layers=1,
                        mlp_ratio=2, max_len=7)
    tokens = np.random.default_rng(3).integers(0, V, size=(B, T))
    p32, p = _perturbed(model.init(KEY, jnp.asarray(tokens))["params"], seed=4)
    out = np.asarray(model.apply({"params": p32}, jnp.asarray(tokens)))

    h = p["tok_embed"]["embedding"][tokens] + p["pos_embed"]["embedding"][:T][None]
    blk = p["block_0"]
    a = blk["attn"]
    y = _layer_norm(h, blk["ln_attn"])
    q, k, v = (np.einsum("btd,dhk->bthk", y, a[n]["kernel"]) + a[n]["bias"] for n in ("query", "key", "value"))
    logits = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(D // NH)
    logits = np.where(np.tril(np.ones((T, T), bool)), logits, -np.inf)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    o = np.einsum("bhqs,bshk->bqhk", w, v)
    h = h + np.einsum("bqhk,hkd->bqd", o, a["out"]["kernel"]) + a["out"]["bias"]
    y = _layer_norm(h, blk["ln_mlp"]) @ blk["mlp_in"]["kernel"] + blk["mlp_in"]["bias"]
    y = 0.5 * y * (1 + np.tanh(np.sqrt(2 / np.pi) * (y + 0.044715 * y ** 3)))
    h = h + y @ blk["mlp_out"]["kernel"] + blk["mlp_out"]["bias"]
    ref = _layer_norm(h, p["ln_f"]) @ p["head"]["kernel"] + p["head"]["bias"]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def _batch_norm_train(z, p, eps=1e-5):  # flax nn.BatchNorm in training mode: batch statistics, biased variance
    mu = z.mean(0)
    return (z - mu) / np.sqrt(z.var(0) + eps) * p["scale"] + p["bias"]


@pytest.mark.parametrize("scan", [False, True])
def test_plain_mlp_matches_numpy_equations(scan):
    """h_0 = x; h_i = tanh(LN(h_{i-1} W_i + b_i)); logits = h_L W_out + b_out. Scanned (layers 2..3 stacked
    after the width change at layer 1) or not, the same equations on the unscanned parameter names."""
    model = M.get_model("mlp", widths=(6, 5, 5, 5), num_outputs=3, activation="tanh", norm="layer",
                        scan_layers=scan)
    x = np.random.default_rng(5).normal(size=(4, 7))
    p32, p = _perturbed(model.init(KEY, jnp.asarray(x, jnp.float32))["params"], seed=6)
    out = np.asarray(model.apply({"params": p32}, jnp.asarray(x, jnp.float32)))
    p = model.unscan(p)
    assert ("layers" in p32) == scan and "norm_final" not in p  # no skips, no final norm
    h = x
    for i in range(4):
        h = np.tanh(_layer_norm(h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"], p[f"norm_{i}"]))
    np.testing.assert_allclose(out, h @ p["readout"]["kernel"] + p["readout"]["bias"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scan", [False, True])
def test_residual_mlp_matches_numpy_equations(scan):
    """Residual + batch norm (train mode): h_0 = relu(BN(x W_0 + b_0)); h_i = h_{i-1} + relu(BN(h_{i-1} W_i + b_i))
    for i >= 1; then the final pre-activation-style normalisation h = relu(BN_final(h_L)) (He et al. 2016b)
    before logits = h W_out + b_out. The final norm's running statistics update like every BN's."""
    model = M.get_model("mlp", widths=(6, 6, 6), num_outputs=3, residual=True, norm="batch", init="he",
                        scan_layers=scan)
    x = np.random.default_rng(7).normal(size=(8, 5))
    variables = model.init(KEY, jnp.asarray(x, jnp.float32))
    p32, p = _perturbed(variables["params"], seed=8)
    out, upd = model.apply({"params": p32, "batch_stats": variables["batch_stats"]}, jnp.asarray(x, jnp.float32),
                           train=True, mutable=["batch_stats"])
    p = model.unscan(p)
    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    h = x
    for i in range(3):
        z = relu(_batch_norm_train(h @ p[f"dense_{i}"]["kernel"] + p[f"dense_{i}"]["bias"], p[f"norm_{i}"]))
        h = h + z if i > 0 else z
    final_in, h = h, relu(_batch_norm_train(h, p["norm_final"]))
    np.testing.assert_allclose(np.asarray(out), h @ p["readout"]["kernel"] + p["readout"]["bias"], rtol=1e-4,
                               atol=1e-4)
    stats = upd["batch_stats"]["norm_final"]  # momentum 0.9 from the init's (0, 1)
    np.testing.assert_allclose(stats["mean"], 0.1 * final_in.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats["var"], 0.9 + 0.1 * final_in.var(0), rtol=1e-4)


def test_final_norm_only_for_residual_nets_with_a_norm_and_a_skip():
    x = jnp.ones((2, 5))
    has = lambda **kw: "norm_final" in M.get_model("mlp", num_outputs=3, **kw).init(KEY, x)["params"]  # noqa: E731
    assert has(widths=(6, 6), residual=True, norm="layer")
    assert not has(widths=(6, 6), residual=True)                    # no norm: nothing to end with
    assert not has(widths=(6, 6), norm="layer")                      # plain nets unchanged
    assert not has(widths=(6, 4), residual=True, norm="layer")       # width change: no skip at all
    assert not has(widths=(6, 6), residual=True, norm="layer", final_norm=False)  # opted out

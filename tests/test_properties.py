"""Property-based tests (issue 12, part 6): config and ``--set`` parsing, losses at extreme logits,
continual metrics against their published definitions, dataset loaders on random bytes.

Each property runs a few dozen examples; compiled functions are built once, outside the
properties, with fixed shapes, so hypothesis never triggers a recompile."""
import dataclasses
import gzip
import io
import math
import pickle
import struct
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lossatlas import continual as cl
from lossatlas import data, losses, runner
from lossatlas.data import files as data_files
from lossatlas.train import TrainConfig, limits
from lossatlas.overrides import check_type, parse_value

FEW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------ --set parsing


@dataclasses.dataclass(frozen=True)
class Cfg:
    seeds: int = 1
    seed: int = 0
    epochs: int = 3
    rate: float = 0.1
    flag: bool = False
    name: str = "mlp"
    models: tuple = ("a",)
    num_train: int | None = None


MODULE = types.ModuleType("lossatlas_experiments.prop")
MODULE.Config, MODULE.QUICK = Cfg, {}

finite = st.floats(allow_nan=False, allow_infinity=False)
# words the parser keeps as strings: not a Python literal, not true/false/none/null, no comma
words = st.text(st.characters(categories=("Ll", "Lu"), max_codepoint=127), min_size=1, max_size=8).filter(
    lambda w: w.lower() not in ("true", "false", "none", "null", "inf", "nan", "infinity"))


@FEW
@given(seed=st.integers(0, 2**40), rate=finite, flag=st.booleans(), name=words,
       models=st.lists(words, min_size=1, max_size=4), num_train=st.none() | st.integers(-10**6, 10**6))
def test_set_values_round_trip(seed, rate, flag, name, models, num_train):
    overrides = {"seed": str(seed), "rate": repr(rate), "flag": str(flag).upper(), "name": name,
                 "models": ",".join(models), "num_train": str(num_train)}
    cfg = runner.make_config(MODULE, overrides=overrides)
    assert cfg.seed == seed and type(cfg.seed) is int
    assert cfg.rate == rate and type(cfg.rate) is float
    assert cfg.flag is flag and cfg.name == name and cfg.models == tuple(models)
    assert cfg.num_train == num_train


@FEW
@given(value=finite.filter(lambda v: not float(v).is_integer()) | words | st.booleans().map(str))
def test_set_rejects_non_integers_for_int_fields_naming_the_field(value):
    text = repr(value) if isinstance(value, float) else value
    with pytest.raises(ValueError, match=r"--set seed: Cfg\.seed must be int, got "):
        runner.make_config(MODULE, overrides={"seed": text})


@FEW
@given(value=words | st.integers().map(str))
def test_parse_value_for_floats_and_check_type(value):
    parsed = parse_value(value, float)
    if isinstance(parsed, float):
        assert check_type("Cfg", "rate", parsed, float) == float(value)
    else:
        with pytest.raises(ValueError, match=r"Cfg\.rate must be float, got "):
            check_type("Cfg", "rate", parsed, float)


@FEW
@given(epochs=st.integers(1, 2**40))
def test_set_epochs_cap(epochs, monkeypatch):
    monkeypatch.delenv(limits.MAX_STEPS_ENV, raising=False)
    if epochs <= limits.DEFAULT_MAX_STEPS:
        assert runner.make_config(MODULE, overrides={"epochs": str(epochs)}).epochs == epochs
    else:
        with pytest.raises(ValueError, match=rf"--set epochs={epochs} is more than the sanity cap"):
            runner.make_config(MODULE, overrides={"epochs": str(epochs)})


INT_FIELDS = {"batch_size": 1, "epochs": 1, "eval_batch_size": 1, "warmup_steps": 0, "chunk_epochs": 1}


@FEW
@given(field=st.sampled_from(sorted(INT_FIELDS)), offset=st.integers(1, 10**9))
def test_train_config_refuses_out_of_range_integers_by_name(field, offset):
    bad = INT_FIELDS[field] - offset
    with pytest.raises(ValueError, match=rf"^TrainConfig\.{field} must be an integer >= {INT_FIELDS[field]}( or None)?, got {bad}$"):
        TrainConfig(**{field: bad})


# ------------------------------------------------------------------------------ losses

B, C = 4, 5
big = st.floats(-1e4, 1e4, width=32)
logits_BxC = hnp.arrays(np.float32, (B, C), elements=big)
labels_B = hnp.arrays(np.int32, (B,), elements=st.integers(0, C - 1))


def _three(fn):
    """jit once: (none, sum, mean) of a loss."""
    return jax.jit(lambda *a: tuple(fn(*a, reduction=r) for r in ("none", "sum", "mean")))


CE = _three(losses.cross_entropy)
CE_SMOOTH = _three(lambda l, y, reduction: losses.cross_entropy(l, y, label_smoothing=0.1, reduction=reduction))
BCE = _three(losses.binary_cross_entropy)
MSE = _three(losses.mse)
NLL = _three(losses.token_nll)


def _reductions_agree(none, total, mean, n, what):
    none, total, mean = (np.asarray(v, np.float64) for v in (none, total, mean))
    assert np.all(np.isfinite(none)) and np.isfinite(total) and np.isfinite(mean), what
    scale = 1e-5 * max(1.0, float(np.abs(none).max()))
    np.testing.assert_allclose(total, none.sum(), rtol=1e-5, atol=scale * none.size, err_msg=what)
    np.testing.assert_allclose(mean, total / n, rtol=1e-5, atol=scale, err_msg=what)
    np.testing.assert_allclose(mean, none.mean(), rtol=1e-5, atol=scale, err_msg=what)


def _logsumexp(x):
    m = x.max(-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]


@FEW
@given(logits=logits_BxC, labels=labels_B)
def test_cross_entropy_finite_and_exact_at_extreme_logits(logits, labels):
    none, total, mean = CE(logits, labels)
    _reductions_agree(none, total, mean, B, "cross_entropy")
    x = logits.astype(np.float64)
    ref = _logsumexp(x) - x[np.arange(B), labels]  # -log softmax(x)[y], in float64
    np.testing.assert_allclose(np.asarray(none), ref, rtol=1e-5, atol=2e-2)
    assert np.all(np.asarray(none) >= 0)
    _reductions_agree(*CE_SMOOTH(logits, labels), B, "cross_entropy with label smoothing")
    soft = jax.nn.softmax(jnp.asarray(np.flip(logits, 0) / 1e3), axis=-1)  # soft targets
    _reductions_agree(*CE(logits, soft), B, "cross_entropy with soft targets")


@FEW
@given(logits=logits_BxC, targets=hnp.arrays(np.float32, (B, C), elements=st.sampled_from([0.0, 1.0])))
def test_binary_cross_entropy_finite_and_exact_at_extreme_logits(logits, targets):
    none, total, mean = BCE(logits, targets)
    _reductions_agree(none, total, mean, B * C, "binary_cross_entropy")  # mean over every element
    x = logits.astype(np.float64)
    ref = np.where(targets == 1, np.logaddexp(0, -x), np.logaddexp(0, x))  # -log s(x) / -log(1 - s(x))
    np.testing.assert_allclose(np.asarray(none), ref, rtol=1e-5, atol=1e-5)


@FEW
@given(pred=hnp.arrays(np.float32, (B, 3), elements=big), target=hnp.arrays(np.float32, (B, 3), elements=big))
def test_mse_finite_and_reductions_agree(pred, target):
    none, total, mean = MSE(pred, target)
    _reductions_agree(none, total, mean, B, "mse")
    ref = ((pred.astype(np.float64) - target) ** 2).mean(-1)
    np.testing.assert_allclose(np.asarray(none), ref, rtol=1e-5, atol=1e-35)  # float32 underflow below


@FEW
@given(logits=hnp.arrays(np.float32, (2, 3, C), elements=big),
       tokens=hnp.arrays(np.int32, (2, 3), elements=st.integers(0, C - 1)),
       mask=hnp.arrays(np.float32, (2, 3), elements=st.sampled_from([0.0, 1.0])))
def test_token_nll_masked_reductions(logits, tokens, mask):
    none, total, mean = (np.asarray(v, np.float64) for v in NLL(logits, tokens, mask))
    assert np.all(np.isfinite(none)) and np.all(none[mask == 0] == 0)
    np.testing.assert_allclose(total, none.sum(), rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(mean, total / max(mask.sum(), 1.0), rtol=1e-5, atol=1e-3)


# ------------------------------------------------------------------------------ continual metrics


@st.composite
def accuracy_matrices(draw, min_tasks=2):
    t = draw(st.integers(min_tasks, 6))
    s = draw(st.integers(1, 3))
    unit = st.floats(0, 1)
    r = draw(hnp.arrays(np.float64, (s, t, t), elements=unit))
    b = draw(hnp.arrays(np.float64, (s, t), elements=unit))
    return r, b


def _by_definition(R, b):
    """The metrics of one T x T matrix, written from the papers' formulas with plain loops."""
    T = len(R)
    acc = sum(R[T - 1, j] for j in range(T)) / T                                 # Lopez-Paz & Ranzato 2017
    bwt = sum(R[T - 1, j] - R[j, j] for j in range(T - 1)) / (T - 1)             # ibid.
    fwt = sum(R[j - 1, j] - b[j] for j in range(1, T)) / (T - 1)                 # ibid.
    forget = sum(max(R[l, j] for l in range(T - 1)) - R[T - 1, j] for j in range(T - 1)) / (T - 1)  # Chaudhry
    la = sum(R[j, j] for j in range(T)) / T
    return {"acc": acc, "bwt": bwt, "fwt": fwt, "forgetting": forget, "learning_acc": la}


@settings(max_examples=50, deadline=None)
@given(rb=accuracy_matrices())
def test_continual_metrics_match_their_definitions(rb):
    r, b = rb
    got = cl.summarize(r, init_acc=b, reference=np.ones(r.shape[-1]))
    for i in range(len(r)):
        want = _by_definition(r[i], b[i])
        for k, v in want.items():
            assert got[k][i] == pytest.approx(v, abs=1e-12), k
        assert got["intransigence"][i] == pytest.approx(1 - want["learning_acc"], abs=1e-12)
        # the max over earlier rows includes R[j, j], so forgetting >= -BWT
        assert got["forgetting"][i] >= -got["bwt"][i] - 1e-12
    assert got["acc"].shape == (len(r),)


@settings(max_examples=20, deadline=None)
@given(rb=accuracy_matrices())
def test_continual_metrics_of_a_never_forgetting_learner(rb):
    """A learner whose accuracy on every task never changes after it is learned (and is 0
    before): BWT = 0 and forgetting = 0."""
    r, _ = rb
    t = r.shape[-1]
    diag = np.diagonal(r, axis1=-2, axis2=-1)
    frozen = np.where(np.arange(t)[:, None] >= np.arange(t)[None, :], diag[:, None, :], 0.0)  # R[i, j] = R[j, j], i >= j
    assert np.allclose(cl.backward_transfer(frozen), 0) and np.allclose(cl.forgetting(frozen), 0)


# ------------------------------------------------------------------------------ loaders on random bytes


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    """Valid IDX (.gz), .npz and CIFAR batch bytes, written independently of the readers."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 6).astype(np.uint8)
    idx = struct.pack(">BBBB", 0, 0, 8, 1) + struct.pack(">I", 6) + labels.tobytes()
    buf = io.BytesIO()
    np.savez(buf, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([1, 2]),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.array([3]))
    cifar = pickle.dumps({b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [4, 5]})
    return {"gz": gzip.compress(idx), "npz": buf.getvalue(), "cifar": cifar,
            "dir": tmp_path_factory.mktemp("random_bytes")}


def _read(kind, raw, d):
    if kind == "gz":
        p = d / "train-labels-idx1-ubyte.gz"
        p.write_bytes(raw)
        return p, lambda: data_files.read_idx(str(p), 1)
    if kind == "idx":
        p = d / "train-labels-idx1-ubyte"
        p.write_bytes(raw)
        return p, lambda: data_files.read_idx(str(p), 1)
    if kind == "npz":
        p = d / "mnist.npz"
        p.write_bytes(raw)
        return p, lambda: data_files._read_npz(str(p))
    p = d / "data_batch_1"
    p.write_bytes(raw)
    return p, lambda: data_files._read_cifar_batch(str(p))


def _clean(err, p):
    msg = str(err)
    assert str(p) in msg and "\n" not in msg and "allow_pickle" not in msg, msg


@FEW
@given(kind=st.sampled_from(["gz", "idx", "npz", "cifar"]), raw=st.binary(max_size=300))
def test_loaders_on_random_bytes_raise_the_clean_error(good_files, kind, raw):
    p, read = _read(kind, raw, good_files["dir"])
    try:
        read()  # random bytes may, rarely, form a valid file: then it must just read
    except data.DataFileError as err:
        _clean(err, p)


@FEW
@given(kind=st.sampled_from(["gz", "npz", "cifar"]), cut=st.floats(0, 1, exclude_max=True))
def test_loaders_on_truncated_files_raise_the_clean_error(good_files, kind, cut):
    raw = good_files[kind]
    p, read = _read(kind, raw[:int(cut * len(raw))], good_files["dir"])
    with pytest.raises(data.DataFileError) as e:
        read()
    _clean(e.value, p)


@FEW
@given(kind=st.sampled_from(["gz", "npz", "cifar"]), pos=st.floats(0, 1, exclude_max=True),
       byte=st.integers(0, 255))
def test_loaders_on_corrupted_bytes_raise_the_clean_error(good_files, kind, pos, byte):
    raw = bytearray(good_files[kind])
    raw[int(pos * len(raw))] = byte
    p, read = _read(kind, bytes(raw), good_files["dir"])
    try:
        read()  # a changed pixel or label byte is still a valid file
    except data.DataFileError as err:
        _clean(err, p)


def test_the_good_files_read(good_files):
    """The valid bytes above do read, so the properties test corruption, not a broken fixture."""
    for kind in ("gz", "npz", "cifar"):
        _, read = _read(kind, good_files[kind], good_files["dir"])
        read()
    assert math.isfinite(float(np.sum(_read("gz", good_files["gz"], good_files["dir"])[1]())))

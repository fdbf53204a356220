"""Tests for lossatlas.data: shapes, exact known quantities, file formats, errors."""
import gzip
import pickle
import random
import struct

import numpy as np
import pytest

from lossatlas import data
from lossatlas.data import files as data_files
from lossatlas.data import markov, mnist1d as mnist1d_mod, synthetic, text as text_mod


# ---------------------------------------------------------------- registry / errors

def test_registry_names():
    assert data.list_datasets() == sorted(data.DATASETS)
    assert {"digits", "mnist1d", "teacher_student", "markov_text", "text", "mnist",
            "fashion_mnist", "cifar10"} <= set(data.DATASETS)
    assert all(callable(f) for f in data.DATASETS.values())


def test_unknown_name_lists_valid_names_sorted():
    with pytest.raises(ValueError) as e:
        data.load("imagenet")
    assert "'imagenet'" in str(e.value)
    assert ", ".join(data.list_datasets()) in str(e.value)


def test_unknown_option_names_key_and_accepted():
    with pytest.raises(ValueError, match=r"load\('digits'\): unknown option 'foo'; accepted: flatten"):
        data.load("digits", foo=1)
    with pytest.raises(ValueError, match="accepted: .*num_samples.*seed"):
        data.load("mnist1d", url="http://x")  # url is deliberately not an option


def test_missing_required_option():
    with pytest.raises(ValueError, match="missing required option 'path'"):
        data.load("text")
    with pytest.raises(ValueError, match="missing required option 'root'"):
        data.load("mnist")


@pytest.mark.parametrize("name,cfg,field", [
    ("teacher_student", {"num_train": -1}, "num_train"),
    ("teacher_student", {"noise_std": -0.1}, "noise_std"),
    ("teacher_student", {"input_dim": 2.5}, "input_dim"),
    ("markov_text", {"seq_len": 0}, "seq_len"),
    ("markov_text", {"vocab_size": 63}, "vocab_size"),
    ("markov_text", {"vocab_size": 1}, "vocab_size"),
    ("markov_text", {"order": 3}, "order"),
    ("markov_text", {"concentration": 0.0}, "concentration"),
    ("markov_text", {"num_test": -5}, "num_test"),
    ("mnist1d", {"train_split": 1.0}, "train_split"),
    ("mnist1d", {"num_samples": 3}, "num_samples"),
    ("mnist1d", {"padding": (5, 2)}, "padding"),
    ("digits", {"flatten": "yes"}, "flatten"),
    ("mnist", {"root": "/nonexistent", "num_train": -1}, "num_train"),
])
def test_bad_values_name_the_field(name, cfg, field):
    with pytest.raises(ValueError) as e:
        data.load(name, **cfg)
    msg = str(e.value)
    assert msg.startswith(f"load('{name}'): {field}"), msg


# ---------------------------------------------------------------- digits

def test_digits(digits):
    assert digits.name == "digits" and digits.task == "classification"
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int32
    assert digits.num_classes == 10
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() == 1.0
    # stratified: each class is ~20% test
    tr, te = np.bincount(digits.y_train, minlength=10), np.bincount(digits.y_test, minlength=10)
    np.testing.assert_allclose(te / (tr + te), 0.2, atol=0.01)


def test_digits_nhwc_same_values(digits):
    img = data.load("digits", flatten=False)
    assert img.x_train.shape == (1437, 8, 8, 1) and img.x_test.shape == (360, 8, 8, 1)
    np.testing.assert_array_equal(img.x_train.reshape(1437, 64), digits.x_train)
    np.testing.assert_array_equal(img.y_test, digits.y_test)


# ---------------------------------------------------------------- mnist1d

def test_mnist1d(mnist1d):
    assert mnist1d.x_train.shape == (4000, 40) and mnist1d.x_test.shape == (1000, 40)
    assert mnist1d.x_train.dtype == np.float32 and mnist1d.y_train.dtype == np.int32
    assert mnist1d.num_classes == 10 and mnist1d.task == "classification"
    for y in (mnist1d.y_train, mnist1d.y_test):
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10 and counts.min() > 0
        np.testing.assert_allclose(counts / len(y), 0.1, atol=0.03)
    assert mnist1d.meta["paper"] == "Greydanus 2020"
    from mnist1d.data import get_dataset_args
    paper = get_dataset_args(as_dict=True)
    paper.pop("url")
    assert mnist1d.meta["args"] == paper
    assert {k: (list(v) if isinstance(v, tuple) else v)
            for k, v in mnist1d_mod.DEFAULT_ARGS.items()} == paper


def test_mnist1d_cached_and_read_only(mnist1d):
    again = data.load("mnist1d")
    assert again is not mnist1d
    np.testing.assert_array_equal(again.x_train, mnist1d.x_train)
    np.testing.assert_array_equal(again.y_test, mnist1d.y_test)
    with pytest.raises(ValueError):
        again.x_train[0, 0] = 123.0
    again.meta["args"]["seed"] = -1  # meta is per-call, so this cannot leak
    assert data.load("mnist1d").meta["args"]["seed"] == 42


def test_mnist1d_deterministic_and_keeps_global_rng():
    cfg = dict(num_samples=200, seed=7)
    np.random.seed(123)
    random.seed(123)
    ds = data.load("mnist1d", **cfg)  # uncached: really runs the generator
    got_np, got_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    assert (got_np, got_py) == (np.random.random(), random.random())
    assert ds.x_train.shape == (160, 40) and ds.x_test.shape == (40, 40)
    mnist1d_mod._generate.cache_clear()
    fresh = data.load("mnist1d", **cfg)
    np.testing.assert_array_equal(fresh.x_train, ds.x_train)
    np.testing.assert_array_equal(fresh.y_train, ds.y_train)
    other = data.load("mnist1d", num_samples=200, seed=8)
    assert not np.array_equal(other.x_train, ds.x_train)


# ---------------------------------------------------------------- teacher_student

@pytest.mark.parametrize("hidden", [0, 16])
def test_teacher_mse_matches_noise_var(hidden):
    ds = data.load("teacher_student", num_train=10, num_test=20000, input_dim=8, output_dim=4,
                   hidden=hidden, noise_std=0.3, seed=1)
    assert ds.task == "regression" and ds.num_classes == 0
    assert ds.x_test.shape == (20000, 8) and ds.y_test.shape == (20000, 4)
    assert ds.x_test.dtype == np.float32 and ds.y_test.dtype == np.float32
    assert ds.meta["noise_var"] == pytest.approx(0.09) and ds.meta["best_mse"] == ds.meta["noise_var"]
    mse = np.mean((synthetic.teacher_predict(ds.meta["teacher"], ds.x_test) - ds.y_test) ** 2)
    # 80k squared Gaussians: relative std of the mean is 0.5%
    assert mse == pytest.approx(ds.meta["noise_var"], rel=0.03)
    # the signal is not trivially small compared to the noise
    assert np.var(ds.y_test) > 2 * ds.meta["noise_var"]


def test_least_squares_recovers_linear_teacher():
    ds = data.load("teacher_student", num_train=4000, input_dim=20, output_dim=3, noise_std=0.1)
    X = np.concatenate([ds.x_train, np.ones((ds.num_train, 1), np.float32)], axis=1)
    coef, *_ = np.linalg.lstsq(X.astype(np.float64), ds.y_train.astype(np.float64), rcond=None)
    t = ds.meta["teacher"]
    # standard error of each coefficient is ~ 0.1 / sqrt(4000) = 0.0016
    np.testing.assert_allclose(coef[:-1], t["W"], atol=0.01)
    np.testing.assert_allclose(coef[-1], t["b"], atol=0.01)
    assert not np.allclose(t["W"], 0, atol=0.05)


def test_teacher_student_seeded():
    a = data.load("teacher_student", num_train=50, num_test=5)
    b = data.load("teacher_student", num_train=50, num_test=5)
    c = data.load("teacher_student", num_train=50, num_test=5, seed=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


# ---------------------------------------------------------------- markov_text

def _binary_entropy(p):
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


@pytest.mark.parametrize("method", ["solve", "power"])
def test_two_state_chain_closed_form(method):
    a, b = 0.2, 0.7
    P = np.array([[1 - a, a], [b, 1 - b]])
    pi = markov.stationary_distribution(P, 1, method=method)
    np.testing.assert_allclose(pi, [b / (a + b), a / (a + b)], atol=1e-12)
    H = markov.entropy_rate(P, pi)
    assert H == pytest.approx(b / (a + b) * _binary_entropy(a) + a / (a + b) * _binary_entropy(b),
                              abs=1e-12)
    # periodic chain: lazy power iteration still converges
    pi = markov.stationary_distribution(np.array([[0.0, 1.0], [1.0, 0.0]]), 1, method=method)
    np.testing.assert_allclose(pi, [0.5, 0.5], atol=1e-12)
    assert markov.entropy_rate(np.array([[0.0, 1.0], [1.0, 0.0]]), pi) == 0.0


@pytest.mark.parametrize("method", ["solve", "power"])
def test_order2_stationary_brute_force(method):
    rng = np.random.default_rng(3)
    V = 3
    P = rng.dirichlet(np.ones(V), size=V * V)
    T = np.zeros((V * V, V * V))  # explicit context chain (a, b) -> (b, j)
    for a in range(V):
        for b in range(V):
            for j in range(V):
                T[a * V + b, b * V + j] = P[a * V + b, j]
    w, vecs = np.linalg.eig(T.T)
    ref = np.real(vecs[:, np.argmin(np.abs(w - 1))])
    ref /= ref.sum()
    pi = markov.stationary_distribution(P, 2, method=method)
    np.testing.assert_allclose(pi, ref, atol=1e-11)
    H_ref = -sum(ref[c] * P[c, j] * np.log(P[c, j]) for c in range(V * V) for j in range(V))
    assert markov.entropy_rate(P, pi) == pytest.approx(H_ref, abs=1e-11)


def _true_nll(ds):
    """Mean NLL of the true table on test+train targets that have full context."""
    P, k, V = ds.meta["transition"], ds.meta["order"], ds.num_classes
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    ctx = x[:, k - 1:].astype(np.int64)
    if k == 2:
        ctx = x[:, :-1] * V + x[:, 1:]
    return -np.mean(np.log(P[ctx, y[:, k - 1:]]))


@pytest.mark.parametrize("order", [1, 2])
def test_markov_text(order):
    ds = data.load("markov_text", order=order, vocab_size=12, seq_len=48, num_train=2048,
                   num_test=256, seed=order)
    V = 12
    assert ds.task == "language" and ds.num_classes == V
    assert ds.x_train.shape == (2048, 48) and ds.y_test.shape == (256, 48)
    assert ds.x_train.dtype == np.int32 and ds.y_train.dtype == np.int32
    np.testing.assert_array_equal(ds.x_train[:, 1:], ds.y_train[:, :-1])  # y is x shifted
    m = ds.meta
    assert m["vocab"] == "abcdefghijkl" and m["order"] == order
    assert m["full_context_start"] == order - 1 and "entropy_rate" in m["note"]
    P, pi = m["transition"], m["stationary"]
    assert P.shape == (V**order, V) and pi.shape == (V**order,)
    np.testing.assert_allclose(P.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(markov._context_step(pi, P, order), pi, atol=1e-12)
    assert 0 < m["entropy_rate"] < np.log(V)
    # the true table's NLL on full-context targets ~ entropy rate (~120k tokens)
    assert _true_nll(ds) == pytest.approx(m["entropy_rate"], abs=0.02)
    # token frequencies match the stationary unigram; frequent and rare characters exist
    freq = np.bincount(ds.y_train.ravel(), minlength=V) / ds.y_train.size
    np.testing.assert_allclose(freq, m["unigram"], atol=0.01)
    assert m["unigram"].max() > 5 * m["unigram"].min()
    # windows are stationary: first-position inputs are distributed like the unigram too
    np.testing.assert_allclose(np.bincount(ds.x_train[:, 0], minlength=V) / 2048,
                               m["unigram"], atol=0.04)


def test_markov_text_seed_and_concentration():
    a = data.load("markov_text", num_train=4, num_test=2, seq_len=8)
    b = data.load("markov_text", num_train=4, num_test=2, seq_len=8)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.meta["transition"], b.meta["transition"])
    peaky = data.load("markov_text", num_train=1, num_test=0, seq_len=1, concentration=0.05)
    flat = data.load("markov_text", num_train=1, num_test=0, seq_len=1, concentration=50.0)
    assert peaky.meta["entropy_rate"] < flat.meta["entropy_rate"] < np.log(16)


def test_markov_text_large_vocab_order2_power_path():
    ds = data.load("markov_text", vocab_size=40, order=2, num_train=8, num_test=2, seq_len=4)
    pi, P = ds.meta["stationary"], ds.meta["transition"]
    assert pi.shape == (1600,) and pi.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(markov._context_step(pi, P, 2), pi, atol=1e-12)


# ---------------------------------------------------------------- text

def test_text_roundtrip(tmp_path):
    body = "the quick brown fox jumps over the lazy dog. " * 20
    p = tmp_path / "corpus.txt"
    p.write_text(body, encoding="utf-8")
    ds = data.load("text", path=str(p), seq_len=16, test_fraction=0.25)
    vocab = ds.meta["vocab"]
    assert vocab == "".join(sorted(set(body))) and ds.num_classes == len(vocab)
    assert ds.meta["path"] == str(p) and ds.task == "language"
    n_train = int(len(body) * 0.75)
    assert ds.num_train == (n_train - 1) // 16 and ds.num_test == (len(body) - n_train - 1) // 16
    assert ds.x_train.dtype == np.int32 and ds.x_train.shape[1] == 16
    assert text_mod.decode(ds.x_train[0], vocab) == body[:16]
    assert text_mod.decode(ds.y_train[0], vocab) == body[1:17]
    assert text_mod.decode(ds.x_train, vocab) == body[:16 * ds.num_train]  # non-overlapping
    assert text_mod.decode(ds.x_test[0], vocab) == body[n_train:n_train + 16]
    np.testing.assert_array_equal(text_mod.encode(body[:16], vocab), ds.x_train[0])
    dense = data.load("text", path=p, seq_len=16, test_fraction=0.25, stride=1)
    assert dense.num_train == n_train - 16
    assert text_mod.decode(dense.x_train[1], vocab) == body[1:17]


def test_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        data.load("text", path=str(tmp_path / "nope.txt"))
    p = tmp_path / "short.txt"
    p.write_text("abcdefghij" * 3)
    with pytest.raises(ValueError, match="seq_len"):
        data.load("text", path=str(p), seq_len=16)
    with pytest.raises(ValueError, match="test_fraction"):
        data.load("text", path=str(p), test_fraction=0.0)


# ---------------------------------------------------------------- image files

def _idx_bytes(arr):
    """An IDX file body written from the spec, independently of the reader."""
    code = {np.uint8: 0x08, np.int32: 0x0C}[arr.dtype.type]
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _mnist_arrays(seed=0, n_train=7, n_test=5):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train).astype(np.uint8),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test).astype(np.uint8))


def _check_mnist(ds, arrays):
    xtr, ytr, xte, yte = arrays
    assert ds.x_train.shape == (len(xtr), 28, 28, 1) and ds.x_train.dtype == np.float32
    assert ds.y_train.dtype == np.int32 and ds.num_classes == 10
    np.testing.assert_array_equal(ds.x_train[..., 0], xtr.astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(np.rint(ds.x_test[..., 0] * 255).astype(np.uint8), xte)
    np.testing.assert_array_equal(ds.y_train, ytr)
    np.testing.assert_array_equal(ds.y_test, yte)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, name, gz):
    arrays = _mnist_arrays()
    for stem, arr in zip(data_files.IDX_FILES, arrays):
        raw = _idx_bytes(arr)
        if gz:
            with gzip.open(tmp_path / f"{stem}.gz", "wb") as f:
                f.write(raw)
        else:
            (tmp_path / stem).write_bytes(raw)
    ds = data.load(name, root=str(tmp_path))
    _check_mnist(ds, arrays)
    assert ds.meta["source"] == "idx" and ds.name == name
    flat = data.load(name, root=tmp_path, flatten=True, num_train=3, num_test=0)
    assert flat.x_train.shape == (3, 784) and flat.x_test.shape == (0, 784)
    np.testing.assert_array_equal(flat.x_train, ds.x_train[:3].reshape(3, 784))
    with pytest.raises(ValueError, match="num_train"):
        data.load(name, root=tmp_path, num_train=8)


def test_idx_reader_validates(tmp_path):
    arr = np.arange(12, dtype=np.int32).reshape(3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    np.testing.assert_array_equal(data_files.read_idx(str(tmp_path / "a")), arr)
    with pytest.raises(ValueError, match="3 dimensions"):
        data_files.read_idx(str(tmp_path / "a"), expected_ndim=3)
    (tmp_path / "b").write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 20)
    with pytest.raises(ValueError, match="magic"):
        data_files.read_idx(str(tmp_path / "b"))
    (tmp_path / "c").write_bytes(_idx_bytes(arr)[:-4])
    with pytest.raises(ValueError, match="header says shape"):
        data_files.read_idx(str(tmp_path / "c"))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_npz(tmp_path, name):
    arrays = _mnist_arrays(seed=1)
    np.savez(tmp_path / f"{name}.npz", **dict(zip(["x_train", "y_train", "x_test", "y_test"],
                                                  arrays)))
    ds = data.load(name, root=tmp_path)
    _check_mnist(ds, arrays)
    assert ds.meta["source"] == "npz"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_missing_files(tmp_path, name):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")  # incomplete set
    with pytest.raises(FileNotFoundError) as e:
        data.load(name, root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg
    for f in data_files.IDX_FILES:
        assert f + ".gz" in msg
    assert f"{name}.npz" in msg


def _write_cifar(d, n_per_batch=3, seed=0):
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    batches = {}
    for f in data_files.CIFAR10_FILES:
        batch = {b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
                 b"batch_label": f.encode()}
        with open(d / f, "wb") as fh:
            pickle.dump(batch, fh)
        batches[f] = batch
    return batches


@pytest.mark.parametrize("sub", [True, False])
def test_cifar10(tmp_path, sub):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py" if sub else tmp_path)
    ds = data.load("cifar10", root=str(tmp_path))
    assert ds.x_train.shape == (15, 32, 32, 3) and ds.x_test.shape == (3, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32
    raw = np.concatenate([batches[f][b"data"] for f in data_files.CIFAR10_FILES[:-1]])
    # pixel (row i, col j, channel c) is raw[n, c * 1024 + i * 32 + j]
    n, i, j, c = 4, 5, 17, 2
    assert ds.x_train[n, i, j, c] == np.float32(raw[n, c * 1024 + i * 32 + j]) / np.float32(255)
    ref = raw.reshape(15, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(ds.x_train, ref)
    np.testing.assert_array_equal(
        ds.y_train, sum((batches[f][b"labels"] for f in data_files.CIFAR10_FILES[:-1]), []))
    np.testing.assert_array_equal(ds.y_test, batches["test_batch"][b"labels"])
    few = data.load("cifar10", root=tmp_path, num_train=4, num_test=1, flatten=True)
    assert few.x_train.shape == (4, 3072) and few.x_test.shape == (1, 3072)
    np.testing.assert_array_equal(few.x_train, ds.x_train[:4].reshape(4, -1))


def test_cifar10_missing(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        data.load("cifar10", root=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "data_batch_1" in msg and "test_batch" in msg
    assert "cifar-10-batches-py" in msg

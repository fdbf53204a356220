"""Image datasets read from files the user already has: MNIST, Fashion-MNIST, CIFAR-10.

Nothing is downloaded. MNIST-style data is read from the four IDX files (gzipped
or not) or from a Keras-style ``.npz``; CIFAR-10 from the "python version"
pickle batches. Note that pickles can run code when loaded: only point ``root``
at files you trust.
"""
from __future__ import annotations

import gzip
import os
import pickle

import numpy as np

from lossatlas.data._checks import check_bool, check_int, check_optional_count
from lossatlas.data.dataset import Dataset

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR10_SUBDIR = "cifar-10-batches-py"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# IDX type codes (third byte of the magic number) -> numpy big-endian dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str, expected_ndim: int | None = None) -> np.ndarray:
    """Parse an IDX file (optionally gzipped) by its header.

    The header is a 4-byte magic number ``0x00 0x00 <type code> <ndim>``
    followed by ``ndim`` big-endian uint32 sizes, then the data row-major.

    Args:
      path: file path; a ``.gz`` suffix means gzip-compressed.
      expected_ndim: if given, the number of dimensions the file must have
        (3 for images, 1 for labels).

    Returns:
      The array, in the file's dtype (native byte order).
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number {raw[:4].hex()!r})")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise ValueError(f"{path!r}: expected an IDX file with {expected_ndim} dimensions "
                         f"(magic 0x{0x800 + expected_ndim:08x}), got {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path!r}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path!r}: header says shape {shape} ({expected} bytes of data) "
                         f"but the file holds {len(raw) - header}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _to_unit_float(x: np.ndarray) -> np.ndarray:
    """uint8 (or 0..255-valued) pixels -> float32 in [0, 1]; [0, 1] floats pass through."""
    if np.issubdtype(x.dtype, np.integer) or (x.size and float(np.max(x)) > 1.0):
        return (np.asarray(x, np.float32) / np.float32(255.0))
    return np.asarray(x, np.float32)


def _check_counts(num_train, num_test):
    if num_train is not None:
        check_int("num_train", num_train, 0)
    if num_test is not None:
        check_int("num_test", num_test, 0)


def _finish(name, x_train, y_train, x_test, y_test, flatten, num_train, num_test, meta):
    n_tr = check_optional_count("num_train", num_train, len(x_train))
    n_te = check_optional_count("num_test", num_test, len(x_test))
    x_train, y_train, x_test, y_test = x_train[:n_tr], y_train[:n_tr], x_test[:n_te], y_test[:n_te]
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"{name}: images and labels differ in number "
                         f"({len(x_train)}/{len(y_train)} train, {len(x_test)}/{len(y_test)} test)")
    x_train, x_test = _to_unit_float(x_train), _to_unit_float(x_test)
    if flatten:
        x_train = x_train.reshape(len(x_train), int(np.prod(x_train.shape[1:])))
        x_test = x_test.reshape(len(x_test), int(np.prod(x_test.shape[1:])))
    return Dataset(name=name, x_train=np.ascontiguousarray(x_train),
                   y_train=np.asarray(y_train, np.int32).reshape(-1),
                   x_test=np.ascontiguousarray(x_test),
                   y_test=np.asarray(y_test, np.int32).reshape(-1),
                   num_classes=10, task="classification", meta=meta)


def _find_idx(root: str) -> list[str] | None:
    found = []
    for stem in IDX_FILES:
        for cand in (stem + ".gz", stem):
            if os.path.isfile(os.path.join(root, cand)):
                found.append(os.path.join(root, cand))
                break
        else:
            return None
    return found


def _load_mnist_like(name: str, root, flatten, num_train, num_test) -> Dataset:
    root = os.fspath(root)
    flatten = check_bool("flatten", flatten)
    _check_counts(num_train, num_test)
    files = _find_idx(root)
    npz = os.path.join(root, f"{name}.npz")
    meta = {"root": root}
    if name == "fashion_mnist":
        meta["classes"] = list(FASHION_CLASSES)
    if files is not None:
        xtr, ytr, xte, yte = (read_idx(p, nd) for p, nd in zip(files, (3, 1, 3, 1)))
        meta.update(source="idx", files=files)
    elif os.path.isfile(npz):
        with np.load(npz, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
            if missing:
                raise ValueError(f"{npz!r} lacks keys {missing}; expected x_train, y_train, "
                                 f"x_test, y_test")
            xtr, ytr, xte, yte = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
        meta.update(source="npz", files=[npz])
    else:
        where = "does not exist" if not os.path.isdir(root) else "has neither layout"
        raise FileNotFoundError(
            f"load({name!r}): directory {root!r} {where}; expected either the IDX files "
            f"{', '.join(s + '.gz' for s in IDX_FILES)} (or the same names without .gz) "
            f"or a single {name}.npz with keys x_train, y_train, x_test, y_test")
    if xtr.ndim != 3 or xte.ndim != 3:
        raise ValueError(f"{name}: expected images [N, H, W], got {xtr.shape} and {xte.shape}")
    return _finish(name, xtr[..., None], ytr, xte[..., None], yte, flatten, num_train,
                   num_test, meta)


def load_mnist(*, root: str | os.PathLike, flatten: bool = False, num_train: int | None = None,
               num_test: int | None = None) -> Dataset:
    """MNIST from local files in ``root``.

    Either the four IDX files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz`` (or uncompressed, same names without ``.gz``),
    or ``mnist.npz`` with keys ``x_train, y_train, x_test, y_test`` (the Keras
    file). IDX files take precedence when both are present.

    Args:
      root: directory holding the files (required).
      flatten: if True inputs are ``[N, 784]``; else NHWC ``[N, 28, 28, 1]``.
      num_train, num_test: keep only the first n examples (None = all).

    Returns:
      A ``Dataset``: float32 images in [0, 1], int32 labels ``[N]``,
      ``num_classes=10``, ``meta`` with ``root``, ``source`` ("idx"/"npz"), ``files``.

    Raises:
      FileNotFoundError: neither layout is present (the message lists the names).
    """
    return _load_mnist_like("mnist", root, flatten, num_train, num_test)


def load_fashion_mnist(*, root: str | os.PathLike, flatten: bool = False,
                       num_train: int | None = None, num_test: int | None = None) -> Dataset:
    """Fashion-MNIST from local files in ``root``; same layouts as :func:`load_mnist`.

    The single-file layout is ``fashion_mnist.npz``. ``meta["classes"]`` names the classes.

    Args:
      root: directory holding the files (required).
      flatten: if True inputs are ``[N, 784]``; else NHWC ``[N, 28, 28, 1]``.
      num_train, num_test: keep only the first n examples (None = all).

    Returns:
      A ``Dataset`` like :func:`load_mnist`'s.
    """
    return _load_mnist_like("fashion_mnist", root, flatten, num_train, num_test)


def _read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path!r}: expected a dict with keys b'data' and b'labels'")
    data = np.asarray(data, np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path!r}: expected data of shape [N, 3072], got {data.shape}")
    # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major -> NHWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels, np.int64)


def load_cifar10(*, root: str | os.PathLike, flatten: bool = False, num_train: int | None = None,
                 num_test: int | None = None) -> Dataset:
    """CIFAR-10 from the "python version" pickle batches.

    Looks for ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` in ``root``
    or in ``root/cifar-10-batches-py`` (the extracted archive).

    Args:
      root: directory holding the batches (required).
      flatten: if True inputs are ``[N, 3072]`` (HWC order); else NHWC ``[N, 32, 32, 3]``.
      num_train, num_test: keep only the first n examples (None = all); only the
        batches needed are read.

    Returns:
      A ``Dataset``: float32 images in [0, 1], int32 labels ``[N]``,
      ``num_classes=10``, ``meta`` with ``root``, ``dir``, ``classes``.

    Raises:
      FileNotFoundError: the batches are in neither place (the message lists the names).
    """
    root = os.fspath(root)
    flatten = check_bool("flatten", flatten)
    _check_counts(num_train, num_test)
    for d in (root, os.path.join(root, CIFAR10_SUBDIR)):
        if all(os.path.isfile(os.path.join(d, f)) for f in CIFAR10_FILES):
            break
    else:
        raise FileNotFoundError(
            f"load('cifar10'): no CIFAR-10 batches in {root!r}; expected "
            f"{', '.join(CIFAR10_FILES)} in {root!r} or in "
            f"{os.path.join(root, CIFAR10_SUBDIR)!r}")
    xs, ys = [], []
    for f in CIFAR10_FILES[:-1]:
        if num_train is not None and sum(map(len, ys)) >= num_train:
            break
        x, y = _read_cifar_batch(os.path.join(d, f))
        xs.append(x)
        ys.append(y)
    if not xs:  # num_train == 0
        xs, ys = [np.zeros((0, 32, 32, 3), np.uint8)], [np.zeros((0,), np.int64)]
    x_test, y_test = _read_cifar_batch(os.path.join(d, "test_batch"))
    return _finish("cifar10", np.concatenate(xs), np.concatenate(ys), x_test, y_test, flatten,
                   num_train, num_test,
                   meta={"root": root, "dir": d, "classes": list(CIFAR10_CLASSES)})

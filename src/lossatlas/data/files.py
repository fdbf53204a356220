"""Image datasets read from files the user already has: MNIST, Fashion-MNIST, CIFAR-10.

Nothing is downloaded. MNIST-style data is read from the four IDX files (gzipped
or not) or from a Keras-style ``.npz``; CIFAR-10 from the "python version"
pickle batches. The batches are read by a restricted unpickler that builds only
dicts, lists, strings, numbers and numpy arrays, so a tampered file cannot run
code; ``.npz`` files are read without pickle support.

A file that cannot be read in its format (truncated, corrupt, random bytes, the
wrong layout) raises :class:`DataFileError`, a ``ValueError`` whose one-line
message names the file and the format expected.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import zlib

import numpy as np

from lossatlas import validate
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
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first local header / an empty zip
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_NPZ_FORMAT = "a .npz archive (zip of .npy arrays) with keys x_train, y_train, x_test, y_test"
_CIFAR_FORMAT = ("a CIFAR-10 python batch (a pickled dict with b'data' uint8 [N, 3072] and "
                 "b'labels' [N] in 0..9)")


class DataFileError(ValueError):
    """A dataset file that cannot be read in its format; the message names the file."""


def _why(err: BaseException) -> str:
    """A short reason for a low-level read error, never advice to enable pickle loading."""
    msg = " ".join(str(err).split())
    if "allow_pickle" in msg:  # numpy's advice; object arrays are never loaded here
        msg = "it holds pickled Python objects, which are never loaded"
    if len(msg) > 120:
        msg = msg[:117] + "..."
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__


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

    Raises:
      DataFileError: the file is truncated, corrupt or not an IDX file (names the file).
    """
    path = os.fspath(path)
    gz = path.endswith(".gz")
    try:
        with (gzip.open if gz else open)(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        what = "a gzip-compressed IDX file" if gz else "an IDX file"
        raise DataFileError(f"{path!r}: cannot be read as {what} ({_why(err)}); the file is "
                            f"truncated or corrupt") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        hint = "; it looks gzip-compressed: name it with a .gz suffix" if raw[:2] == _GZIP_MAGIC else ""
        raise DataFileError(f"{path!r} is not an IDX file (bad magic number {raw[:4].hex()!r}; "
                            f"expected 0x0000 then a type code and the number of dimensions){hint}")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DataFileError(f"{path!r}: expected an IDX file with {expected_ndim} dimensions "
                            f"(magic 0x{0x800 + expected_ndim:08x}), got {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFileError(f"{path!r}: truncated IDX header ({len(raw)} bytes, expected "
                            f"{header} for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFileError(f"{path!r}: header says shape {shape} ({expected} bytes of data) "
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
        validate.integer("", "num_train", num_train, 1)
    if num_test is not None:
        validate.integer("", "num_test", num_test, 0)


def _finish(name, x_train, y_train, x_test, y_test, flatten, num_train, num_test, meta):
    n_tr = len(x_train) if num_train is None else validate.integer("", "num_train", num_train, 0, len(x_train))
    n_te = len(x_test) if num_test is None else validate.integer("", "num_test", num_test, 0, len(x_test))
    x_train, y_train, x_test, y_test = x_train[:n_tr], y_train[:n_tr], x_test[:n_te], y_test[:n_te]
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise DataFileError(f"{name}: images and labels differ in number "
                            f"({len(x_train)}/{len(y_train)} train, {len(x_test)}/{len(y_test)} test) "
                            f"in {', '.join(meta.get('files', [meta.get('dir', '')]))}")
    x_train, x_test = _to_unit_float(x_train), _to_unit_float(x_test)
    if flatten:
        x_train = x_train.reshape(len(x_train), int(np.prod(x_train.shape[1:])))
        x_test = x_test.reshape(len(x_test), int(np.prod(x_test.shape[1:])))
    return Dataset(name=name, x_train=np.ascontiguousarray(x_train),
                   y_train=np.asarray(y_train, np.int32).reshape(-1),
                   x_test=np.ascontiguousarray(x_test),
                   y_test=np.asarray(y_test, np.int32).reshape(-1),
                   num_classes=10, task="classification", meta=meta)


def _check_labels(path: str, y: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Class labels from ``path`` as int64 ``[N]``; DataFileError naming the file otherwise."""
    y = np.asarray(y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise DataFileError(f"{path!r}: expected integer class labels of shape [N], got "
                            f"{y.dtype} {y.shape}")
    if y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataFileError(f"{path!r}: labels must lie in [0, {num_classes}), got "
                            f"[{int(y.min())}, {int(y.max())}]")
    return y.astype(np.int64)


def _check_images(path: str, x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3 or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataFileError(f"{path!r}: expected {what} as numbers of shape [N, H, W], got "
                            f"{x.dtype} {x.shape}")
    return x


def _read_npz(path: str) -> tuple[np.ndarray, ...]:
    """``x_train, y_train, x_test, y_test`` from a Keras-style ``.npz`` (never unpickles)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DataFileError(f"{path!r}: cannot be read ({_why(err)})") from err
    if head not in _ZIP_MAGICS:
        raise DataFileError(f"{path!r} is not {_NPZ_FORMAT} (it does not start like a zip "
                            f"archive: {head.hex()!r})")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _NPZ_KEYS if k not in z.files]
            if missing:
                raise DataFileError(f"{path!r} lacks keys {missing}; expected {_NPZ_FORMAT}")
            arrays = tuple(np.asarray(z[k]) for k in _NPZ_KEYS)
    except DataFileError:
        raise
    except Exception as err:  # noqa: BLE001 -- BadZipFile, zlib.error, EOFError, a bad .npy header...
        raise DataFileError(f"{path!r}: cannot be read as {_NPZ_FORMAT} ({_why(err)})") from err
    return arrays


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
    flatten = validate.boolean("", "flatten", flatten)
    _check_counts(num_train, num_test)
    files = _find_idx(root)
    npz = os.path.join(root, f"{name}.npz")
    meta = {"root": root}
    if name == "fashion_mnist":
        meta["classes"] = list(FASHION_CLASSES)
    if files is not None:
        xtr, ytr, xte, yte = (read_idx(p, nd) for p, nd in zip(files, (3, 1, 3, 1)))
        ytr, yte = _check_labels(files[1], ytr), _check_labels(files[3], yte)
        meta.update(source="idx", files=files)
    elif os.path.isfile(npz):
        xtr, ytr, xte, yte = _read_npz(npz)
        xtr, xte = _check_images(npz, xtr, "x_train"), _check_images(npz, xte, "x_test")
        ytr, yte = _check_labels(npz, ytr), _check_labels(npz, yte)
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
      num_train, num_test: keep only the first n examples (None = all; num_train >= 1).

    Returns:
      A ``Dataset``: float32 images in [0, 1], int32 labels ``[N]``,
      ``num_classes=10``, ``meta`` with ``root``, ``source`` ("idx"/"npz"), ``files``.

    Raises:
      FileNotFoundError: neither layout is present (the message lists the names).
      DataFileError: a file is truncated, corrupt or not in its format (names the file).
    """
    return _load_mnist_like("mnist", root, flatten, num_train, num_test)


def load_fashion_mnist(*, root: str | os.PathLike, flatten: bool = False,
                       num_train: int | None = None, num_test: int | None = None) -> Dataset:
    """Fashion-MNIST from local files in ``root``; same layouts as :func:`load_mnist`.

    The single-file layout is ``fashion_mnist.npz``. ``meta["classes"]`` names the classes.

    Args:
      root: directory holding the files (required).
      flatten: if True inputs are ``[N, 784]``; else NHWC ``[N, 28, 28, 1]``.
      num_train, num_test: keep only the first n examples (None = all; num_train >= 1).

    Returns:
      A ``Dataset`` like :func:`load_mnist`'s.
    """
    return _load_mnist_like("fashion_mnist", root, flatten, num_train, num_test)


class _CifarUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR-10 batch holds: dicts, lists, bytes, str, numbers (pickle
    opcodes, no globals needed) and numpy arrays; any other global is refused, so a
    tampered file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
                ("numpy", "ndarray"), ("numpy", "dtype"),
                ("_codecs", "encode")}  # protocol-2 pickles of bytes written by Python 3

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy >= 2 (no warning)
        return super().find_class(module, name)


def _read_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images [N, 32, 32, 3] uint8, labels [N] int64)`` of one CIFAR-10 python batch."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DataFileError(f"{path!r}: cannot be read ({_why(err)})") from err
    try:
        d = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:  # noqa: BLE001 -- UnpicklingError, EOFError, a bad opcode argument...
        raise DataFileError(f"{path!r}: cannot be read as {_CIFAR_FORMAT} ({_why(err)})") from err
    if not isinstance(d, dict):
        raise DataFileError(f"{path!r}: expected {_CIFAR_FORMAT}, got a {type(d).__name__}")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise DataFileError(f"{path!r}: expected a dict with keys b'data' and b'labels'")
    try:
        data = np.asarray(data)
        labels = np.asarray(labels)
    except Exception as err:  # noqa: BLE001 -- ragged lists and the like
        raise DataFileError(f"{path!r}: expected {_CIFAR_FORMAT} ({_why(err)})") from err
    if data.ndim != 2 or data.shape[1] != 3072 or not np.issubdtype(data.dtype, np.integer) \
            or (data.size and (int(data.min()) < 0 or int(data.max()) > 255)):
        raise DataFileError(f"{path!r}: expected data as uint8 values of shape [N, 3072], got "
                            f"{data.dtype} {data.shape}")
    labels = _check_labels(path, labels)
    if len(labels) != len(data):
        raise DataFileError(f"{path!r}: {len(data)} images but {len(labels)} labels")
    # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 row-major -> NHWC
    data = data.astype(np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(*, root: str | os.PathLike, flatten: bool = False, num_train: int | None = None,
                 num_test: int | None = None) -> Dataset:
    """CIFAR-10 from the "python version" pickle batches.

    Looks for ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` in ``root``
    or in ``root/cifar-10-batches-py`` (the extracted archive).

    Args:
      root: directory holding the batches (required).
      flatten: if True inputs are ``[N, 3072]`` (HWC order); else NHWC ``[N, 32, 32, 3]``.
      num_train, num_test: keep only the first n examples (None = all; num_train >= 1); only the
        batches needed are read.

    Returns:
      A ``Dataset``: float32 images in [0, 1], int32 labels ``[N]``,
      ``num_classes=10``, ``meta`` with ``root``, ``dir``, ``classes``.

    Raises:
      FileNotFoundError: the batches are in neither place (the message lists the names).
      DataFileError: a batch is truncated, corrupt or not a CIFAR-10 batch (names the file).
    """
    root = os.fspath(root)
    flatten = validate.boolean("", "flatten", flatten)
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
    x_test, y_test = _read_cifar_batch(os.path.join(d, "test_batch"))
    return _finish("cifar10", np.concatenate(xs), np.concatenate(ys), x_test, y_test, flatten,
                   num_train, num_test,
                   meta={"root": root, "dir": d, "classes": list(CIFAR10_CLASSES)})

"""Character-level language modelling data from any local text file."""
from __future__ import annotations

import os

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset


def encode(text: str, vocab: str) -> np.ndarray:
    """Map characters to their indices in ``vocab``.

    Args:
      text: the string to encode; every character must be in ``vocab``.
      vocab: the vocabulary string (``meta["vocab"]``).

    Returns:
      int32 token ids ``[len(text)]``.
    """
    index = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the vocabulary") from None


def decode(tokens, vocab: str) -> str:
    """Map token ids back to a string.

    Args:
      tokens: integer ids (any shape; flattened).
      vocab: the vocabulary string (``meta["vocab"]``).

    Returns:
      The decoded string.
    """
    return "".join(vocab[int(i)] for i in np.asarray(tokens).reshape(-1))


def _windows(tokens: np.ndarray, seq_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0, len(tokens) - seq_len, stride)
    idx = starts[:, None] + np.arange(seq_len)[None, :]
    return tokens[idx], tokens[idx + 1]


def load_text(*, path: str | os.PathLike, seq_len: int = 64, test_fraction: float = 0.1,
              stride: int | None = None) -> Dataset:
    """Character-level next-token data from a UTF-8 text file.

    The vocabulary is the sorted set of characters in the whole file. The first
    ``1 - test_fraction`` of the characters form the train stream and the rest
    the test stream; each stream is cut into windows of ``seq_len + 1``
    characters starting every ``stride`` characters, giving ``x = w[:-1]`` and
    ``y = w[1:]``. With the default ``stride = seq_len`` the input windows tile
    the stream without overlap.

    Args:
      path: the text file (required).
      seq_len: characters per example, >= 1.
      test_fraction: fraction of the characters held out, in (0, 1).
      stride: distance between window starts, >= 1 (default ``seq_len``).

    Returns:
      A ``Dataset`` with int32 ``x, y [N, seq_len]``, ``task="language"``,
      ``num_classes=len(vocab)`` and ``meta={"vocab": str, "path": str}``.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      ValueError: a bad option, or a split too short for one window.
    """
    seq_len = validate.integer("", "seq_len", seq_len, 1)
    test_fraction = validate.number("", "test_fraction", test_fraction, 0.0, 1.0,
                                    lo_open=True, hi_open=True)
    stride = seq_len if stride is None else validate.integer("", "stride", stride, 1)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load('text'): no such file: {path!r}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    vocab = "".join(sorted(set(text)))
    n_train = int(len(text) * (1.0 - test_fraction))
    n_test = len(text) - n_train
    if min(n_train, n_test) < seq_len + 1:
        raise ValueError(
            f"{path!r} has {len(text)} characters, split {n_train} train / {n_test} test by "
            f"test_fraction={test_fraction}; seq_len={seq_len} needs at least seq_len + 1 = "
            f"{seq_len + 1} characters in each split (lower seq_len or adjust test_fraction)")
    tokens = encode(text, vocab)
    x_train, y_train = _windows(tokens[:n_train], seq_len, stride)
    x_test, y_test = _windows(tokens[n_train:], seq_len, stride)
    return Dataset(name="text", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   num_classes=len(vocab), task="language",
                   meta={"vocab": vocab, "path": path})

"""The adding problem (Hochreiter & Schmidhuber 1997; Pascanu et al. 2013): a long-memory regression task."""
from __future__ import annotations

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset


def _sample(rng: np.random.Generator, n: int, seq_len: int):
    values = rng.uniform(0.0, 1.0, size=(n, seq_len)).astype(np.float32)
    markers = np.zeros((n, seq_len), np.float32)
    half = max(seq_len // 2, 1)
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n) if seq_len > 1 else first
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None].astype(np.float32)
    return x, y


def load_adding(*, seq_len: int = 100, num_train: int = 4000, num_test: int = 1000, seed: int = 0) -> Dataset:
    """The adding problem: sum the two marked numbers of a long sequence.

    Each input step is ``(value, marker)`` with values ~ U(0, 1); exactly one
    marker falls in the first half of the sequence and one in the second half;
    the target is the sum of the two marked values. Predicting the mean (1.0)
    gives MSE 1/6 ~ 0.167, the baseline a model must beat to show it carries
    information across ``seq_len`` steps.

    Args:
      seq_len: sequence length T (>= 2).
      num_train, num_test: numbers of sequences.
      seed: generator seed (train and test use independent streams).

    Returns:
      A regression :class:`Dataset` with x [N, T, 2] float32 and y [N, 1];
      ``meta["baseline_mse"] = 1/6``.
    """
    validate.integer("", "seq_len", seq_len, lo=2)
    validate.integer("", "num_train", num_train, lo=1)
    validate.integer("", "num_test", num_test, lo=1)
    validate.integer("", "seed", seed, lo=0)
    ss = np.random.SeedSequence(seed)
    train_rng, test_rng = (np.random.default_rng(s) for s in ss.spawn(2))
    x_train, y_train = _sample(train_rng, num_train, seq_len)
    x_test, y_test = _sample(test_rng, num_test, seq_len)
    return Dataset("adding", x_train, y_train, x_test, y_test, num_classes=0, task="regression",
                   meta={"baseline_mse": 1.0 / 6.0, "seq_len": seq_len,
                         "paper": "Hochreiter & Schmidhuber 1997; Pascanu et al. 2013"})

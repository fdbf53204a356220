"""scikit-learn's 8x8 handwritten digits (bundled with scikit-learn, no download)."""
from __future__ import annotations

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset


def load_digits(*, flatten: bool = True) -> Dataset:
    """The UCI 8x8 digits shipped with scikit-learn, with a fixed stratified split.

    Pixel values (integers 0..16) are divided by 16, so inputs lie in [0, 1]. The
    split is ``train_test_split(test_size=0.2, random_state=0, stratify=y)``:
    1437 train / 360 test examples, identical on every call and machine.

    Args:
      flatten: if True inputs are ``[N, 64]``; otherwise NHWC ``[N, 8, 8, 1]``.

    Returns:
      A ``Dataset`` with float32 inputs, int32 labels [N] and ``num_classes=10``.
      ``meta`` holds ``{"source": "sklearn.datasets.load_digits", "split": ...}``.
    """
    flatten = validate.boolean("", "flatten", flatten)
    from sklearn.datasets import load_digits as _sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=0, stratify=y)
    if not flatten:
        x_train = x_train.reshape(-1, 8, 8, 1)
        x_test = x_test.reshape(-1, 8, 8, 1)
    return Dataset(
        name="digits",
        x_train=np.ascontiguousarray(x_train), y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test), y_test=np.ascontiguousarray(y_test),
        num_classes=10, task="classification",
        meta={"source": "sklearn.datasets.load_digits",
              "split": "train_test_split(test_size=0.2, random_state=0, stratify=y)"})

"""The in-memory dataset container every loader returns."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lossatlas import validate

TASKS = ("classification", "regression", "language")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Arrays in host memory, split into train and test.

    Compared and hashed by identity (``eq=False``), so compiled programs can be
    cached per dataset object.

    Attributes:
      name: registry name of the dataset (e.g. ``"mnist1d"``).
      x_train, y_train, x_test, y_test: numpy arrays. Inputs are float32 (images
        are NHWC, sequences are [N, T] or [N, T, F]); class labels are int32 [N];
        regression targets are float32 [N, D]; language data has int32 token
        inputs [N, T] and next-token targets [N, T].
      num_classes: number of classes (vocabulary size for ``task="language"``,
        0 for regression).
      task: one of ``"classification" | "regression" | "language"``; picks the
        default loss and whether accuracy is reported.
      meta: extra facts about the data, e.g. ``{"noise_var": 0.01}`` (the best
        achievable MSE) or ``{"entropy_rate": 1.23}`` (the best achievable NLL).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    task: str = "classification"
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        validate.one_of("Dataset", "task", self.task, TASKS)
        if len(self.x_train) != len(self.y_train):
            raise ValueError(
                f"Dataset {self.name!r}: x_train has {len(self.x_train)} rows but y_train has {len(self.y_train)}")
        if len(self.x_test) != len(self.y_test):
            raise ValueError(
                f"Dataset {self.name!r}: x_test has {len(self.x_test)} rows but y_test has {len(self.y_test)}")
        if self.task in ("classification", "language"):
            self._check_labels()

    def _check_labels(self) -> None:
        """Class labels / target tokens must be integers in [0, num_classes) (one_hot of an
        out-of-range label is an all-zero row, which would silently give a loss of 0)."""
        for split, y in (("y_train", self.y_train), ("y_test", self.y_test)):
            y = np.asarray(y)
            if not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"Dataset {self.name!r}: {split} must hold integer labels for "
                                 f"task={self.task!r}, got dtype {y.dtype}")
            if y.size:
                lo, hi = int(y.min()), int(y.max())
                if lo < 0 or hi >= self.num_classes:
                    raise ValueError(f"Dataset {self.name!r}: {split} labels span [{lo}, {hi}] but must lie "
                                     f"in [0, num_classes={self.num_classes})")

    @property
    def num_train(self) -> int:
        return int(len(self.x_train))

    @property
    def num_test(self) -> int:
        return int(len(self.x_test))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example (no batch axis)."""
        return tuple(self.x_train.shape[1:])

    def subset(self, num_train: int | None = None, num_test: int | None = None) -> "Dataset":
        """The first ``num_train`` / ``num_test`` examples (for quick runs and tests).

        Args:
          num_train: an integer in ``[1, self.num_train]``, or None (keep all).
          num_test: an integer in ``[0, self.num_test]``, or None (keep all); 0 leaves a
            dataset without test examples (training refuses it).

        Raises:
          ValueError: a count outside its range (a negative count would otherwise drop
            examples from the end, and a count above the size would silently keep fewer).
        """
        where = f"Dataset {self.name!r} subset"  # label: "Dataset 'x' subset: num_train must be ..."
        if num_train is not None:
            num_train = validate.integer("", f"{where}: num_train", num_train, 1, self.num_train)
        if num_test is not None:
            num_test = validate.integer("", f"{where}: num_test", num_test, 0, self.num_test)
        return dataclasses.replace(
            self,
            x_train=self.x_train[:num_train], y_train=self.y_train[:num_train],
            x_test=self.x_test[:num_test], y_test=self.y_test[:num_test])

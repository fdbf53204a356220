"""Task streams: a classification dataset cut into a sequence of tasks, stacked for one scan.

A :class:`Stream` holds every task's data as stacked arrays (``x_train [T, N, ...]``,
``y_train [T, N]``, ``x_test [T, M, ...]``, ``y_test [T, M]``; tasks are truncated to the
smallest task so sizes are equal) plus the output-unit masks of the scenario, so the whole
stream trains inside one ``lax.scan``.

Scenarios (van de Ven & Tolias 2019, "Three scenarios for continual learning"):

* ``"task"`` (task-incremental): the task id is given; logits are masked to the task's own
  output units (a "multi-head" network as one masked head). For permuted/rotated streams
  each task gets its own block of ``C`` units (``K = T * C``).
* ``"domain"`` (domain-incremental): the task id is not given and not needed: labels are the
  within-task class index and every task shares the same ``K`` output units.
* ``"class"`` (class-incremental): the task id must be inferred: one head over all classes
  seen so far (van de Ven & Tolias's "active units": training and evaluating after task
  ``i`` use the units of tasks ``0..i``).

All three are one array ``masks [T, T, K]`` (bool): ``masks[i, j]`` are the output units used
for an example of task ``j`` while the learner is at task ``i`` (training task ``i``, or
evaluated after training it). Task-IL: ``masks[i, j] = units of task j``; domain-IL: all
units; class-IL: units of tasks ``0..max(i, j)`` (for ``i >= j`` the classes seen so far; for
``i < j``, used for forward transfer, the classes up to and including task ``j``). The
accuracy at initialisation on task ``j`` uses ``masks[0, j]``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from lossatlas import keys
from lossatlas.data import Dataset

SCENARIOS = ("task", "domain", "class")
#: Image shapes of datasets whose default loader returns flattened images ([N, H*W]).
FLAT_IMAGE_SHAPES = {"digits": (8, 8), "mnist": (28, 28), "fashion_mnist": (28, 28)}


@dataclasses.dataclass(frozen=True, eq=False)
class Stream:
    """A sequence of classification tasks as stacked host arrays.

    Compared and hashed by identity (``eq=False``), so compiled stream programs can be
    cached per stream object.

    Attributes:
      name: e.g. ``"permuted_digits_5"``.
      scenario: one of ``SCENARIOS``.
      x_train: float32 ``[T, N, ...]``; ``y_train``: int32 ``[T, N]`` (labels as the output
        layer sees them: global unit index in ``[0, num_outputs)``).
      x_test, y_test: ``[T, M, ...]`` and ``[T, M]``.
      masks: bool ``[T, T, K]``, see the module docstring.
      num_outputs: ``K``, the width of the output layer.
      task_units: int ``[T, U]``: the output units (classes) that task ``t``'s labels use.
      meta: how the stream was made (``permutations`` / ``class_order`` / ``angles``, the
        source dataset, ...).
    """

    name: str
    scenario: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    masks: np.ndarray
    num_outputs: int
    task_units: np.ndarray
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise ValueError(f"Stream.scenario must be one of {SCENARIOS}, got {self.scenario!r}")
        t = self.x_train.shape[0]
        if t < 1:
            raise ValueError("Stream needs at least one task")
        for name in ("y_train", "x_test", "y_test", "task_units"):
            if getattr(self, name).shape[0] != t:
                raise ValueError(f"Stream.{name} has {getattr(self, name).shape[0]} tasks, x_train has {t}")
        if self.y_train.shape != self.x_train.shape[:2] or self.y_test.shape != self.x_test.shape[:2]:
            raise ValueError("Stream: y_train / y_test must be [T, N] / [T, M] matching x_train / x_test")
        if self.x_train.shape[1] < 1 or self.x_test.shape[1] < 1:
            raise ValueError("Stream: every task needs at least one training and one test example")
        if self.masks.shape != (t, t, self.num_outputs):
            raise ValueError(f"Stream.masks must be [T, T, K] = {(t, t, self.num_outputs)}, got {self.masks.shape}")
        for split, y in (("y_train", self.y_train), ("y_test", self.y_test)):
            if y.min() < 0 or y.max() >= self.num_outputs:
                raise ValueError(f"Stream.{split} labels must lie in [0, num_outputs={self.num_outputs})")
            # every label must be an active unit for its own task
            own = np.take_along_axis(self.masks[np.arange(t), np.arange(t)], y, axis=1)
            if not own.all():
                raise ValueError(f"Stream.{split}: some labels are masked out for their own task")

    @property
    def num_tasks(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def num_train(self) -> int:
        """Training examples per task."""
        return int(self.x_train.shape[1])

    @property
    def num_test(self) -> int:
        """Test examples per task."""
        return int(self.x_test.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[2:])

    @property
    def task_masks(self) -> np.ndarray:
        """``masks[j, j]`` for every task: the units a task is evaluated on right after learning it."""
        t = self.num_tasks
        return self.masks[np.arange(t), np.arange(t)]

    def subset(self, num_train: int | None = None, num_test: int | None = None) -> "Stream":
        """The first ``num_train`` / ``num_test`` examples of every task (quick runs, tests)."""
        for name, v, hi in (("num_train", num_train, self.num_train), ("num_test", num_test, self.num_test)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= hi):
                raise ValueError(f"Stream.subset: {name} must be an integer in [1, {hi}], got {v!r}")
        return dataclasses.replace(
            self, x_train=self.x_train[:, :num_train], y_train=self.y_train[:, :num_train],
            x_test=self.x_test[:, :num_test], y_test=self.y_test[:, :num_test])


# ------------------------------------------------------------------------------- helpers

def _check_dataset(fn: str, dataset) -> Dataset:
    if not isinstance(dataset, Dataset):
        raise ValueError(f"{fn}: dataset must be a lossatlas.data.Dataset, got {type(dataset).__name__}")
    if dataset.task != "classification":
        raise ValueError(f"{fn}: needs a classification dataset, {dataset.name!r} has task={dataset.task!r}")
    return dataset


def _check_int(fn: str, name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{fn}: {name} must be an integer {rng}, got {value!r}")
    return int(value)


def _check_scenario(fn: str, scenario) -> str:
    if scenario not in SCENARIOS:
        raise ValueError(f"{fn}: scenario must be one of {SCENARIOS}, got {scenario!r}")
    return scenario


def _seed(fn: str, key) -> np.random.Generator:
    """A numpy generator derived from a JAX key (stream construction runs on the host)."""
    return keys.numpy_rng(keys.require_key(fn, key))


def _block_masks(scenario: str, t: int, c: int) -> tuple[np.ndarray, int, np.ndarray]:
    """masks, K and task_units for T tasks of C classes each (permuted / rotated / split)."""
    if scenario == "domain":
        k = c
        units = np.tile(np.arange(c), (t, 1))
        masks = np.ones((t, t, k), bool)
        return masks, k, units
    k = t * c
    units = np.arange(k).reshape(t, c)
    own = np.zeros((t, k), bool)
    own[np.arange(t)[:, None], units] = True
    if scenario == "task":
        masks = np.broadcast_to(own[None], (t, t, k)).copy()
    else:  # class: units of tasks 0..max(i, j)
        seen = np.cumsum(own, axis=0) > 0  # [T, K]: units of tasks 0..i
        i, j = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
        masks = seen[np.maximum(i, j)]
    return masks, k, units


def _stack_same(dataset: Dataset, t: int, transform, scenario: str, name: str, meta: dict) -> Stream:
    """T transformed copies of the whole dataset (permuted / rotated streams)."""
    c = dataset.num_classes
    masks, k, units = _block_masks(scenario, t, c)
    xs_tr = np.stack([transform(i, np.asarray(dataset.x_train, np.float32)) for i in range(t)])
    xs_te = np.stack([transform(i, np.asarray(dataset.x_test, np.float32)) for i in range(t)])
    offset = 0 if scenario == "domain" else c
    y_tr = np.stack([np.asarray(dataset.y_train, np.int32) + i * offset for i in range(t)])
    y_te = np.stack([np.asarray(dataset.y_test, np.int32) + i * offset for i in range(t)])
    return Stream(name, scenario, xs_tr, y_tr.astype(np.int32), xs_te, y_te.astype(np.int32), masks, k,
                  units, {"dataset": dataset.name, **meta})


# ------------------------------------------------------------------------------- builders

def permuted(dataset: Dataset, num_tasks: int, key, *, scenario: str = "domain",
             keep_first: bool = True) -> Stream:
    """Permuted tasks: task ``t`` applies a fixed random permutation to the input features.

    Goodfellow et al. (2014), Kirkpatrick et al. (2017): every task is the whole dataset with
    its features (pixels, or samples of a 1-D signal) shuffled by a task-specific permutation.

    Args:
      dataset: a classification :class:`~lossatlas.data.Dataset` (any input shape; the
        permutation acts on the flattened example and the shape is kept).
      num_tasks: ``T >= 1``.
      key: JAX PRNG key; the permutations are drawn from it.
      scenario: ``"domain"`` (default, shared head of C units), ``"task"`` or ``"class"``
        (``K = T * C`` units, task ``t``'s labels are ``y + t * C``).
      keep_first: task 0 is the unpermuted dataset (van de Ven & Tolias 2019).

    Returns:
      A :class:`Stream`; ``meta["permutations"]`` is ``[T, D]`` (row ``t`` maps output feature
      ``i`` to input feature ``perm[t, i]``).
    """
    fn = "permuted"
    dataset = _check_dataset(fn, dataset)
    t = _check_int(fn, "num_tasks", num_tasks, 1)
    scenario = _check_scenario(fn, scenario)
    rng = _seed(fn, key)
    d = int(np.prod(dataset.input_shape))
    perms = np.stack([np.arange(d) if (keep_first and i == 0) else rng.permutation(d) for i in range(t)])

    def transform(i, x):
        return x.reshape(len(x), d)[:, perms[i]].reshape(x.shape)

    return _stack_same(dataset, t, transform, scenario, f"permuted_{dataset.name}_{t}",
                       {"permutations": perms, "keep_first": bool(keep_first)})


def split(dataset: Dataset, key, *, classes_per_task: int = 2, num_tasks: int | None = None,
          scenario: str = "class", shuffle_classes: bool = True) -> Stream:
    """Split tasks: the classes are cut into groups, one group per task (split MNIST, Zenke et al. 2017).

    Args:
      dataset: a classification dataset with ``C`` classes.
      key: JAX PRNG key; the class order is drawn from it (unless ``shuffle_classes=False``).
      classes_per_task: classes per task (``C % classes_per_task == 0`` unless ``num_tasks``
        uses fewer classes).
      num_tasks: number of tasks (default ``C // classes_per_task``); must be
        ``<= C // classes_per_task``.
      scenario: ``"class"`` (default: one head over all classes seen so far, labels are the
        original class ids), ``"task"`` (the task's own classes only) or ``"domain"`` (labels
        are the within-task index ``0..classes_per_task-1`` on shared units).
      shuffle_classes: False keeps the natural order ``(0, 1), (2, 3), ...``.

    Every task keeps the dataset's examples of its classes, in dataset order, truncated to the
    smallest task's count (train and test separately).

    Returns:
      A :class:`Stream`; ``meta["class_order"]`` is the class permutation and
      ``meta["task_classes"]`` the ``[T, classes_per_task]`` original class ids.
    """
    fn = "split"
    dataset = _check_dataset(fn, dataset)
    c = dataset.num_classes
    cpt = _check_int(fn, "classes_per_task", classes_per_task, 1, c)
    max_tasks = c // cpt
    if num_tasks is None:
        if c % cpt:
            raise ValueError(f"split: classes_per_task={cpt} does not divide the {c} classes of {dataset.name!r}; "
                             f"pick a divisor of {c} or pass num_tasks <= {max_tasks}")
        num_tasks = max_tasks
    t = _check_int(fn, "num_tasks", num_tasks, 1, max_tasks)
    scenario = _check_scenario(fn, scenario)
    order = _seed(fn, key).permutation(c) if shuffle_classes else np.arange(c)
    groups = order[: t * cpt].reshape(t, cpt)

    def take(x, y):
        idx = [np.flatnonzero(np.isin(y, g)) for g in groups]
        n = min(len(i) for i in idx)
        if n == 0:
            raise ValueError(f"split: some task of {dataset.name!r} has no examples in one split; classes {groups.tolist()}")
        return np.stack([x[i[:n]] for i in idx]).astype(np.float32), np.stack([y[i[:n]] for i in idx])

    x_tr, y_tr = take(np.asarray(dataset.x_train), np.asarray(dataset.y_train))
    x_te, y_te = take(np.asarray(dataset.x_test), np.asarray(dataset.y_test))
    if scenario == "domain":
        # within-task index: position of the class in its group
        lookup = np.zeros((t, c), np.int32)
        for i, g in enumerate(groups):
            lookup[i, g] = np.arange(cpt)
        y_tr = np.stack([lookup[i, y_tr[i]] for i in range(t)])
        y_te = np.stack([lookup[i, y_te[i]] for i in range(t)])
        k, units, masks = cpt, np.tile(np.arange(cpt), (t, 1)), np.ones((t, t, cpt), bool)
    else:
        k, units = c, groups.copy()
        own = np.zeros((t, k), bool)
        own[np.arange(t)[:, None], units] = True
        if scenario == "task":
            masks = np.broadcast_to(own[None], (t, t, k)).copy()
        else:
            seen = np.cumsum(own, axis=0) > 0
            i, j = np.meshgrid(np.arange(t), np.arange(t), indexing="ij")
            masks = seen[np.maximum(i, j)]
    return Stream(f"split_{dataset.name}_{t}x{cpt}", scenario, x_tr, y_tr.astype(np.int32), x_te,
                  y_te.astype(np.int32), masks, k, units,
                  {"dataset": dataset.name, "class_order": order, "task_classes": groups})


def _rotate_images(x: np.ndarray, angle: float) -> np.ndarray:
    """Rotate ``[N, H, W, C]`` images by ``angle`` degrees about the centre (bilinear, zero fill)."""
    from scipy import ndimage

    if angle == 0:
        return x.copy()
    return ndimage.rotate(x, angle, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0).astype(np.float32)


def rotated(dataset: Dataset, num_tasks: int, key=None, *, angles: Sequence[float] | None = None,
            max_angle: float = 180.0, scenario: str = "domain", image_shape: tuple[int, int] | None = None,
            keep_first: bool = True) -> Stream:
    """Rotated tasks: task ``t`` rotates every image by a fixed angle (rotated MNIST, Lopez-Paz & Ranzato 2017).

    Defined for images only. Inputs may be ``[H, W]``, ``[H, W, C]`` (NHWC), or flattened
    ``[H*W]`` when the image shape is known (``digits``, ``mnist``, ``fashion_mnist``) or
    given as ``image_shape``. 1-D signals such as MNIST-1D have no rotation: use
    :func:`permuted` or :func:`split` for them.

    Args:
      dataset: a classification dataset of images.
      num_tasks: ``T >= 1``.
      key: JAX PRNG key; angles are drawn uniformly from ``[0, max_angle)`` (task 0 is 0
        degrees when ``keep_first``). Not needed when ``angles`` is given.
      angles: explicit angles in degrees, one per task (overrides ``key``).
      max_angle: upper end of the random angles, degrees.
      scenario: ``"domain"`` (default), ``"task"`` or ``"class"`` as in :func:`permuted`.
      image_shape: ``(H, W)`` for flattened inputs of an unknown dataset.
      keep_first: task 0 is unrotated when angles are drawn from the key.

    Rotation is bilinear about the image centre with zero fill (``scipy.ndimage.rotate``).

    Returns:
      A :class:`Stream`; ``meta["angles"]`` holds the angles.
    """
    fn = "rotated"
    dataset = _check_dataset(fn, dataset)
    t = _check_int(fn, "num_tasks", num_tasks, 1)
    scenario = _check_scenario(fn, scenario)
    shape = dataset.input_shape
    if len(shape) == 1:
        hw = image_shape if image_shape is not None else FLAT_IMAGE_SHAPES.get(dataset.name)
        if hw is None:
            raise ValueError(f"rotated: dataset {dataset.name!r} has 1-D examples {list(shape)}; rotation is defined "
                             f"for images only (pass image_shape=(H, W) if they are flattened images; for 1-D "
                             f"signals use permuted or split)")
        if len(hw) != 2 or int(np.prod(hw)) != shape[0]:
            raise ValueError(f"rotated: image_shape={tuple(hw)} does not hold {shape[0]} features")
        img = (int(hw[0]), int(hw[1]), 1)
    elif len(shape) == 2:
        img = (shape[0], shape[1], 1)
    elif len(shape) == 3:
        img = shape
    else:
        raise ValueError(f"rotated: examples must be images [H, W] or [H, W, C], got shape {list(shape)}")
    if angles is not None:
        angles = np.asarray(angles, np.float64).ravel()
        if len(angles) != t or not np.all(np.isfinite(angles)):
            raise ValueError(f"rotated: angles must be {t} finite numbers (one per task), got {len(angles)}")
    else:
        if not (isinstance(max_angle, (int, float)) and 0 < max_angle <= 360):
            raise ValueError(f"rotated: max_angle must be in (0, 360], got {max_angle!r}")
        angles = _seed(fn, key).uniform(0.0, float(max_angle), t)
        if keep_first:
            angles[0] = 0.0

    def transform(i, x):
        return _rotate_images(x.reshape((len(x),) + img), float(angles[i])).reshape(x.shape)

    return _stack_same(dataset, t, transform, scenario, f"rotated_{dataset.name}_{t}",
                       {"angles": angles, "image_shape": img})


def describe(stream: Stream) -> str:
    """One line: name, scenario, tasks, examples per task, outputs."""
    return (f"{stream.name} [{stream.scenario}-IL]: {stream.num_tasks} tasks x {stream.num_train} train / "
            f"{stream.num_test} test, {stream.num_outputs} outputs")


def num_steps(stream: Stream, batch_size: int, epochs: int) -> int:
    """Optimiser steps per task (the last partial batch of an epoch is dropped)."""
    return epochs * (stream.num_train // batch_size)


__all__ = ["FLAT_IMAGE_SHAPES", "SCENARIOS", "Stream", "describe", "num_steps", "permuted", "rotated", "split"]

"""The training data on the device: the arrays a compiled program reads, moved once per
dataset object and shared by every program (config) on it."""
from __future__ import annotations

import weakref

import numpy as np

from lossatlas import devices
from lossatlas.data import Dataset


def _chunk(x: np.ndarray, size: int):
    """Pad the leading axis to a multiple of ``size`` and fold it into [n, size, ...]."""
    n = len(x)
    num = -(-n // size)
    pad = num * size - n
    xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) if pad else x
    mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    return xp.reshape((num, size) + x.shape[1:]), mask.reshape(num, size)


def host_data(dataset: Dataset, eval_batch_size: int, eval_train: bool) -> dict:
    """The arrays a program reads, as numpy: ``x_train``/``y_train``, the test split in
    padded chunks (``x_test_chunks``, ``y_test_chunks``, ``test_mask`` [chunks, size]) and,
    with ``eval_train``, padded chunks of training-set *indices* (``train_idx_chunks``,
    ``train_mask``), so evaluating the training set gathers from ``x_train`` instead of
    keeping a second, padded copy of it."""
    d = {"x_train": np.asarray(dataset.x_train), "y_train": np.asarray(dataset.y_train)}
    size = max(1, min(eval_batch_size, dataset.num_test))
    d["x_test_chunks"], d["test_mask"] = _chunk(np.asarray(dataset.x_test), size)
    d["y_test_chunks"], _ = _chunk(np.asarray(dataset.y_test), size)
    if eval_train:
        size = max(1, min(eval_batch_size, dataset.num_train))
        d["train_idx_chunks"], d["train_mask"] = _chunk(np.arange(dataset.num_train, dtype=np.int32), size)
    return d


# (id(dataset), eval_batch_size, eval_train, mesh) -> arrays on the device(s). Programs
# (one per TrainConfig) that differ only in hyperparameters share one device copy; a
# dataset's entries are dropped when the dataset object is garbage-collected.
_DEVICE_DATA: dict[tuple, dict] = {}
_WATCHED: set[int] = set()


def _forget(dataset_id: int) -> None:
    _WATCHED.discard(dataset_id)
    for k in [k for k in _DEVICE_DATA if k[0] == dataset_id]:
        del _DEVICE_DATA[k]


def device_data(dataset: Dataset, eval_batch_size: int, eval_train: bool, mesh=None) -> dict:
    """:func:`host_data` on the default device, or replicated over ``mesh`` (cached, moved once)."""
    key = (id(dataset), eval_batch_size, eval_train, mesh)
    data = _DEVICE_DATA.get(key)
    if data is None:
        if id(dataset) not in _WATCHED:
            weakref.finalize(dataset, _forget, id(dataset))
            _WATCHED.add(id(dataset))
        data = _DEVICE_DATA[key] = devices.replicate(host_data(dataset, eval_batch_size, eval_train), mesh)
    return data

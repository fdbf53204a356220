"""MNIST-1D (Greydanus 2020), generated locally with the ``mnist1d`` package."""
from __future__ import annotations

import functools
import random

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset

#: The paper's generation arguments (``mnist1d.data.get_dataset_args`` minus ``url``).
DEFAULT_ARGS = {
    "num_samples": 5000,
    "train_split": 0.8,
    "template_len": 12,
    "padding": (36, 60),
    "scale_coeff": 0.4,
    "max_translation": 48,
    "corr_noise_scale": 0.25,
    "iid_noise_scale": 2e-2,
    "shear_scale": 0.75,
    "shuffle_seq": False,
    "final_seq_length": 40,
    "seed": 42,
}


def _validated(args: dict) -> dict:
    a = dict(args)
    a["num_samples"] = validate.integer("", "num_samples", a["num_samples"], 10)
    a["train_split"] = validate.number("", "train_split", a["train_split"], 0.0, 1.0,
                                       lo_open=True, hi_open=True)
    n = (a["num_samples"] // 10) * 10
    split = int(n * a["train_split"])
    if not 1 <= split <= n - 1:
        raise ValueError(
            f"train_split={a['train_split']} with num_samples={a['num_samples']} leaves an empty "
            f"train or test split; train_split must be in (0, 1) with both splits non-empty")
    a["template_len"] = validate.integer("", "template_len", a["template_len"], 1)
    pad = a["padding"]
    if (not isinstance(pad, (tuple, list)) or len(pad) != 2
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad)
            or not 0 <= pad[0] <= pad[1]):
        validate.fail("", "padding", pad, "a pair of integers (low, high) with 0 <= low <= high")
    a["padding"] = (int(pad[0]), int(pad[1]))
    a["scale_coeff"] = validate.number("", "scale_coeff", a["scale_coeff"], 0.0, 2.0, hi_open=True)
    a["max_translation"] = validate.integer("", "max_translation", a["max_translation"], 1)
    for k in ("corr_noise_scale", "iid_noise_scale", "shear_scale"):
        a[k] = validate.number("", k, a[k], 0.0)
    a["shuffle_seq"] = validate.boolean("", "shuffle_seq", a["shuffle_seq"])
    a["final_seq_length"] = validate.integer("", "final_seq_length", a["final_seq_length"], 2)
    a["seed"] = validate.integer("", "seed", a["seed"], 0, 2**32 - 1)
    return a


@functools.lru_cache(maxsize=8)
def _generate(key: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``mnist1d.data.make_dataset`` for the args in ``key``; read-only arrays.

    ``make_dataset`` seeds and draws from the *global* numpy and ``random`` RNGs,
    so both states are saved and restored around it.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=False)
    for k, v in key:
        setattr(args, k, list(v) if k == "padding" else v)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    out = (np.asarray(d["x"], np.float32), np.asarray(d["y"], np.int32),
           np.asarray(d["x_test"], np.float32), np.asarray(d["y_test"], np.int32))
    for arr in out:
        arr.setflags(write=False)
    return out


def load_mnist1d(*, num_samples: int = 5000, train_split: float = 0.8, template_len: int = 12,
                 padding: tuple[int, int] = (36, 60), scale_coeff: float = 0.4,
                 max_translation: int = 48, corr_noise_scale: float = 0.25,
                 iid_noise_scale: float = 2e-2, shear_scale: float = 0.75,
                 shuffle_seq: bool = False, final_seq_length: int = 40,
                 seed: int = 42) -> Dataset:
    """MNIST-1D: ten 1-D digit templates, padded, scaled, translated, noised and sheared.

    Generated locally (no download) with ``mnist1d.data.make_dataset``. The
    defaults are the paper's: 5000 examples split 4000 train / 1000 test, each a
    length-40 signal. The caller's global ``numpy.random`` and ``random`` states
    are left untouched. Results are cached in-process per argument set; the
    returned arrays are read-only views of the cache (copy them to modify).

    Args:
      num_samples: total examples (rounded down to a multiple of 10), >= 10.
      train_split: fraction used for training, in (0, 1).
      template_len, padding, scale_coeff, max_translation, corr_noise_scale,
        iid_noise_scale, shear_scale, shuffle_seq, final_seq_length, seed: the
        ``mnist1d`` generation arguments of the same names.

    Returns:
      A ``Dataset`` with float32 inputs ``[N, final_seq_length]``, int32 labels
      ``[N]``, ``num_classes=10`` and ``meta={"paper": "Greydanus 2020", "args": {...}}``.
    """
    args = _validated(dict(
        num_samples=num_samples, train_split=train_split, template_len=template_len,
        padding=padding, scale_coeff=scale_coeff, max_translation=max_translation,
        corr_noise_scale=corr_noise_scale, iid_noise_scale=iid_noise_scale,
        shear_scale=shear_scale, shuffle_seq=shuffle_seq,
        final_seq_length=final_seq_length, seed=seed))
    x_train, y_train, x_test, y_test = _generate(tuple(sorted(args.items())))
    meta_args = dict(args)
    meta_args["padding"] = list(args["padding"])
    return Dataset(name="mnist1d", x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, num_classes=10, task="classification",
                   meta={"paper": "Greydanus 2020", "args": meta_args})

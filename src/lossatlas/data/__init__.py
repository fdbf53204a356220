"""Datasets for lossatlas: small built-in sets, synthetic sets with known optimal loss,
and loaders for image files the user already has. Nothing is ever downloaded.

Usage::

    from lossatlas import data
    ds = data.load("mnist1d")                       # 4000 train / 1000 test, [N, 40]
    ds = data.load("markov_text", order=2)          # ds.meta["entropy_rate"] is exact
    ds = data.load("mnist", root="~/data/mnist")    # IDX files or mnist.npz

Every loader returns a :class:`Dataset` of numpy arrays (float32 inputs, int32
class labels / tokens, float32 regression targets) in host memory.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

from lossatlas.data.adding import load_adding
from lossatlas.data.dataset import Dataset
from lossatlas.data.digits import load_digits
from lossatlas.data.files import DataFileError, load_cifar10, load_fashion_mnist, load_mnist
from lossatlas.data.markov import load_markov_text
from lossatlas.data.mnist1d import load_mnist1d
from lossatlas.data.synthetic import load_teacher_student
from lossatlas.data.text import load_text

__all__ = ["DATASETS", "DataFileError", "Dataset", "list_datasets", "load"]

#: Registry: dataset name -> loader. Loaders take keyword-only options.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "teacher_student": load_teacher_student,
    "markov_text": load_markov_text,
    "text": load_text,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "adding": load_adding,
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load`.

    Returns:
      The registered dataset names, sorted.
    """
    return sorted(DATASETS)


def _options(fn: Callable[..., Dataset]) -> tuple[list[str], list[str]]:
    """(accepted option names sorted, required option names) of a loader."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return (sorted(p.name for p in params),
            [p.name for p in params if p.default is inspect.Parameter.empty])


def load(name: str, **cfg: Any) -> Dataset:
    """Build or read the dataset ``name`` with options ``cfg``.

    Args:
      name: one of :func:`list_datasets`.
      **cfg: options of that dataset's loader (see ``DATASETS[name]``'s docstring).

    Returns:
      A :class:`Dataset`.

    Raises:
      ValueError: unknown ``name``, unknown or missing option, or an option
        value out of range (the message names the dataset, field and range).
      FileNotFoundError: a file-based dataset's files are missing (the message
        names the directory and the expected file names).
      DataFileError: a dataset file is truncated, corrupt or in the wrong format (a
        ValueError; the message names the file and the format expected).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}")
    fn = DATASETS[name]
    accepted, required = _options(fn)
    for key in cfg:
        if key not in accepted:
            raise ValueError(f"load({name!r}): unknown option {key!r}; "
                             f"accepted: {', '.join(accepted) or '(none)'}")
    for key in required:
        if key not in cfg:
            raise ValueError(f"load({name!r}): missing required option {key!r}; "
                             f"accepted: {', '.join(accepted)}")
    try:
        ds = fn(**cfg)
    except ValueError as e:
        raise (DataFileError if isinstance(e, DataFileError) else ValueError)(f"load({name!r}): {e}") from e
    return ds

"""An experiment's results in a run folder, and back: ``arrays.npz`` plus ``results.json``.

Arrays (numpy, JAX, numpy scalars) go to ``arrays.npz`` under their nested keys joined
with ``/`` (``res["mlp"]["test_acc"]`` -> ``"mlp/test_acc"``, list items by index).
Everything else (numbers, strings, bools, None, lists, tuples, dicts) goes to
``results.json``, where each array is a reference ``{"$array": "mlp/test_acc"}``.
Tuples, dicts with non-string keys and non-finite floats are written with a tag
(``{"$tuple": [...]}``, ``{"$dict": [[key, value], ...]}``, ``{"$float": "nan"}``), so
:func:`load_results` returns what :func:`save_results` was given: the same nesting, keys,
Python types and array values (JAX arrays come back as numpy arrays, numpy scalars as
numpy scalars of the same dtype).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lossatlas.results.jsonio import read_json, write_json

ARRAYS_FILE = "arrays.npz"
RESULTS_FILE = "results.json"
TAGS = ("$array", "$tuple", "$dict", "$float")


def _is_array(obj) -> bool:
    return isinstance(obj, (np.ndarray, np.generic)) or (
        hasattr(obj, "__array__") and hasattr(obj, "shape") and hasattr(obj, "dtype"))


def _encode(obj: Any, path: str, arrays: dict) -> Any:
    where = path or "<results>"
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"$float": repr(obj)}
    if _is_array(obj):
        arr = np.asarray(obj)
        if arr.dtype == object:
            raise TypeError(f"results[{where}]: an array of Python objects cannot be saved; "
                            f"use a numeric or string array, or a list")
        if path in arrays:
            raise ValueError(f"results[{where}]: two entries save to the same key {path!r}")
        arrays[path] = arr
        ref = {"$array": path}
        if isinstance(obj, np.generic):
            ref["scalar"] = True
        return ref
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        raise TypeError(f"results[{where}]: a {type(obj).__name__} (NamedTuple) would come back as a plain "
                        f"tuple; store its fields as a dict (obj._asdict())")
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{path}/{i}" if path else str(i), arrays) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items
    if isinstance(obj, Mapping):
        enc = {k: _encode(v, f"{path}/{k}" if path else str(k), arrays) for k, v in obj.items()}
        if all(isinstance(k, str) and k not in TAGS for k in obj):
            return enc
        return {"$dict": [[_encode_key(k, where), enc[k]] for k in obj]}
    raise TypeError(f"results[{where}]: cannot save a {type(obj).__name__}; results hold arrays, numbers, "
                    f"strings, bools, None, lists, tuples and dicts")


def _encode_key(key: Any, where: str) -> Any:
    """A dict key as JSON: numbers, strings, bools, None and tuples of them."""
    key = key.item() if isinstance(key, np.generic) else key
    if isinstance(key, tuple):
        return {"$tuple": [_encode_key(k, where) for k in key]}
    if key is None or isinstance(key, (bool, int, float, str)):
        return _encode(key, where, {})
    raise TypeError(f"results[{where}]: cannot save a dict key of type {type(key).__name__}")


def _decode(obj: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$array" in obj:
        arr = arrays[obj["$array"]]
        return arr[()] if obj.get("scalar") else arr
    if "$tuple" in obj:
        return tuple(_decode(v, arrays) for v in obj["$tuple"])
    if "$float" in obj:
        return float(obj["$float"])
    if "$dict" in obj:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in obj["$dict"]}
    return {k: _decode(v, arrays) for k, v in obj.items()}


def save_results(folder: str | os.PathLike, results: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``results`` into ``folder`` as ``arrays.npz`` and ``results.json``.

    Args:
      folder: the run folder.
      results: the dict an experiment's ``run`` returned.

    Returns:
      The two paths written.

    Raises:
      TypeError: a value that is not an array, number, string, bool, None, list, tuple
        or dict (the message names its key).
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"results must be a dict, got {type(results).__name__}")
    folder = Path(folder)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(dict(results), "", arrays)
    np.savez_compressed(folder / ARRAYS_FILE, **arrays)
    write_json(folder / RESULTS_FILE, tree)
    return folder / ARRAYS_FILE, folder / RESULTS_FILE


def load_arrays(path: str | os.PathLike, name: str = ARRAYS_FILE) -> dict[str, np.ndarray]:
    """The flat ``{"a/b": array}`` content of a run folder's ``arrays.npz``."""
    with np.load(Path(path) / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_results(folder: str | os.PathLike) -> dict[str, Any]:
    """The results an experiment's ``run`` returned, read back from its run folder.

    Args:
      folder: a run folder written by :func:`save_results` (complete or partial).

    Returns:
      The results dict (see the module docstring for what round-trips).

    Raises:
      FileNotFoundError: the folder has no ``results.json`` (a run saved before it existed).
      ValueError: ``results.json`` is corrupt (the message names the file).
    """
    folder = Path(folder)
    if not (folder / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {RESULTS_FILE}; this run folder was written before runs "
                                f"saved all their results and cannot be re-plotted")
    tree = read_json(folder / RESULTS_FILE)
    arrays = load_arrays(folder) if (folder / ARRAYS_FILE).exists() else {}
    return _decode(tree, arrays)

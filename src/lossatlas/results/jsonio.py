"""JSON in and out of run folders: plain values only, non-finite numbers as null, errors naming the file."""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def jsonable(obj: Any):
    """Plain JSON values: non-finite floats (Python or numpy, alone or inside arrays) -> None,
    numpy scalars/arrays -> numbers/lists, Path -> str, tuple/set -> list."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        try:
            obj = sorted(obj)
        except TypeError:
            obj = list(obj)
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON (see :func:`jsonable`; NaN/Inf become null, never bare NaN)."""
    Path(path).write_text(json.dumps(jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: corrupt file (not UTF-8 text: {err.reason} at byte {err.start})") from err


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; ValueError naming the file when it is not valid JSON."""
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt JSON ({err.msg} at line {err.lineno} column {err.colno})") from err

"""Option checks shared by the loaders.

Each check returns the value converted to a plain Python type, or raises
``ValueError`` naming the field and the allowed range. ``load`` prefixes the
message with ``load('<name>'): `` so users see which dataset complained.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return "finite"


def check_int(field: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """Check ``value`` is an integer (not a bool) in ``[lo, hi]``.

    Args:
      field: option name used in the error message.
      value: the value to check.
      lo, hi: inclusive bounds; ``None`` means unbounded.

    Returns:
      ``value`` as a Python ``int``.
    """
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        value = int(value)
        ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        raise ValueError(
            f"{field} must be an integer {_range_text(lo, hi, False, False)}, got {value!r}")
    return value


def check_float(field: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """Check ``value`` is a finite real number within the given bounds.

    Args:
      field: option name used in the error message.
      value: the value to check.
      lo, hi: bounds; ``None`` means unbounded.
      lo_open, hi_open: whether the bound itself is excluded.

    Returns:
      ``value`` as a Python ``float``.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        if lo is not None:
            ok = ok and (value > lo if lo_open else value >= lo)
        if hi is not None:
            ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ValueError(
            f"{field} must be a number {_range_text(lo, hi, lo_open, hi_open)}, got {value!r}")
    return value


def check_bool(field: str, value: Any) -> bool:
    """Check ``value`` is a bool (Python or numpy).

    Args:
      field: option name used in the error message.
      value: the value to check.

    Returns:
      ``value`` as a Python ``bool``.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{field} must be True or False, got {value!r}")
    return bool(value)


def check_optional_count(field: str, value: Any, available: int) -> int:
    """Check an optional "take the first n" count against what is available.

    Args:
      field: option name used in the error message.
      value: ``None`` (take all) or an integer in ``[0, available]``.
      available: how many examples exist.

    Returns:
      The number of examples to take.
    """
    if value is None:
        return available
    return check_int(field, value, 0, available)

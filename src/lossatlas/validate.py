"""One checker for every layer: a bad value raises one ``ValueError`` line that names the
field, the value and what is allowed, in one style::

    TrainConfig.learning_rate must be a number >= 0, got -1.0
    sweep: seeds must be an integer >= 1, got 0

``where`` is the owner: a class name (``TrainConfig``, joined with ``.``) or a function
name (``sweep``, joined with ``: ``); empty for a bare field name. Every check returns the
value converted to a plain Python type, so configs can store what the check returns.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, NoReturn

import numpy as np

__all__ = ["boolean", "fail", "integer", "int_tuple", "label", "normalize", "number", "one_of"]


def label(where: str, field: str) -> str:
    """``Owner.field`` for a class-like owner, ``func: field`` for a function, else ``field``."""
    if not where:
        return field
    return f"{where}.{field}" if where[:1].isupper() else f"{where}: {field}"


def fail(where: str, field: str, value: Any, allowed: str) -> NoReturn:
    """Raise ``ValueError("<label> must be <allowed>, got <value!r>")``."""
    raise ValueError(f"{label(where, field)} must be {allowed}, got {value!r}")


def _range_text(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def integer(where: str, field: str, value: Any, lo: int | None = None, hi: int | None = None, *,
            optional: bool = False) -> int | None:
    """An integer (numpy integers accepted, bools refused) in ``[lo, hi]``.

    Args:
      where, field: owner and field name for the message (see :func:`label`).
      value: the value to check.
      lo, hi: inclusive bounds; ``None`` means unbounded.
      optional: accept ``None`` (returned as is).

    Returns:
      ``value`` as a Python ``int`` (or ``None`` when optional).
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral) and not _is_bool(value)
    if ok:
        value = int(value)
        ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        fail(where, field, value, " ".join(filter(None, ["an integer", _range_text(lo, hi, False, False)]))
             + (" or None" if optional else ""))
    return value


def number(where: str, field: str, value: Any, lo: float | None = None, hi: float | None = None, *,
           lo_open: bool = False, hi_open: bool = False, optional: bool = False) -> float | None:
    """A finite real number (numpy scalars accepted, bools refused) within the bounds.

    Args:
      where, field: owner and field name for the message (see :func:`label`).
      value: the value to check.
      lo, hi: bounds; ``None`` means unbounded.
      lo_open, hi_open: whether the bound itself is excluded.
      optional: accept ``None`` (returned as is).

    Returns:
      ``value`` as a Python ``float`` (or ``None`` when optional).
    """
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not _is_bool(value)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        if lo is not None:
            ok = ok and (value > lo if lo_open else value >= lo)
        if hi is not None:
            ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        fail(where, field, value, (f"a number {_range_text(lo, hi, lo_open, hi_open)}"
                                   if lo is not None or hi is not None else "a finite number")
             + (" or None" if optional else ""))
    return value


def boolean(where: str, field: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy bools accepted), as a Python ``bool``."""
    if not _is_bool(value):
        fail(where, field, value, "True or False")
    return bool(value)


def one_of(where: str, field: str, value: Any, choices: Iterable) -> Any:
    """``value`` if it is one of ``choices``; the message lists them."""
    choices = tuple(choices)
    try:
        ok = value in choices
    except TypeError:  # unhashable value against a dict / set of choices
        ok = False
    if not ok:
        fail(where, field, value, "one of " + ", ".join(repr(c) for c in choices))
    return value


def int_tuple(where: str, field: str, value: Any, lo: int = 1, *, nonempty: bool = True) -> tuple:
    """A tuple (lists accepted) of integers ``>= lo``, e.g. hidden-layer widths."""
    ok = isinstance(value, (tuple, list)) and (len(value) > 0 or not nonempty) and all(
        isinstance(v, numbers.Integral) and not _is_bool(v) and v >= lo for v in value)
    if not ok:
        fail(where, field, value, f"a {'non-empty ' if nonempty else ''}tuple of integers >= {lo}")
    return tuple(int(v) for v in value)


def normalize(obj: Any, field: str, check, *args, where: str | None = None, **kwargs) -> Any:
    """Check ``obj.<field>`` with ``check`` and store the converted value back, also on a
    frozen dataclass (for ``__post_init__``)::

        normalize(self, "learning_rate", number, lo=0)   # TrainConfig.learning_rate, as a float

    Args:
      obj: the (possibly frozen) dataclass instance.
      field: attribute name.
      check: one of this module's checks, called as ``check(where, field, value, *args, **kwargs)``.
      where: the owner in the message; default ``type(obj).__name__``.

    Returns:
      The converted value (also stored on ``obj``).
    """
    value = check(type(obj).__name__ if where is None else where, field, getattr(obj, field), *args, **kwargs)
    object.__setattr__(obj, field, value)
    return value

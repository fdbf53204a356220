"""Command-line values for config fields: ``--set key=value`` parsing and type checks.

The app layer's parser (the library's configs never import it): text from the command
line becomes a typed value by the field's type hint (:func:`parse_value`), is checked
against it (:func:`check_type`), and a saved ``config.json`` becomes a Config again
(:func:`config_from_dict`).
"""
from __future__ import annotations

import ast
import dataclasses
import math
import numbers
import types
import typing
import warnings
from typing import Any, Iterable, Mapping

import numpy as np


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def hint_types(annotation: Any) -> tuple | None:
    """The plain classes a type hint allows.

    Args:
      annotation: a field's type hint.

    Returns:
      ``int | None`` -> ``(int, NoneType)``, ``tuple[str, ...]`` -> ``(tuple,)``; None when
      the hint is not that simple (e.g. ``Any``).
    """
    if annotation is None or annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        parts = [hint_types(a) for a in typing.get_args(annotation)]
        return None if any(p is None for p in parts) else tuple(t for p in parts for t in p)
    if annotation is type(None):
        return (type(None),)
    if isinstance(origin, type):
        return (origin,)
    return (annotation,) if isinstance(annotation, type) else None


def parse_value(text: str, annotation: Any = None):
    """Parse a command-line value: ints, floats, bools, None, tuples ``(1,2)`` / ``1,2``, strings.

    With a type hint: a tuple field turns a single value into a 1-tuple (``logreg`` ->
    ``("logreg",)``), a float field turns ints and ``nan`` / ``inf`` into floats.

    Args:
      text: the value as typed (``--set key=TEXT``).
      annotation: the field's type hint, or None.

    Returns:
      The parsed value (unchecked: see :func:`check_type`).
    """
    allowed = hint_types(annotation) or ()
    low = text.strip().lower()
    if low in ("true", "false"):
        value = low == "true"
    elif low in ("none", "null"):
        value = None
    else:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            if "," in text:
                value = tuple(parse_value(t) for t in text.split(",") if t.strip())
            else:
                value = text
        if isinstance(value, list):
            value = tuple(value)
    if float in allowed and int not in allowed:
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(value, str):
            try:
                value = float(value)  # "nan", "inf", "-inf"
            except ValueError:
                pass
    if tuple in allowed and value is not None and not isinstance(value, tuple):
        value = (value,)
    return value


def check_type(owner: str, name: str, value: Any, annotation: Any) -> Any:
    """``value`` checked against a field's type hint (int fields need ints, float fields
    take ints or floats and store floats, tuple fields need tuples, str fields strings);
    ValueError naming ``owner.name`` otherwise. Hints that are not plain classes pass.

    Args:
      owner: how the message names the owner (e.g. ``"--set epochs: Config"``).
      name: the field name.
      value: the value to check.
      annotation: the field's type hint.

    Returns:
      ``value``, converted to the plain Python type (ints for int fields, floats for float fields).
    """
    allowed = hint_types(annotation)
    if allowed is None:
        return value
    if value is None:
        if type(None) in allowed:
            return value
    elif _is_bool(value):
        if bool in allowed:
            return bool(value)
    elif isinstance(value, numbers.Integral) and int in allowed:
        return int(value)
    elif isinstance(value, numbers.Real) and float in allowed:
        return float(value)
    elif any(t not in (int, float, bool) and isinstance(value, t) for t in allowed):
        return value
    names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"{owner}.{name} must be {names}, got {value!r}")


def parse_sets(items: Iterable[str] | None) -> dict[str, str]:
    """``["epochs=3", "models=mlp,cnn"]`` (repeated ``--set``) -> ``{"epochs": "3", "models": "mlp,cnn"}``.

    Raises:
      ValueError: an item without ``=``.
    """
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _from_json(value: Any, annotation: Any) -> Any:
    """A JSON value (lists, null for a non-finite float) as the field's type wants it."""
    allowed = hint_types(annotation) or ()
    if isinstance(value, list):
        return tuple(_from_json(v, None) for v in value)
    if value is None and allowed and type(None) not in allowed and float in allowed:
        return math.nan  # config.json writes NaN and +-Inf as null
    return value


def config_from_dict(cls: type, values: Mapping[str, Any]):
    """The Config dataclass ``cls`` rebuilt from a saved ``config.json``'s ``"config"`` entry.

    JSON lists become tuples; ``null`` in a float field becomes NaN (``config.json`` writes
    every non-finite float as null); each value is checked with :func:`check_type`. Fields
    missing from ``values`` keep their defaults; names ``cls`` no longer has are skipped
    with a warning (a run saved by an older version).

    Args:
      cls: the experiment's Config class.
      values: ``{field: JSON value}``.

    Returns:
      ``cls(**fields)``.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        warnings.warn(f"{cls.__name__}: saved config fields {', '.join(unknown)} no longer exist; ignored",
                      stacklevel=2)
    kwargs = {k: check_type(cls.__name__, k, _from_json(v, hints.get(k)), hints.get(k))
              for k, v in values.items() if k in fields}
    return cls(**kwargs)

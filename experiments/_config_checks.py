"""One-line ``ValueError`` checks shared by the experiments' ``Config.__post_init__``.

Thin loops over :mod:`lossatlas.validate` (one message style: ``Config.field must be
<allowed>, got <value>``); each check stores the converted value back on the (frozen)
config, so numpy scalars become Python numbers.
"""
from __future__ import annotations

from lossatlas import validate


def require_ints(cfg, bounds: dict) -> None:
    """Every ``cfg.<name>`` is an integer (not a bool) ``>= bounds[name]``."""
    for name, lo in bounds.items():
        validate.normalize(cfg, name, validate.integer, lo)


def require_widths(cfg, name: str = "widths") -> None:
    """``cfg.<name>`` is a non-empty tuple of positive integers (hidden-layer widths)."""
    validate.normalize(cfg, name, validate.int_tuple, 1)


def require_fraction(cfg, name: str, lo: float = 0.0, hi: float = 0.5) -> None:
    """``lo < cfg.<name> < hi``."""
    validate.normalize(cfg, name, validate.number, lo, hi, lo_open=True, hi_open=True)

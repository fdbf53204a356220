"""One-line ``ValueError`` checks shared by the experiments' ``Config.__post_init__``."""
from __future__ import annotations


def require_ints(cfg, bounds: dict) -> None:
    """Every ``cfg.<name>`` is an int (not a bool) ``>= bounds[name]``."""
    for name, lo in bounds.items():
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"Config.{name} must be an integer >= {lo}, got {v!r}")


def require_widths(cfg, name: str = "widths") -> None:
    """``cfg.<name>`` is a non-empty tuple of positive ints (hidden-layer widths)."""
    w = getattr(cfg, name)
    if not (isinstance(w, tuple) and w and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in w)):
        raise ValueError(f"Config.{name} must be a non-empty tuple of positive integers, got {w!r}")


def require_fraction(cfg, name: str, lo: float = 0.0, hi: float = 0.5) -> None:
    """``lo < cfg.<name> < hi``."""
    v = getattr(cfg, name)
    if not lo < v < hi:
        raise ValueError(f"Config.{name} must be in ({lo}, {hi}), got {v!r}")

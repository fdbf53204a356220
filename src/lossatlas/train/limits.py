"""Sanity limits on run length: refuse absurd sizes up front, warn about long runs.

A typo such as ``--set epochs=1000000000`` would otherwise compile and then compute
silently for hours. Every training program checks its total optimizer steps per run
against :func:`max_steps` (default 10^8, overridable with the environment variable
``LOSSATLAS_MAX_STEPS``; never above 2^31 - 1, the int32 step counter) and warns with
:class:`LongRunWarning` above ``WARN_STEPS``.
"""
from __future__ import annotations

import os
import warnings

MAX_STEPS_ENV = "LOSSATLAS_MAX_STEPS"
DEFAULT_MAX_STEPS = 10**8
#: The step counter (``TrainState.step``) is int32.
HARD_MAX_STEPS = 2**31 - 1
#: Runs longer than this many optimizer steps get a :class:`LongRunWarning`.
WARN_STEPS = 10**6


class LongRunWarning(UserWarning):
    """A run is long enough (``WARN_STEPS`` or more optimizer steps) to take a while."""


def max_steps() -> int:
    """The sanity cap on optimizer steps per run: ``$LOSSATLAS_MAX_STEPS`` or 10^8."""
    text = os.environ.get(MAX_STEPS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_STEPS
    try:
        number = float(text)  # "100000000" or "1e8"
        value = int(number) if number.is_integer() else 0
    except ValueError:
        value = 0
    if not 1 <= value <= HARD_MAX_STEPS:
        raise ValueError(f"{MAX_STEPS_ENV} must be an integer in [1, {HARD_MAX_STEPS}], got {text!r}")
    return value


def _cap_text(cap: int) -> str:
    if cap >= HARD_MAX_STEPS:
        return f"the int32 step counter's limit of {HARD_MAX_STEPS:,}"
    return f"the sanity cap of {cap:,} (set {MAX_STEPS_ENV} to raise it, up to {HARD_MAX_STEPS:,})"


def check_field(owner: str, name: str, value) -> None:
    """Refuse an epochs/steps count that alone exceeds the cap (each unit is at least one step).

    Args:
      owner: how the message names the config (e.g. ``"--set"`` or ``"TrainConfig"``).
      name: the field.
      value: its value (non-integers are left to the config's own checks).
    """
    cap = max_steps()
    if isinstance(value, int) and not isinstance(value, bool) and value > cap:
        raise ValueError(f"{owner} {name}={value} is more than {_cap_text(cap)}; each of its units is at "
                         f"least one optimizer step")


def check_total_steps(owner: str, field: str, total: int, detail: str) -> int:
    """Refuse a run of more than :func:`max_steps` optimizer steps; warn above ``WARN_STEPS``.

    Args:
      owner: the config's name (``"TrainConfig"``).
      field: the field that sets the length (``"epochs"``), named in the message.
      total: optimizer steps per run.
      detail: how ``total`` arises, e.g. ``"1,000 epochs x 40 steps per epoch"``.

    Returns:
      ``total``.
    """
    cap = max_steps()
    if total > cap:
        raise ValueError(f"{owner}.{field}: {total:,} optimizer steps per run ({detail}) is more than "
                         f"{_cap_text(cap)}")
    if total >= WARN_STEPS:
        warnings.warn(f"{owner}.{field}: {total:,} optimizer steps per run ({detail}); this will take a while",
                      LongRunWarning, stacklevel=3)
    return total

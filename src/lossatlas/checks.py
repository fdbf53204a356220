"""Check records: what an experiment claims, what it measured, and whether it held.

A check is a dict ``{"name", "value", "passed", "detail"}`` plus optional fields (build one with
:func:`record`; the runner passes every experiment's list through :func:`normalize` before
writing ``checks.json``, so the run folder, the figure stamp and reports read the same data):

- ``"gating"`` (default True): a gating check that fails makes ``lossatlas run`` exit 1
  and fails the experiment's test. ``gating=False`` marks a *report-only* check: it is
  still written to ``checks.json``, shown by ``lossatlas show`` and stamped on the figure
  when it fails, but it decides nothing. Use it only for quantities that cannot be a
  verdict on any machine (wall-clock timings) or for a paper claim our full run refutes,
  stated as failed where it fails (never to hide a failure that the quick run shows).
- ``"paper"``: the paper's value or claim the check is measured against; ``"claim"`` the claim
  in words; ``"tolerance"`` the threshold or band.

Every reader of check records (the runner's exit code, the test helper, the figure
stamp, ``lossatlas show``) goes through the functions here.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Mapping

#: The fields a check record may hold; ``name``, ``passed``, ``value`` and ``detail`` always.
FIELDS = ("name", "claim", "paper", "value", "tolerance", "passed", "detail", "gating")


def _number(x):
    """A JSON-able value: Python int/float (NaN / inf kept as floats), bools as bools, and
    sequences / arrays of them as lists."""
    if isinstance(x, (list, tuple)) or type(x).__name__ == "ndarray":
        import numpy as np
        return [_number(v) for v in np.asarray(x, dtype=object).ravel().tolist()]
    if isinstance(x, (bool,)) or type(x).__name__ == "bool_":
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return float(x)
    return x


def record(name: str, passed, value, *, detail: str = "", claim: str | None = None, paper: Any = None,
           tolerance: Any = None, gating: bool = True) -> dict:
    """One check as data: what is claimed, the paper's value, ours, the tolerance, the verdict.

    Args:
      name: short name of the claim (unique within an experiment).
      passed: the verdict (any truthy value; stored as a bool).
      value: our measured number (a scalar, or a short list of numbers; numpy values are converted).
      detail: one line with the numbers behind the verdict (margins, CIs, seeds).
      claim: the claim in words, when the name is not enough.
      paper: the paper's value or statement the check is measured against.
      tolerance: the threshold or allowed band, as a number or a short text.
      gating: False for a report-only check (see the module docstring).

    Returns:
      The record, a plain JSON-able dict with only the fields given.
    """
    out = {"name": str(name), "value": _number(value), "passed": bool(passed), "detail": str(detail)}
    for k, v in (("claim", claim), ("paper", paper), ("tolerance", tolerance)):
        if v is not None:
            out[k] = _number(v)
    if not gating:
        out["gating"] = False
    return out


def normalize(checks: Iterable[Mapping], where: str = "checks") -> list[dict]:
    """Every record checked and converted to plain JSON types (what ``checks.json`` holds).

    Raises ``ValueError`` naming the record and field for a record without a string ``name``,
    with an unknown field, or with a non-scalar ``value``; ``passed`` becomes a bool.
    """
    out = []
    for i, c in enumerate(checks):
        if not isinstance(c, Mapping) or not isinstance(c.get("name"), str):
            raise ValueError(f"{where}[{i}] must be a dict with a string 'name', got {c!r:.80}")
        unknown = set(c) - set(FIELDS)
        if unknown:
            raise ValueError(f"{where}[{i}] ({c['name']!r}) has unknown field(s) {sorted(unknown)}; allowed: {', '.join(FIELDS)}")
        if "passed" not in c:
            raise ValueError(f"{where}[{i}] ({c['name']!r}) has no 'passed' verdict")
        value = _number(c.get("value"))
        flat = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in flat):
            raise ValueError(f"{where}[{i}] ({c['name']!r}): value must be a number (or a list of numbers), "
                             f"got {type(c.get('value')).__name__}")
        kw = {k: c[k] for k in ("claim", "paper", "tolerance") if k in c}
        rec = record(c["name"], c["passed"], value, detail=c.get("detail", ""), gating=c.get("gating", True), **kw)
        if isinstance(rec["value"], float) and math.isnan(rec["value"]):
            rec["value"] = None  # JSON has no NaN; the detail says why
        out.append(rec)
    return out


def is_gating(check: Mapping) -> bool:
    """True unless the record says ``gating: False``."""
    return bool(check.get("gating", True))


def gating_failures(checks: Iterable[Mapping]) -> list[Mapping]:
    """The failed checks that decide the run's verdict."""
    return [c for c in checks if is_gating(c) and not c["passed"]]


def all_passed(checks: Iterable[Mapping]) -> bool:
    """True when no gating check failed (report-only failures do not count)."""
    return not gating_failures(checks)


def label(check: Mapping) -> str:
    """``PASS`` / ``FAIL``, with ``(report-only)`` for non-gating checks."""
    verdict = "PASS" if check["passed"] else "FAIL"
    return verdict if is_gating(check) else f"{verdict}, report-only"


def assert_passed(checks) -> None:
    """Raise AssertionError naming every failed gating check (for tests).

    Args:
      checks: a list of check records, or a ``{name: record}`` dict.
    """
    items = list(checks.values()) if isinstance(checks, Mapping) else list(checks)
    failed = gating_failures(items)
    if failed:
        raise AssertionError("failed checks: " + "; ".join(f"{c['name']}: {c.get('detail', '')}" for c in failed))

"""Check records: what an experiment claims, what it measured, and whether it held.

A check is a dict ``{"name", "value", "passed", "detail"}`` plus optional fields:

- ``"gating"`` (default True): a gating check that fails makes ``lossatlas run`` exit 1
  and fails the experiment's test. ``gating=False`` marks a *report-only* check: it is
  still written to ``checks.json``, shown by ``lossatlas show`` and stamped on the figure
  when it fails, but it decides nothing. Use it only for quantities that cannot be a
  verdict on any machine (wall-clock timings) or for a paper claim our full run refutes,
  stated as failed where it fails (never to hide a failure that the quick run shows).
- ``"paper"``: the paper's value or claim the check is measured against.

Every reader of check records (the runner's exit code, the test helper, the figure
stamp, ``lossatlas show``) goes through the functions here.
"""
from __future__ import annotations

from typing import Iterable, Mapping


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

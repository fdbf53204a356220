"""What ``lossatlas show`` prints for a run folder."""
from __future__ import annotations

import json
import os
from pathlib import Path

from lossatlas.results.folders import COMPLETE_MARKER, is_complete
from lossatlas.results.jsonio import read_json, read_text


def read_checks(path: str | os.PathLike) -> list[dict]:
    """``checks.json`` as a list of records with ``name``, ``passed`` and ``detail``.

    Raises:
      ValueError: the file is not such a list (the message names it).
    """
    path = Path(path)
    items = read_json(path)
    ok = isinstance(items, list) and all(isinstance(c, dict) and {"name", "passed", "detail"} <= set(c)
                                         for c in items)
    if not ok:
        raise ValueError(f"{path}: expected a list of check records with keys name, passed, detail")
    return items


def summary_text(path: str | os.PathLike) -> str:
    """What ``lossatlas show`` prints: the run's tables and checks.

    Raises:
      FileNotFoundError: no folder at ``path``.
      ValueError: the run is not complete, or one of its JSON files is corrupt (the
        message names the file).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no run folder at {path}")
    if not is_complete(path):
        raise ValueError(f"{path} is not a complete run (no {COMPLETE_MARKER} marker)")
    parts = [f"# {path}"]
    cfg = path / "config.json"
    if cfg.exists():
        parts.append("config: " + json.dumps(read_json(cfg), sort_keys=True))
    for md in sorted(path.glob("*.md")):
        parts.append(read_text(md).rstrip())
    checks = path / "checks.json"
    if checks.exists():
        items = read_checks(checks)
        from lossatlas.checks import label
        lines = ["## checks"] + [f"- [{label(c)}] {c['name']}: {c['detail']}" for c in items]
        parts.append("\n".join(lines))
    figs = sorted(p.name for p in path.glob("*.png"))
    if figs:
        parts.append("figures: " + ", ".join(figs))
    return "\n\n".join(parts) + "\n"

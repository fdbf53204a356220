"""Partial run folders left by killed runs: find one to resume, list them, remove stale ones."""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from lossatlas.results.folders import CHECKPOINTS, OWNER_FILE, _partial_run_id, is_complete
from lossatlas.results.jsonio import read_json


def resolve_partial(path: str | os.PathLike) -> tuple[Path, str, str]:
    """``(out_dir, experiment, run_id)`` of a partial run folder, given as ``ROOT/NAME/.ID.partial``
    or as its final form ``ROOT/NAME/ID``.

    Raises:
      FileNotFoundError: there is no such partial folder.
      ValueError: the run is complete already.
    """
    path = Path(path)
    name = path.name
    run_id = _partial_run_id(name)
    root = path.parent
    if is_complete(root / run_id):
        raise ValueError(f"{root / run_id} is a complete run; there is nothing to resume")
    partial = root / f".{run_id}.partial"
    if not partial.is_dir():
        raise FileNotFoundError(f"no partial run folder {partial} to resume (see `lossatlas show --partial`)")
    return root.parent, root.name, run_id


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


def partial_info(path: str | os.PathLike) -> dict:
    """What is known about one partial run folder.

    Returns:
      ``{"path", "experiment", "run_id", "age_hours"`` (since the last file was written),
      ``"live"`` (True: its process runs on this host, False: it does not, None: another
      host), ``"calls"`` (chunked program calls with a checkpoint) and ``"last"`` (the last
      checkpoint's ``meta.json``: desc, unit, chunks_done, chunks_total) or None}``.
    """
    path = Path(path)
    files = [p for p in path.rglob("*") if p.is_file()]
    newest = max([p.stat().st_mtime for p in files] + [path.stat().st_mtime])
    live = None
    owner = path / OWNER_FILE
    if owner.exists():
        try:
            o = read_json(owner)
            live = _pid_alive(int(o["pid"])) if o.get("host") == socket.gethostname() else None
        except (ValueError, KeyError, TypeError):
            live = None
    metas = sorted((path / CHECKPOINTS).glob("call-*/meta.json"))
    last = None
    if metas:
        try:
            last = read_json(metas[-1])
        except ValueError:
            last = None
    return {"path": path, "experiment": path.parent.name, "run_id": _partial_run_id(path.name),
            "age_hours": (time.time() - newest) / 3600.0, "live": live, "calls": len(metas), "last": last}


def list_partial(out_dir: str | os.PathLike = "runs") -> list[dict]:
    """:func:`partial_info` of every ``out_dir/<experiment>/.<id>.partial`` folder, oldest first."""
    root = Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder {root}")
    found = [partial_info(p) for p in root.glob("*/.*.partial") if p.is_dir()]
    return sorted(found, key=lambda d: -d["age_hours"])


def partial_text(out_dir: str | os.PathLike = "runs") -> str:
    """What ``lossatlas show --partial`` prints: one line per partial folder."""
    items = list_partial(out_dir)
    if not items:
        return f"no partial runs under {out_dir}\n"
    lines = []
    for d in items:
        state = {True: "running", False: "stale", None: "stale?"}[d["live"]]
        last = d["last"]
        got = "no checkpoint yet" if last is None else (
            f"{d['calls']} call(s) checkpointed; call {last['call']} ({last.get('desc', '')}): "
            f"{last['chunks_done'] * last['units_per_chunk']}/{last['chunks_total'] * last['units_per_chunk']} "
            f"{last['unit']}s")
        lines.append(f"{d['experiment']}  {d['run_id']}  {state}  {d['age_hours']:.1f} h old  {got}  {d['path']}")
    return "\n".join(lines) + "\n"


def clean_partial(out_dir: str | os.PathLike = "runs", older_than_hours: float = 0.0,
                  dry_run: bool = False) -> list[Path]:
    """Remove stale partial run folders: not owned by a live process on this host and last
    written more than ``older_than_hours`` ago. Complete runs are never touched.

    Returns:
      The folders removed (or, with ``dry_run``, that would be).
    """
    removed = []
    for d in list_partial(out_dir):
        if d["live"] or d["age_hours"] < older_than_hours:
            continue
        if not dry_run:
            shutil.rmtree(d["path"])
        removed.append(d["path"])
    return removed

"""Run folders: ``runs/<experiment>/<id>/``, written whole or not at all.

A run is written into a hidden ``.<id>.partial`` folder and renamed to ``<id>``
only when everything succeeded, so a failed run never leaves a folder that looks
complete (the partial folder is removed on failure). A run killed outright (kill -9,
power loss) leaves its partial folder with ``owner.json`` (pid, host) and its
``checkpoints/``; :func:`new_run` with ``resume=True`` continues it
(:mod:`lossatlas.results.partial` lists and removes stale ones).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from lossatlas.results.cells import csv_rows, format_table
from lossatlas.results.environment import environment
from lossatlas.results.jsonio import jsonable, read_json, write_json
from lossatlas.results.store import save_results

COMPLETE_MARKER = "COMPLETE"
OWNER_FILE = "owner.json"
CHECKPOINTS = "checkpoints"  # lossatlas.checkpoint writes call-<i>/ folders here


def save_figure(fig, folder: str | os.PathLike, name: str) -> list[Path]:
    """Save a matplotlib figure as ``folder/name.png`` (150 dpi) and ``folder/name.pdf``.

    Returns:
      The two paths written.
    """
    out = []
    for ext in ("png", "pdf"):
        p = Path(folder) / f"{name}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        out.append(p)
    return out


@dataclasses.dataclass
class Run:
    """A run folder being written. Use through :func:`new_run`."""

    experiment: str
    run_id: str
    path: Path  # where files go now (the partial folder until the run completes)
    final_path: Path

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as ``name`` in the folder (:func:`lossatlas.results.write_json`)."""
        p = self.path / name
        write_json(p, obj)
        return p

    def save_arrays(self, arrays: Mapping[str, Any], name: str = "arrays.npz") -> Path:
        """Save a flat or nested dict of arrays (nested keys joined with '/') as one ``.npz``."""
        flat = {}

        def walk(prefix, obj):
            if isinstance(obj, Mapping):
                for k, v in obj.items():
                    walk(f"{prefix}/{k}" if prefix else str(k), v)
            else:
                flat[prefix] = np.asarray(obj)

        walk("", arrays)
        p = self.path / name
        np.savez_compressed(p, **flat)
        return p

    def save_figure(self, fig, name: str) -> list[Path]:
        """Save a matplotlib figure as ``name.png`` (150 dpi) and ``name.pdf``."""
        return save_figure(fig, self.path, name)

    def save_results(self, results: Mapping[str, Any]) -> tuple[Path, Path]:
        """Save everything ``results`` holds (:func:`lossatlas.results.save_results`)."""
        return save_results(self.path, results)

    def write_table(self, rows: list[dict], name: str = "table", columns: list[str] | None = None,
                    title: str | None = None) -> Path:
        """Write ``name.md`` (Markdown, shown by ``lossatlas show``) and ``name.csv``.

        Cells are numbers, labels or stat cells (:func:`lossatlas.results.stat`); the
        Markdown shows a stat cell as ``mean +- spread``, the CSV as two numeric columns.
        """
        columns = columns or (list(rows[0]) if rows else [])
        text = (f"## {title}\n\n" if title else "") + format_table(rows, columns)
        p = self.path / f"{name}.md"
        p.write_text(text)
        csv_cols, csv_body = csv_rows(rows, columns)
        with open(self.path / f"{name}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=csv_cols, extrasaction="ignore")
            w.writeheader()
            for r in csv_body:
                w.writerow({c: jsonable(r.get(c, "")) for c in csv_cols})
        return p


class OutDirError(ValueError):
    """The results root cannot hold run folders (a file in the way, or not writable)."""


def check_out_dir(out_dir: str | os.PathLike, what: str = "out_dir") -> Path:
    """Check, before anything runs, that run folders can be created under ``out_dir``.

    The directory need not exist yet (it is created by :func:`new_run`), but its nearest
    existing ancestor must be a directory in which a folder can be made; this is tried
    (a probe folder is created and removed at once), so read-only file systems and missing
    permissions are caught too.

    Args:
      out_dir: the results root (``--out``).
      what: how the error message names it (the CLI passes ``"--out"``).

    Returns:
      ``out_dir`` as a ``Path``.

    Raises:
      OutDirError (a ValueError): one line naming the path and what is wrong.
    """
    out = Path(out_dir)
    anc = out
    while not anc.exists() and not anc.is_symlink() and anc != anc.parent:
        anc = anc.parent
    if anc.is_symlink() and not anc.exists():
        raise OutDirError(f"{what} {out}: {anc} is a broken symbolic link; expected a writable directory")
    if not anc.is_dir():
        where = "it is" if anc == out else f"{anc} is"
        raise OutDirError(f"{what} {out}: {where} a file, not a directory; expected a writable directory "
                          f"(created if missing)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".lossatlas-probe-", dir=anc))
    except OSError as err:
        where = "it" if anc == out else f"{anc}"
        raise OutDirError(f"{what} {out}: cannot create folders in {where} ({err.strerror or err}); "
                          f"expected a writable directory") from err
    return out


def _new_id() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _write_owner(partial: Path, resumed: bool) -> None:
    path = partial / OWNER_FILE
    owner = read_json(path) if resumed and path.exists() else {}
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    owner.update(pid=os.getpid(), host=socket.gethostname())
    owner.setdefault("started", now)
    if resumed:
        owner["resumed"] = owner.get("resumed", []) + [now]
    write_json(path, owner)


def _config_mismatch(saved: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two JSON values differ."""
    if isinstance(saved, dict) and isinstance(new, dict):
        return [d for k in sorted(set(saved) | set(new))
                for d in _config_mismatch(saved.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if saved == new else [prefix.rstrip(".") or "config"]


@contextlib.contextmanager
def new_run(experiment: str, config: Any, out_dir: str | os.PathLike = "runs", run_id: str | None = None,
            resume: bool = False):
    """Context manager yielding a :class:`Run`; the folder appears only on success.

    Args:
      experiment: experiment name (sub-folder of ``out_dir``).
      config: the run's config (dataclass or dict), written to ``config.json``.
      out_dir: root folder for runs (default ``runs``).
      run_id: folder name (default: timestamp plus a random suffix).
      resume: continue the existing partial folder of ``run_id`` (left by a killed run)
        instead of making a new one; its ``config.json`` must equal ``config``.

    Yields:
      A :class:`Run` whose ``path`` is a hidden partial folder (holding ``owner.json``:
      the writing process's pid and host). On normal exit its ``checkpoints/`` are
      removed, a ``COMPLETE`` marker is written and the folder is renamed to
      ``out_dir/experiment/run_id``; on an exception (Ctrl-C included) it is deleted.

    Raises:
      FileExistsError: the final folder exists already.
      FileNotFoundError: ``resume`` without a partial folder to continue.
      ValueError: ``resume`` with a different config (names the fields).
    """
    if resume and not run_id:
        raise ValueError("new_run: resume needs the run_id of the partial folder")
    run_id = run_id or _new_id()
    root = Path(out_dir) / experiment
    final = root / run_id
    if final.exists():
        raise FileExistsError(f"run folder {final} already exists; pick another --out or run id")
    partial = root / f".{run_id}.partial"
    check_out_dir(out_dir)
    if resume:
        if not (partial / "config.json").is_file():
            raise FileNotFoundError(f"no partial run folder {partial} (with config.json) to resume")
        diff = _config_mismatch(read_json(partial / "config.json"), jsonable(config))
        if diff:
            raise ValueError(f"cannot resume {partial}: it was started with a different experiment or "
                             f"config (differs in: {', '.join(diff)}); repeat its original command with --resume")
    else:
        try:
            partial.mkdir(parents=True, exist_ok=False)
        except (NotADirectoryError, FileExistsError, PermissionError) as err:
            raise OutDirError(f"cannot create the run folder {partial} ({err.strerror or err}); "
                              f"out_dir must be a writable directory") from err
    run = Run(experiment, run_id, partial, final)
    try:
        if not resume:
            run.write_json("config.json", config)
            run.write_json("environment.json", environment())
        _write_owner(partial, resume)
        yield run
        shutil.rmtree(partial / CHECKPOINTS, ignore_errors=True)
        (partial / COMPLETE_MARKER).write_text(_dt.datetime.now(_dt.timezone.utc).isoformat() + "\n")
        partial.rename(final)
        run.path = final
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` is a finished run folder (it holds the ``COMPLETE`` marker)."""
    return (Path(path) / COMPLETE_MARKER).exists()


def _partial_run_id(name: str) -> str:
    """The run id of a partial folder's name (``.ID.partial`` -> ``ID``; other names unchanged)."""
    return name[1:-len(".partial")] if name.startswith(".") and name.endswith(".partial") else name


def iter_runs(out_dir: str | os.PathLike, experiment: str) -> Iterable[Path]:
    """The complete run folders of ``experiment`` under ``out_dir``, oldest id first."""
    root = Path(out_dir) / experiment
    return sorted(p for p in root.iterdir() if p.is_dir() and is_complete(p)) if root.exists() else []


def completed_at(path: str | os.PathLike) -> str:
    """When a complete run finished: its ``COMPLETE`` marker's UTC time (ISO 8601, microseconds),
    ``""`` when unreadable. Sorts runs by completion where run ids (to the second) may tie."""
    try:
        return (Path(path) / COMPLETE_MARKER).read_text().strip()
    except OSError:
        return ""


def find_run(out_dir: str | os.PathLike, experiment: str, record: Any) -> Path | None:
    """The newest complete run (:func:`completed_at`) of ``experiment`` under ``out_dir`` made with ``record``.

    ``record`` is what the runner writes as ``config.json`` (``{"experiment", "quick",
    "config"}``); a run matches when its ``config.json`` holds the same JSON value
    (:func:`lossatlas.results.jsonable`), so the same mode and every config field equal.
    Folders whose ``config.json`` is missing or corrupt never match.

    Args:
      out_dir: the results root.
      experiment: the experiment's name (sub-folder of ``out_dir``).
      record: the run's config record (dicts, dataclasses, tuples: compared as JSON).

    Returns:
      The run folder, or None when no complete run matches.
    """
    want = jsonable(record)
    for path in sorted(iter_runs(out_dir, experiment), key=completed_at, reverse=True):
        try:
            if read_json(path / "config.json") == want:
                return path
        except (OSError, ValueError):
            continue
    return None

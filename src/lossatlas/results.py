"""Run folders: ``runs/<experiment>/<id>/`` with config, environment, metrics, arrays, figures.

A run is written into a hidden ``.<id>.partial`` folder and renamed to ``<id>``
only when everything succeeded, so a failed run never leaves a folder that looks
complete (the partial folder is removed on failure). A run killed outright (kill -9,
power loss) leaves its partial folder with ``owner.json`` (pid, host) and its
``checkpoints/``; :func:`new_run` with ``resume=True`` continues it,
:func:`list_partial` / :func:`clean_partial` list and remove such stale folders.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import time
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

COMPLETE_MARKER = "COMPLETE"
OWNER_FILE = "owner.json"
CHECKPOINTS = "checkpoints"  # lossatlas.checkpoint writes call-<i>/ folders here


def _jsonable(obj: Any):
    """Plain JSON values: non-finite floats (Python or numpy, alone or inside arrays) -> None,
    numpy scalars/arrays -> numbers/lists, Path -> str, tuple/set -> list."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        try:
            obj = sorted(obj)
        except TypeError:
            obj = list(obj)
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        arr = np.asarray(obj)
        return _jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON (see :func:`_jsonable`; NaN/Inf become null, never bare NaN)."""
    Path(path).write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")


def git_commit(start: Path | None = None) -> str | None:
    """The git commit of the source tree (with ``-dirty`` if modified), or None."""
    start = Path(start or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True,
                              timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=start,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _dist_version(module: str) -> str:
    """The installed distribution's version of a module without ``__version__`` (e.g. mnist1d)."""
    from importlib import metadata
    try:
        return metadata.version({"sklearn": "scikit-learn"}.get(module, module))
    except metadata.PackageNotFoundError:
        return "unknown"


def environment() -> dict:
    """Versions, device and commit, for reproducibility."""
    import jax
    versions = {"python": sys.version.split()[0]}
    for mod in ("jax", "jaxlib", "flax", "optax", "chex", "numpy", "matplotlib", "sklearn", "mnist1d"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", None) or _dist_version(mod)
        except ImportError:
            versions[mod] = None
    devices = jax.devices()
    return {
        "versions": versions,
        "backend": jax.default_backend(),
        "devices": [str(getattr(d, "device_kind", d)) for d in devices],
        "device_count": len(devices),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        # compile settings (lossatlas.settings): a chaotic run can land differently under others
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "compilation_cache": jax.config.jax_compilation_cache_dir,
        "git_commit": git_commit(),
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def benchmark_record(name: str) -> dict:
    """The header every ``benchmarks/*.py`` JSON starts with: name, backend, device, host, environment."""
    import jax
    dev = jax.devices()[0]
    return {"benchmark": name, "backend": jax.default_backend(), "device": str(getattr(dev, "device_kind", dev)),
            "num_devices": len(jax.devices()), "host": platform.node(), "environment": environment()}


def write_report(path, record: dict) -> None:
    """Write a benchmark record as indented JSON (parent folders created) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table from a list of dicts (floats to 4 significant digits)."""
    if not rows:
        return "(empty table)\n"
    columns = columns or list(rows[0])

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class Run:
    """A run folder being written. Use through :func:`new_run`."""

    experiment: str
    run_id: str
    path: Path  # where files go now (the partial folder until the run completes)
    final_path: Path

    def write_json(self, name: str, obj: Any) -> Path:
        p = self.path / name
        write_json(p, obj)
        return p

    def save_arrays(self, arrays: Mapping[str, Any], name: str = "arrays.npz") -> Path:
        """Save a flat or nested dict of arrays (nested keys joined with '/')."""
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
        out = []
        for ext in ("png", "pdf"):
            p = self.path / f"{name}.{ext}"
            fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
            out.append(p)
        return out

    def write_table(self, rows: list[dict], name: str = "table", columns: list[str] | None = None,
                    title: str | None = None) -> Path:
        """Write ``name.md`` (Markdown, shown by ``lossatlas show``) and ``name.csv``."""
        columns = columns or (list(rows[0]) if rows else [])
        text = (f"## {title}\n\n" if title else "") + format_table(rows, columns)
        p = self.path / f"{name}.md"
        p.write_text(text)
        with open(self.path / f"{name}.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({c: _jsonable(r.get(c, "")) for c in columns})
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
        diff = _config_mismatch(read_json(partial / "config.json"), _jsonable(config))
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
    return (Path(path) / COMPLETE_MARKER).exists()


def load_arrays(path: str | os.PathLike, name: str = "arrays.npz") -> dict[str, np.ndarray]:
    with np.load(Path(path) / name) as z:
        return {k: z[k] for k in z.files}


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: corrupt file (not UTF-8 text: {err.reason} at byte {err.start})") from err


def _partial_run_id(name: str) -> str:
    """The run id of a partial folder's name (``.ID.partial`` -> ``ID``; other names unchanged)."""
    return name[1:-len(".partial")] if name.startswith(".") and name.endswith(".partial") else name


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file's content; ValueError naming the file when it is not valid JSON."""
    path = Path(path)
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt JSON ({err.msg} at line {err.lineno} column {err.colno})") from err


def _check_records(path: Path) -> list[dict]:
    """``checks.json`` as a list of records with ``name``, ``passed`` and ``detail``."""
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
        parts.append(_read_text(md).rstrip())
    checks = path / "checks.json"
    if checks.exists():
        items = _check_records(checks)
        from lossatlas.checks import label
        lines = ["## checks"] + [f"- [{label(c)}] {c['name']}: {c['detail']}" for c in items]
        parts.append("\n".join(lines))
    figs = sorted(p.name for p in path.glob("*.png"))
    if figs:
        parts.append("figures: " + ", ".join(figs))
    return "\n\n".join(parts) + "\n"


def iter_runs(out_dir: str | os.PathLike, experiment: str) -> Iterable[Path]:
    root = Path(out_dir) / experiment
    return sorted(p for p in root.iterdir() if p.is_dir() and is_complete(p)) if root.exists() else []


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

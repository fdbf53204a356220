"""Checkpoint and resume for long runs, and their progress bars.

A compiled program that runs in equal chunks (epochs of :meth:`lossatlas.train.engine.Program.execute`,
tasks of :func:`lossatlas.continual.run_stream`) goes through :func:`run_chunks`. Inside a
:func:`checkpointing` context (the runner enters one around ``module.run``), every such call gets
a sequential index ``i`` and saves ``(state after chunk k, outputs of chunks 1..k)`` to
``DIR/checkpoints/call-<i>/state.npz`` every ``every`` chunks and after its last chunk, atomically
(a temporary file in the same folder, then ``os.replace``; a crash mid-write leaves the previous
checkpoint readable). With ``resume=True`` a call whose file says all chunks are done returns the
saved result without computing; a call that was interrupted continues after its last saved chunk;
later calls run normally. Everything an experiment does between calls is deterministic and simply
runs again.

Each file carries a fingerprint of its call (config, data digest, keys, grid, chunking); a
resumed call with a different fingerprint raises a ``ValueError`` naming the fields that differ.

Numbers: the chunk size comes from the config only (never from timing), keys live in the state
and shuffles come from ``fold_in(key, epoch)``, so a resumed run is bitwise identical to an
uninterrupted *chunked* run on the same machine. Chunked and fused (one ``jit`` for the whole
run) programs differ only by floating-point reassociation across the chunk boundaries.
Saving and progress bars only read finished arrays; they never change numbers.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_EVERY = 5
STATE_FILE = "state.npz"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("lossatlas_checkpointing", default=None)


@dataclasses.dataclass
class Session:
    """What :func:`checkpointing` activates (see there); ``calls`` counts chunked calls so far."""

    directory: Path | None
    every: int
    resume: bool
    progress: bool
    calls: int = 0

    def next_call(self, fingerprint: dict) -> "Call":
        """A :class:`Call` for the next chunked program call (indices 0, 1, 2, ... in call order)."""
        index = self.calls
        self.calls += 1
        return Call(self, index, fingerprint)


@contextlib.contextmanager
def checkpointing(directory=None, *, every: int = DEFAULT_EVERY, resume: bool = False, progress: bool = False):
    """Run every chunked program call inside the block in chunks, with checkpoints and progress.

    Args:
      directory: folder that receives ``checkpoints/call-<i>/`` (None: no checkpoints, but calls
        still run chunked, so their numbers equal a checkpointed run's).
      every: save every this many chunks (and always after the last chunk); 0 disables saving.
      resume: load the saved calls under ``directory`` (see the module docstring).
      progress: show a tqdm bar (units done, elapsed, ETA) per call on stderr.

    Yields:
      The active :class:`Session`.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"checkpoint every must be an integer >= 0 (0 disables checkpoints), got {every!r}")
    session = Session(Path(directory) if directory is not None else None, every, bool(resume), bool(progress))
    token = _ACTIVE.set(session)
    try:
        yield session
    finally:
        _ACTIVE.reset(token)


def active() -> Session | None:
    """The session of the innermost :func:`checkpointing` block, or None."""
    return _ACTIVE.get()


# ---------------------------------------------------------------- fingerprints
def digest(*arrays) -> str:
    """SHA-1 of arrays' dtypes, shapes and bytes (typed PRNG keys by their key data)."""
    h = hashlib.sha1()
    for a in arrays:
        a = _host(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host(x) -> np.ndarray:
    return np.asarray(jax.device_get(jax.random.key_data(x) if _is_key(x) else x))


def _fingerprint_hash(fingerprint: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- files
def _flatten_outputs(tree, prefix="") -> dict[str, Any]:
    """Nested dicts of arrays -> ``{"a/b": array}`` (the outputs a chunked call accumulates)."""
    flat = {}
    for k, v in tree.items():
        name = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            flat.update(_flatten_outputs(v, name))
        else:
            flat[name] = v
    return flat


def _unflatten_outputs(flat: dict) -> dict:
    out: dict = {}
    for name, v in flat.items():
        node, parts = out, name.split("/")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


def atomic_savez(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file in the same folder, fsync, then ``os.replace`` onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


class Call:
    """One chunked program call's checkpoint folder ``DIR/checkpoints/call-<index>/``."""

    def __init__(self, session: Session, index: int, fingerprint: dict):
        self.session, self.index, self.fingerprint = session, index, fingerprint
        self.hash = _fingerprint_hash(fingerprint)
        self.path = (session.directory / CHECKPOINT_DIR / f"call-{index:04d}") if session.directory else None

    @property
    def saving(self) -> bool:
        return self.path is not None and self.session.every > 0

    def due(self, done: int, total: int) -> bool:
        """Whether to save after ``done`` of ``total`` chunks."""
        return self.saving and (done == total or done % self.session.every == 0)

    def save(self, done: int, total: int, state, outputs: dict, meta: dict) -> None:
        """Write the state after ``done`` chunks and the outputs so far (host copies), atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        arrays = {"__done__": np.asarray(done), "__total__": np.asarray(total),
                  "__hash__": np.asarray(self.hash),
                  "__fingerprint__": np.asarray(json.dumps(self.fingerprint, sort_keys=True, default=str))}
        for i, leaf in enumerate(jax.tree_util.tree_leaves(state)):
            arrays[f"state/{i}"] = _host(leaf)
        for name, leaf in _flatten_outputs(outputs).items():
            arrays[f"out/{name}"] = _host(leaf)
        atomic_savez(self.path / STATE_FILE, arrays)
        info = dict(meta, call=self.index, chunks_done=done, chunks_total=total,
                    time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        _atomic_write_text(self.path / META_FILE, json.dumps(info) + "\n")  # for `lossatlas show` only

    def load(self, template):
        """``(done, state, outputs)`` from the saved file, or None when there is none.

        Args:
          template: a freshly initialised state: its tree structure, shapes, dtypes and
            shardings are those the saved leaves are restored into.

        Raises:
          ValueError: the file was written by a different call (fingerprint) or state layout.
        """
        if self.path is None or not (self.path / STATE_FILE).exists():
            return None
        with np.load(self.path / STATE_FILE) as z:
            if str(z["__hash__"]) != self.hash:
                saved = json.loads(str(z["__fingerprint__"]))
                fields = sorted(k for k in set(saved) | set(self.fingerprint)
                                if json.dumps(saved.get(k), default=str, sort_keys=True)
                                != json.dumps(self.fingerprint.get(k), default=str, sort_keys=True))
                raise ValueError(f"cannot resume: checkpoint {self.path} was written by a different call "
                                 f"(differs in: {', '.join(fields) or 'fingerprint'}); the code, data or config "
                                 f"changed since the run started, so start a new run instead of --resume")
            done = int(z["__done__"])
            leaves, treedef = jax.tree_util.tree_flatten(template)
            saved = [z[f"state/{i}"] for i in range(sum(k.startswith("state/") for k in z.files))]
            outputs = _unflatten_outputs({k[4:]: z[k] for k in z.files if k.startswith("out/")})
        if len(saved) != len(leaves):
            raise ValueError(f"cannot resume: checkpoint {self.path} holds {len(saved)} state arrays, the program "
                             f"has {len(leaves)}; start a new run instead of --resume")
        restored = []
        for i, (new, old) in enumerate(zip(saved, leaves)):
            shape = tuple(jax.random.key_data(old).shape if _is_key(old) else old.shape)
            dtype = jax.random.key_data(old).dtype if _is_key(old) else old.dtype
            if new.shape != shape or new.dtype != dtype:
                raise ValueError(f"cannot resume: state array {i} in {self.path} is {new.dtype}{list(new.shape)}, "
                                 f"the program's is {dtype}{list(shape)}; start a new run instead of --resume")
            # same placement as the fresh state: committed leaves keep their sharding, others stay free
            sharding = old.sharding if getattr(old, "committed", False) else None
            if _is_key(old):
                leaf = jax.random.wrap_key_data(jax.device_put(new, sharding), impl=jax.random.key_impl(old))
            else:
                leaf = jax.device_put(new, sharding)
            restored.append(leaf)
        return done, jax.tree_util.tree_unflatten(treedef, restored), outputs


# ---------------------------------------------------------------- the chunk loop
def concat_chunks(parts: list, axis: int, last: tuple = ("diverged_at",)) -> dict:
    """Chunk outputs (dicts of array pytrees) joined along ``axis``; the keys in ``last``
    (per-run values such as ``diverged_at``) are taken from the last chunk."""
    out = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=axis),
                                 *[{k: v for k, v in p.items() if k not in last} for p in parts])
    return dict(out, **{k: jnp.asarray(parts[-1][k]) for k in last if k in parts[-1]})


def run_chunks(*, fingerprint: dict, init: Callable[[], Any], step: Callable[[Any], tuple[Any, dict]],
               num_chunks: int, units_per_chunk: int, concat: Callable[[list], dict], unit: str = "chunk",
               desc: str = "", postfix: Callable[[dict], dict] | None = None, progress: bool = False):
    """Run ``step`` ``num_chunks`` times from ``init()``, with checkpoints and a progress bar.

    Chunk ``k + 1`` is dispatched before chunk ``k`` is reported or saved, so the device keeps
    working while the host waits for a finished chunk.

    Args:
      fingerprint: JSON-able description of the call (config, data digest, keys, chunking), or
        a function returning it (called only when the session has a checkpoint folder); a
        resumed call must match it.
      init: ``() -> state`` (cheap; on resume it gives the structure and shardings to restore into).
      step: ``state -> (state, outputs)`` for one chunk; ``outputs`` is a nested dict of arrays.
      num_chunks: chunks in the whole call.
      units_per_chunk: epochs or tasks per chunk (for the progress bar).
      concat: list of chunk outputs (or of concatenations of them) -> their concatenation.
      unit, desc: progress bar unit and label.
      postfix: finished chunk outputs -> values shown beside the bar.
      progress: show a bar even without an active session that asks for it.

    Returns:
      ``(final state, concat(all chunk outputs))``.
    """
    session = active()
    if callable(fingerprint):  # computed only when something is saved or loaded (it hashes the data)
        fingerprint = fingerprint() if session is not None and session.directory is not None else {}
    call = session.next_call(fingerprint) if session is not None else None
    show = progress or (session is not None and session.progress)
    state, done, parts = init(), 0, []
    if call is not None and session.resume:
        saved = call.load(state)
        if saved is not None:
            done, state, outputs = saved
            parts.append(outputs)
    label = desc or "run"
    if call is not None:
        label = f"[{call.index}] {label}"
    meta = {"desc": desc, "unit": unit, "units_per_chunk": units_per_chunk}
    from tqdm.auto import tqdm

    cols, rows = shutil.get_terminal_size()  # 80 x 24 where the terminal reports 0 x 0
    with tqdm(total=num_chunks * units_per_chunk, initial=done * units_per_chunk, desc=label, unit=unit,
              disable=not show, ncols=cols, nrows=rows) as bar:
        def finish(k, st, n_parts):  # waits for chunk k only
            if show:
                if postfix is not None:
                    bar.set_postfix(postfix(parts[n_parts - 1]), refresh=False)
                bar.update(units_per_chunk)
            if call is not None and call.due(k, num_chunks):
                call.save(k, num_chunks, st, concat(parts[:n_parts]), meta)

        pending = None
        for k in range(done, num_chunks):
            state, out = step(state)  # dispatched asynchronously
            parts.append(out)
            if pending is not None:
                finish(*pending)
            pending = (k + 1, state, len(parts))
        if pending is not None:
            finish(*pending)
    return state, concat(parts)


__all__ = ["DEFAULT_EVERY", "Call", "Session", "active", "atomic_savez", "checkpointing", "digest", "run_chunks"]

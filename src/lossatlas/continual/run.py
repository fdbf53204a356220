"""``run_stream``: streams x strategy members x lambdas x seeds as one compiled program.

The single run is :meth:`lossatlas.continual.program.StreamProgram.run`; this module vmaps
it over seeds and over a flat axis of (member, lambda) points (both sharded over the devices,
``lossatlas.devices``), and over same-shaped streams (data), estimates its memory first
(``lossatlas.memory``) and, inside a :func:`lossatlas.checkpoint.checkpointing` block, runs it
one task at a time with checkpoints.
"""
from __future__ import annotations

import functools
import numbers
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import checkpoint, devices, keys as keys_lib, memory
from lossatlas.continual.config import StreamConfig
from lossatlas.continual.program import StreamProgram, host_data, program
from lossatlas.continual.streams import Stream
from lossatlas.continual.strategies import Strategy

__all__ = ["run_stream"]

#: What a user can lower when a stream program does not fit in memory.
MEMORY_HINT = ("seeds, the number of lambdas / members / streams, batch_size, the model's width, the test set "
               "(Stream.subset) or the strategy's chunk/memory sizes (e.g. ewc(chunk_size=...), fisher_examples, "
               "replay memory)")


def _check_lams(lams, strategy: Strategy | None = None, where: str = "lams") -> np.ndarray:
    """``lams`` as float32 ``[L]``; ValueError for a bad value, or for several values when
    ``strategy`` ignores lambda (a silent grid of identical runs; as ``sweep`` refuses an
    unused grid field)."""
    if isinstance(lams, (str, bytes)) or not hasattr(lams, "__len__") or len(lams) == 0:
        raise ValueError(f"run_stream: {where} must be a non-empty list of numbers >= 0, got {lams!r}")
    out = []
    for i, v in enumerate(lams):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
            raise ValueError(f"run_stream: {where}[{i}] must be a finite number >= 0, got {v!r}")
        out.append(float(v))
    if strategy is not None and not strategy.uses_lam and len(out) > 1:
        from lossatlas.continual.strategies import STRATEGIES
        users = [n for n, make in STRATEGIES.items() if make().uses_lam]
        raise ValueError(f"run_stream: {where} ({len(out)} values) has no effect with strategy {strategy.name!r}; "
                         f"it is used by {', '.join(users)} (pass one value or none)")
    return np.asarray(out, np.float32)


def _points(strategy: Strategy, lams):
    """``(member [P], lam [P], shape, lams_out)``: the flat (member, lambda) axis and how to unflatten it."""
    if not strategy.members:
        lam = _check_lams([strategy.lam] if lams is None else lams, strategy)
        return np.zeros(len(lam), np.int32), lam, (len(lam),), lam
    labels = [lb for lb, _ in strategy.members]
    if lams is None:
        lams = {lb: [s.lam] for lb, s in strategy.members}
    if isinstance(lams, Mapping):
        if set(lams) != set(labels):
            raise ValueError(f"run_stream: lams must give a list for every member {labels}, got keys {sorted(lams)}")
        per = [_check_lams(lams[lb], s, f"lams[{lb!r}]") for lb, s in strategy.members]
        member = np.concatenate([np.full(len(v), i, np.int32) for i, v in enumerate(per)])
        lam = np.concatenate(per)
        return member, lam, (len(lam),), lam
    lam = _check_lams(lams, strategy)
    m = len(labels)
    return (np.repeat(np.arange(m, dtype=np.int32), len(lam)), np.tile(lam, m), (m, len(lam)), lam)


def _streams(stream, what: str) -> list[Stream]:
    many = isinstance(stream, (list, tuple))
    out = list(stream) if many else [stream]
    if not out:
        raise ValueError(f"run_stream: {what} must be a Stream or a non-empty list of Streams, got []")
    for i, s in enumerate(out):
        if not isinstance(s, Stream):
            raise ValueError(f"run_stream: {what}{f'[{i}]' if many else ''} must be a lossatlas.continual.Stream, "
                             f"got {type(s).__name__}")
    ref = out[0]
    for i, s in enumerate(out[1:], 1):
        if (s.x_train.shape, s.x_test.shape, s.masks.shape) != (ref.x_train.shape, ref.x_test.shape, ref.masks.shape):
            raise ValueError(f"run_stream: {what}[{i}] must have the shapes of {what}[0] (x_train {ref.x_train.shape}, "
                             f"x_test {ref.x_test.shape}, masks {ref.masks.shape}); got {s.x_train.shape}, "
                             f"{s.x_test.shape}, {s.masks.shape} (see Stream.subset)")
    return out


_DATA: dict = {}


def _device_data(streams, vals, mesh) -> dict:
    """The stacked ``[D, ...]`` data of the streams (and validation test sets), replicated (cached)."""
    cache_key = (tuple(map(id, streams)), tuple(map(id, vals or ())), mesh)
    if cache_key not in _DATA:
        if len(_DATA) > 8:
            _DATA.clear()
        rows = [host_data(s) for s in streams]
        if vals:
            rows = [dict(r, x_val=np.asarray(v.x_test, np.float32), y_val=np.asarray(v.y_test, np.int32))
                    for r, v in zip(rows, vals)]
        stacked = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *rows)
        _DATA[cache_key] = (devices.replicate(stacked, mesh), (streams, vals))  # keep the streams alive
    return _DATA[cache_key][0]


def _over_leading(f, x):
    """``vmap(f)(x)`` over the leading axis of ``x``'s leaves; a size-1 axis is indexed and re-added
    instead: every vmap level re-batches each scan body while tracing (about 0.2 s a level for a
    stream program on CPU), and one point or one stream is the common case."""
    if jax.tree_util.tree_leaves(x)[0].shape[0] == 1:
        out = f(jax.tree_util.tree_map(lambda a: a[0], x))
        return jax.tree_util.tree_map(lambda a: a[None], out)
    return jax.vmap(f)(x)


def _fused(prog: StreamProgram):
    """``jit(vmap_D(vmap_P(vmap_S(run))))``: ``(keys [S], (member, lam) [P], data [D]) -> [D, P, S, ...]``
    (a size-1 ``D`` or ``P`` axis is not vmapped, see :func:`_over_leading`)."""
    if not hasattr(prog, "_fused"):
        per_seed = jax.vmap(lambda k, pt, d: prog.run(k, pt[1], d, pt[0]), (0, None, None))

        def fused(k, pts, data):
            return _over_leading(lambda d: _over_leading(lambda pt: per_seed(k, pt, d), pts), data)
        prog._fused = jax.jit(fused)
    return prog._fused


def _chunked(prog: StreamProgram):
    """Jitted ``(start, one_task)`` over the same axes as :func:`_fused` (one compile for every task)."""
    if not hasattr(prog, "_chunked"):
        def start(k, pt, d):
            carry, out = prog.run(k, pt[1], d, pt[0], tasks=jnp.zeros((0,), jnp.int32))
            return carry, out["init_acc"]

        def one_task(carry, k, pt, d, t):
            carry, out = prog.run(k, pt[1], d, pt[0], start=carry, tasks=t)
            out.pop("init_acc")
            return carry, out

        start = jax.vmap(jax.vmap(jax.vmap(start, (0, None, None)), (None, 0, None)), (None, None, 0))
        one_task = jax.vmap(jax.vmap(jax.vmap(one_task, (0, 0, None, None, None)), (0, None, 0, None, None)),
                            (0, None, None, 0, None))
        prog._chunked = (jax.jit(start), jax.jit(one_task))
    return prog._chunked


def _sweep(prog: StreamProgram, streams, vals, keys, points) -> dict:
    """Every (stream, point, seed) member, the point and seed axes sharded over the devices (the
    seeds padded up to a multiple of the device count if the two do not split evenly)."""
    num = keys.shape[0]
    ndev = len(jax.devices())
    mesh = devices.mesh_for((points[0].shape[0], num), ("point", "seed"))
    pad = (-num) % ndev if mesh is None and 1 < ndev < num else 0  # e.g. 5 seeds on 2 devices: run 6, keep 5
    if pad:
        keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(keys[-1], 1), pad)])
        mesh = devices.mesh_for((points[0].shape[0], keys.shape[0]), ("point", "seed"))
    data = _device_data(streams, vals, mesh)
    keys = devices.shard_batch_axis(keys, mesh, 0, ("seed",))
    points = devices.shard_batch_axis(points, mesh, 0, ("point",))
    desc = f"{prog.strategy.name} x{len(streams)} streams x{points[0].shape[0]} points x{num} seeds"
    if checkpoint.active() is None:
        out = memory.run_vmapped(_fused(prog), (keys, points, data), (2, 1, 0), what=f"run_stream ({desc})",
                                 lower=MEMORY_HINT)  # estimated first: chunked over streams, points, then seeds
    else:
        out = _sweep_chunked(prog, streams, keys, points, data, mesh, desc)
    return jax.tree_util.tree_map(lambda a: a[:, :, :num], out) if pad else out


def _sweep_chunked(prog, streams, keys, points, data, mesh, desc) -> dict:
    """:func:`_sweep` one task at a time through :func:`lossatlas.checkpoint.run_chunks` (saves and
    resumes between tasks; equal to the fused program up to floating-point reassociation)."""
    start, one_task = _chunked(prog)
    strat, cfg = prog.strategy, prog.config
    fingerprint = lambda: {  # noqa: E731 -- hashes the data: only when checkpoints are written
        "kind": "stream", "config": repr(cfg), "streams": [f"{s.name}:{s.scenario}" for s in streams],
        "strategy": repr(strat.spec) if strat.spec is not None else
        f"{strat.name}:" + ",".join(getattr(f, "__qualname__", repr(f)) for f in strat[1:6]),
        "data": checkpoint.digest(*jax.tree_util.tree_leaves(jax.device_get(data))),
        "keys": checkpoint.digest(keys), "points": [np.asarray(p).tolist() for p in points]}

    def step(state):
        carry, acc0, t = state
        carry, out = one_task(carry, keys, points, data, t)
        return (carry, acc0, t + 1), out

    def init():
        carry, acc0 = devices.shard_batch_axis(start(keys, points, data), mesh, 1)  # as one_task returns them
        return carry, acc0, jnp.zeros((1,), jnp.int32)

    (_, acc0, _), out = checkpoint.run_chunks(
        fingerprint=fingerprint, init=init, step=step, num_chunks=prog.stream.num_tasks, units_per_chunk=1,
        concat=functools.partial(checkpoint.concat_chunks, axis=3), unit="task", desc=desc)
    return dict(out, init_acc=acc0)


def run_stream(stream: Stream | Sequence[Stream], strategy: Strategy, config: StreamConfig, *, key,
               seeds: int = 1, lams=None, validation: Stream | Sequence[Stream] | None = None) -> dict:
    """Train a strategy on a stream for every (lambda, seed) pair, as one compiled program.

    Seed ``i`` uses ``jax.random.split(key, seeds)[i]`` (as ``lossatlas.train.sweep``); member
    ``[l, i]`` equals ``program(stream, strategy, config).run(keys[i], lams[l], data)`` up to
    floating-point reassociation across the vmapped batch, and a one-task stream with
    :func:`~lossatlas.continual.naive` trains as ``lossatlas.train.make_train`` on that task.

    Args:
      stream: a :class:`~lossatlas.continual.Stream`, or a list of same-shaped streams (e.g.
        one per scenario): a leading ``[D]`` axis of every output, one compile.
      strategy: a :class:`~lossatlas.continual.Strategy`, or a stack of them
        (:func:`~lossatlas.continual.stack_strategies`): a member axis (see ``lams``).
      config: a :class:`~lossatlas.continual.StreamConfig`.
      key: PRNG key (required: no default key).
      seeds: number of seeds ``S >= 1``.
      lams: regularisation strengths (a vmap axis, ``L`` values); default ``[strategy.lam]``.
        Several values are refused for a strategy that ignores lambda (``strategy.uses_lam``
        False: naive, joint, replay, agem). For a stack: a list gives every member the same
        grid (axes ``[M, L]``); a mapping ``label -> list`` gives each member its own grid,
        run as one flat axis ``[P]`` (``out["member"] [P]`` says whose point it is); None gives
        each member its default lambda (flat).
      validation: streams matching ``stream`` whose test slot holds held-out validation
        examples (e.g. split from the training set): adds ``val_R`` (the accuracy matrix on
        them, computed in the same program).

    Returns:
      A dict of numpy arrays with leading axes ``[D?, M?, L, S]`` (``D`` only for a list of
      streams; ``[M, L]`` or ``[P]`` for a stack): ``R [.., T, T]`` (accuracy on task j after
      training task i), ``init_acc [.., T]``, ``loss [.., T * steps_per_task]`` (training
      objective per step), ``diverged_at [..]`` (the global step whose loss, gradient or
      parameters first became NaN/Inf, -1 if never: that member is frozen at its last finite
      state and its later ``loss``, ``R`` rows and ``curves`` are NaN; ``summarize`` reports
      it as diverged), ``curves [.., T * num_blocks, T]`` and ``curve_steps [T * num_blocks]``
      when ``config.eval_every > 0``, ``val_R`` with ``validation``, ``params`` (leading
      ``[.., T]``) with ``config.keep_params``; and ``lams`` (``[L]``, or ``[P]`` flat),
      ``members`` (labels, for a stack), ``member [P]`` (flat stacks), ``steps_per_task``.

      The program's memory is estimated before it runs (``lossatlas.memory``): if it would not
      fit, the stream, point and seed axes run in equal chunks with the same numbers; if one
      member does not fit either, a one-line ``MemoryLimitError`` says what to lower.
    """
    keys_lib.require_key("run_stream", key)
    if isinstance(seeds, (bool, np.bool_)) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ValueError(f"run_stream: seeds must be a positive integer, got {seeds!r}")
    streams = _streams(stream, "stream")
    vals = None
    if validation is not None:
        vals = _streams(validation, "validation")
        if len(vals) != len(streams) or any(v.num_tasks != streams[0].num_tasks or v.masks.shape != streams[0].masks.shape
                                            for v in vals):
            raise ValueError(f"run_stream: validation must match stream ({len(streams)} streams of "
                             f"{streams[0].num_tasks} tasks), got {len(vals)} of {vals[0].num_tasks}")
    if not isinstance(strategy, Strategy):
        raise ValueError(f"run_stream: strategy must be a lossatlas.continual.Strategy, got {type(strategy).__name__}")
    member, lam, shape, lams_out = _points(strategy, lams)
    prog = program(streams[0], strategy, config)
    out = devices.to_host(_sweep(prog, streams, vals, jax.random.split(key, int(seeds)),
                                 (jnp.asarray(member), jnp.asarray(lam))))  # gathered on every process
    lead = (len(streams),) + shape
    out = {k: jax.tree_util.tree_map(lambda a: np.asarray(a).reshape(lead + a.shape[2:]), v) for k, v in out.items()}
    if not isinstance(stream, (list, tuple)):
        out = {k: jax.tree_util.tree_map(lambda a: a[0], v) for k, v in out.items()}
    if "curves" in out:
        sh = out["curves"].shape
        out["curves"] = out["curves"].reshape(sh[:-3] + (sh[-3] * sh[-2], sh[-1]))
        t = prog.stream.num_tasks
        out["curve_steps"] = np.arange(1, t * prog.num_blocks + 1) * prog.block
    out["lams"] = lams_out
    if strategy.members:
        out["members"] = tuple(lb for lb, _ in strategy.members)
        if len(shape) == 1:
            out["member"] = member
    out["steps_per_task"] = prog.steps_per_task
    return out

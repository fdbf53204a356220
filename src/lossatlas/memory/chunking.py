"""Planning and running a vmapped program in chunks that fit: :func:`plan`, :func:`run_vmapped`,
:func:`compile_checked`.

Part of :mod:`lossatlas.memory` (which re-exports every name here and documents the policy).
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Callable, Sequence

import jax
import numpy as np

from lossatlas import devices
from lossatlas.memory.estimates import MemoryLimitError, _platform, analyze, fmt, limit_bytes


# ------------------------------------------------------------------------------------ planner
# jitted function -> {argument signature: (compiled, Estimate | None)}; entries die with the function.
_COMPILED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
# jitted function -> signatures that :func:`compile_checked` found to fit (checked once per shape).
_FITTED: "weakref.WeakKeyDictionary[Any, set]" = weakref.WeakKeyDictionary()


def _struct(x, shape0: int | None = None):
    """``jax.ShapeDtypeStruct`` of an argument leaf (leading axis replaced by ``shape0``)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x if shape0 is None else jax.ShapeDtypeStruct((shape0,) + x.shape[1:], x.dtype, sharding=x.sharding)
    shape = tuple(np.shape(x))
    if shape0 is not None:
        shape = (shape0,) + shape[1:]
    sharding = x.sharding if _committed(x) else None
    return jax.ShapeDtypeStruct(shape, jax.dtypes.canonicalize_dtype(x.dtype), sharding=sharding)


def _committed(x) -> bool:
    """A device array placed explicitly (jit keeps its sharding; uncommitted ones may move)."""
    return isinstance(x, jax.Array) and bool(getattr(x, "committed", True))


def _signature(structs):
    leaves, treedef = jax.tree_util.tree_flatten(structs)
    return treedef, tuple((s.shape, str(s.dtype), s.sharding) for s in leaves)


def _compile(jitted, structs):
    cache = _COMPILED.setdefault(jitted, {})
    sig = _signature(structs)
    if sig not in cache:
        compiled = jitted.lower(*structs).compile()
        cache[sig] = (compiled, analyze(compiled))
    return cache[sig]


def _multiple(x) -> int:
    """How many shards split a leaf's leading axis (chunk sizes must be multiples of it)."""
    if not _committed(x) or x.ndim == 0:
        return 1
    return max(1, x.shape[0] // max(1, x.sharding.shard_shape(x.shape)[0]))


def _resident(x) -> int:
    """Bytes per device a leaf already occupies on the device (0 for host arrays)."""
    if not isinstance(x, jax.Array):
        return 0
    return int(np.prod(x.sharding.shard_shape(x.shape), dtype=np.int64)) * x.dtype.itemsize


def _num_devices(args) -> int:
    devs = set()
    for x in jax.tree_util.tree_leaves(args):
        if _committed(x):
            devs |= set(x.sharding.device_set)
    return max(1, len(devs))


def _take(x, idx: np.ndarray):
    """Rows ``idx`` of a leaf, placed with the leaf's sharding (indices past the end repeat the last row)."""
    if _committed(x):
        return jax.device_put(x[idx], x.sharding)
    return x[idx] if isinstance(x, jax.Array) else np.asarray(x)[idx]


def _gather(parts: list, axis: int):
    def cat(*xs):
        if any(jax.dtypes.issubdtype(x.dtype, jax.dtypes.extended) for x in xs):
            return jax.numpy.concatenate(xs, axis=axis)
        return np.concatenate([np.asarray(x) for x in xs], axis=axis)
    return jax.tree_util.tree_map(cat, *parts)


@dataclasses.dataclass
class Plan:
    """How :func:`run_vmapped` runs a program.

    Attributes:
      sizes: members along each vmapped axis (outermost first).
      chunks: members per chunk along each axis (``chunks == sizes``: one fused run).
      required: estimated bytes of one chunk (all devices on CPU, one device otherwise), or None.
      limit: the cap it was planned against (None: unknown).
      source: where the cap came from.
      compiles: executables compiled while planning (cached ones not counted).
    """
    sizes: tuple
    chunks: tuple
    required: float | None
    limit: float | None
    source: str
    compiles: int = 0

    @property
    def chunked(self) -> bool:
        return self.chunks != self.sizes

    @property
    def num_chunks(self) -> int:
        return int(np.prod([-(-n // c) for n, c in zip(self.sizes, self.chunks)]))


#: The plan of the most recent :func:`run_vmapped` or :func:`plan` call (for tests and reports;
#: also set just before a :class:`MemoryLimitError`).
last_plan: Plan | None = None


def plan(jitted: Callable, args: Sequence, axes: Sequence[int], *, what: str = "program", lower: str = "its size",
         sizes: Sequence[int] | None = None) -> Plan:
    """How :func:`run_vmapped` would run ``jitted(*args)``, without running it (a dry run).

    Compiles (and caches, for the run) the executables the plan needs; see :func:`run_vmapped`
    for the arguments, which may also be ``jax.ShapeDtypeStruct`` s (nothing is computed).

    Returns:
      The :class:`Plan`.

    Raises:
      MemoryLimitError: not even the smallest chunk fits.
    """
    global last_plan
    last_plan = _plan(jitted, args, axes, what, lower, sizes)[0]
    return last_plan


def run_vmapped(jitted: Callable, args: Sequence, axes: Sequence[int], *, what: str, lower: str,
                sizes: Sequence[int] | None = None):
    """Run ``jitted(*args)``, chunking its vmapped axes if XLA's estimate does not fit.

    Args:
      jitted: a ``jax.jit`` function whose outputs all carry the vmapped axes, outermost first,
        as their leading axes (``jit(vmap(vmap(f)))``).
      args: its positional arguments (pytrees of arrays).
      axes: for each vmapped axis, outermost first, the index into ``args`` of the argument
        whose leaves all carry that axis as their leading axis (e.g. ``(1, 0)`` for
        ``f(keys [S], lams [L], data) -> [L, S, ...]``).
      what: the program's name in the error message (e.g. ``"sweep"``).
      lower: what the user can lower, for the error message (e.g. ``"seeds, grid size or
        batch_size"``).
      sizes: members along each axis (default: the leading size of the argument's first leaf).

    Returns:
      The outputs of ``jitted(*args)``: device arrays when run fused, host-gathered arrays
      moved back to the default device when chunked.

    Raises:
      MemoryLimitError: not even the smallest chunk fits (the message says what to lower).
    """
    global last_plan
    last_plan, compiled, args = _plan(jitted, args, axes, what, lower, sizes)
    chunks, sizes = last_plan.chunks, last_plan.sizes
    if chunks == sizes:
        return compiled(*args)

    # chunked: every combination of chunks, outer axes first; gather on the host
    def run(k, prefix):
        if k == len(sizes):
            call = list(args)
            for (a, start), c, n in zip(prefix, chunks, sizes):
                idx = np.minimum(np.arange(start, start + c), n - 1)
                call[a] = jax.tree_util.tree_map(lambda x, idx=idx: _take(x, idx), args[a])
            return devices.to_host(compiled(*call))  # gathered across processes too
        parts = [run(k + 1, prefix + [(axes[k], s)]) for s in range(0, sizes[k], chunks[k])]
        out = _gather(parts, k)
        return jax.tree_util.tree_map(lambda x: x[(slice(None),) * k + (slice(0, sizes[k]),)], out)

    return jax.tree_util.tree_map(jax.numpy.asarray, run(0, []))


def _plan(jitted, args, axes, what, lower, sizes):
    """``(Plan, compiled executable of the chosen chunk shape, normalised args)``."""
    global last_plan
    keep = (jax.Array, np.ndarray, jax.ShapeDtypeStruct)
    args = [jax.tree_util.tree_map(lambda x: x if isinstance(x, keep) else np.asarray(x), a)
            for a in args]  # Python scalars as arrays: one signature for lowering and calling
    leaves = [jax.tree_util.tree_leaves(args[a]) for a in axes]
    if sizes is None:
        sizes = [np.shape(lv[0])[0] for lv in leaves]
    sizes = tuple(int(n) for n in sizes)
    mult = [max([_multiple(x) for x in lv] or [1]) for lv in leaves]
    device = next((next(iter(x.sharding.device_set)) for x in jax.tree_util.tree_leaves(args)
                   if _committed(x)), None)
    cap, source = limit_bytes(device)
    scale = _num_devices(args) if _platform(device) == "cpu" else 1
    batched = set(axes)
    resident_fixed = sum(_resident(x) for i, a in enumerate(args) if i not in batched
                         for x in jax.tree_util.tree_leaves(a))
    resident_all = resident_fixed + sum(_resident(x) for i in batched for x in jax.tree_util.tree_leaves(args[i]))
    compiles = [0]

    def structs(chunks):
        out = list(args)
        for a, c in zip(axes, chunks):
            out[a] = jax.tree_util.tree_map(lambda x, c=c: _struct(x, c), args[a])
        for i in range(len(out)):
            if i not in batched:
                out[i] = jax.tree_util.tree_map(_struct, args[i])
        return out

    def probe(chunks):
        """(compiled, bytes needed) for a chunk shape."""
        before = len(_COMPILED.get(jitted, {}))
        compiled, est = _compile(jitted, structs(chunks))
        compiles[0] += len(_COMPILED[jitted]) - before
        if est is None:
            return compiled, None
        resident = resident_all if tuple(chunks) == sizes else resident_fixed
        return compiled, scale * max(0, est.total - resident)

    def fits(need):
        return cap is None or need is None or need <= cap

    chunks = list(sizes)
    compiled, need = probe(chunks)
    if not fits(need) and not sizes:
        last_plan = Plan(sizes, (), need, cap, source, compiles[0])
        raise MemoryLimitError(f"{what}: needs ~{fmt(need)} but {fmt(cap)} is available ({source}); "
                               f"lower {lower}")
    if not fits(need):
        for k, n in enumerate(sizes):  # shrink the outermost axis first
            smallest = min(n, mult[k])
            chunks[k] = smallest
            compiled, need_min = probe(chunks)
            if not fits(need_min):
                if k == len(sizes) - 1:
                    last_plan = Plan(sizes, tuple(chunks), need_min, cap, source, compiles[0])
                    shape = " x ".join(f"{c} of {m}" for c, m in zip(chunks, sizes))
                    raise MemoryLimitError(
                        f"{what}: needs ~{fmt(need_min)} even in the smallest chunks ({shape} members), but "
                        f"{fmt(cap)} is available ({source}); lower {lower}")
                need = need_min  # the next axis starts from this shape
                continue
            # bytes ~ a + b * chunk: interpolate between the smallest and the full axis
            slope = (need - need_min) / max(1, n - smallest)
            best = n - 1 if slope <= 0 else smallest + int((cap - need_min) // slope)
            best = max(smallest, min(n - 1, best // mult[k] * mult[k]))
            while True:
                num = -(-n // best)  # equal chunks: as few as fit, as even as possible
                c = -(-(-(-n // num)) // mult[k]) * mult[k]
                chunks[k] = c
                compiled, need_c = probe(chunks)
                if fits(need_c) or c <= smallest:
                    need = need_c
                    break
                best = max(smallest, (c // 2) // mult[k] * mult[k])
            break
    return Plan(sizes, tuple(chunks), need, cap, source, compiles[0]), compiled, args


def compile_checked(jitted: Callable, args: Sequence, *, what: str, lower: str):
    """Compile ``jitted`` for ``args`` (cached per argument signature) and refuse it if XLA's
    estimate does not fit.

    For programs whose vmapped axes cannot be split without changing them (e.g. one chunk of
    epochs that carries every member's training state): the fit is checked once per shape,
    and the compiled executable returned is the one to call, so nothing compiles twice.

    Args:
      jitted: a ``jax.jit`` function of positional array arguments only.
      args: its arguments (arrays, placed as they will be passed).
      what, lower: for the error message (see :func:`run_vmapped`).

    Returns:
      The ``jax.stages.Compiled`` executable; call it with ``*args``.

    Raises:
      MemoryLimitError: the estimate exceeds the available memory (the message says what to lower).
    """
    args = list(args)
    structs = [jax.tree_util.tree_map(_struct, a) for a in args]
    compiled, est = _compile(jitted, structs)
    fitted = _FITTED.setdefault(jitted, set())
    sig = _signature(structs)
    if sig in fitted:  # checked when first compiled: no /proc read or estimate per chunk
        return compiled
    device = next((next(iter(x.sharding.device_set)) for x in jax.tree_util.tree_leaves(args) if _committed(x)), None)
    cap, source = limit_bytes(device)
    if est is not None and cap is not None:
        scale = _num_devices(args) if _platform(device) == "cpu" else 1
        need = scale * max(0, est.total - sum(_resident(x) for x in jax.tree_util.tree_leaves(args)))
        if need > cap:
            raise MemoryLimitError(f"{what}: needs ~{fmt(need)} but {fmt(cap)} is available ({source}); lower {lower}")
    fitted.add(sig)
    return compiled

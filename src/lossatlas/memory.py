"""Memory planning for vmapped programs: estimate before running, chunk or refuse.

A sweep is one compiled program vmapped over its members (grid points, lambdas, seeds). Its
memory grows with the number of members, so a sweep that fits at 8 seeds can exhaust the
machine at 256. Before running, :func:`run_vmapped` compiles the program ahead of time, asks
XLA's buffer assignment how much memory it needs (:func:`analyze`) and compares that with
what the device has free (:func:`limit_bytes`):

* it fits (the common case): the executable just compiled is the one that runs; nothing
  extra is compiled (``jitted(*args)`` would have compiled the same program);
* it does not fit: the vmapped axes, outermost first, are cut into equal chunks (the last
  one padded by repeating the final member, whose copies are dropped), so one executable is
  compiled per chunk shape; chunk results are gathered on the host and concatenated;
* not even one member (per device) fits: :class:`MemoryLimitError`, one line that says the
  estimate, what is available and what to lower.

Members of a vmapped program are independent, so chunked and unchunked runs give the same
numbers up to floating-point reassociation.

The cap is, in order: :func:`limit` (a context manager, for tests and scripts), the
environment variable ``LOSSATLAS_MEMORY_LIMIT`` (bytes; ``K``/``M``/``G`` suffixes and
``inf`` accepted), else ``SAFETY_FRACTION`` of the free memory: ``bytes_limit - bytes_in_use``
of an accelerator, or available system RAM on CPU (``MemAvailable``, capped by a cgroup
limit). On CPU, where several JAX devices share the RAM, the per-device estimate is
multiplied by the number of devices the program runs on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import weakref
from typing import Any, Callable, Sequence

import jax
import numpy as np

ENV_VAR = "LOSSATLAS_MEMORY_LIMIT"
#: Fraction of the free memory a program may plan to use (XLA's estimate is not exact and
#: other processes allocate too).
SAFETY_FRACTION = 0.8
_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_override: list = []


class MemoryLimitError(MemoryError, ValueError):
    """A program needs more memory than is available, even split into the smallest chunks."""


@dataclasses.dataclass(frozen=True)
class Estimate:
    """XLA's memory analysis of one compiled executable, in bytes per device.

    Attributes:
      argument, output, temp, code, alias: XLA's ``*_size_in_bytes`` fields (``alias`` is the
        output memory that reuses donated arguments).
    """
    argument: int
    output: int
    temp: int
    code: int
    alias: int

    @property
    def total(self) -> int:
        """Arguments + outputs + temporaries + generated code - aliased bytes."""
        return self.argument + self.output + self.temp + self.code - self.alias


def analyze(compiled) -> Estimate | None:
    """The memory analysis of a compiled executable (``jitted.lower(...).compile()``).

    Args:
      compiled: a ``jax.stages.Compiled``.

    Returns:
      An :class:`Estimate`, or None where the backend reports nothing.
    """
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - backends without the analysis raise various errors
        return None
    if m is None:
        return None
    if isinstance(m, (list, tuple)):  # some versions return one entry per device
        m = m[0] if m else None
        if m is None:
            return None
    get = lambda name: int(getattr(m, f"{name}_size_in_bytes", 0) or 0)  # noqa: E731
    return Estimate(get("argument"), get("output"), get("temp"), get("generated_code"), get("alias"))


def estimate(jitted: Callable, *args, **kwargs) -> int | None:
    """Bytes per device that ``jitted(*args, **kwargs)`` needs, from XLA's memory analysis.

    Args:
      jitted: a ``jax.jit``-wrapped function.
      *args, **kwargs: arrays or ``jax.ShapeDtypeStruct`` s (nothing is computed).

    Returns:
      :attr:`Estimate.total` (arguments + outputs + temporaries + code), or None where the
      backend has no memory analysis.
    """
    est = analyze(jitted.lower(*args, **kwargs).compile())
    return None if est is None else est.total


def _parse(text: str) -> float:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    suffix = t[-1] if t and t[-1] in _SUFFIX else ""
    try:
        value = float(t[: len(t) - len(suffix)]) * _SUFFIX[suffix]
    except ValueError:
        raise ValueError(f"{ENV_VAR}={text!r} is not a byte count (e.g. 4000000000, 4G or inf)") from None
    if not value > 0:
        raise ValueError(f"{ENV_VAR}={text!r} must be > 0")
    return value


def _cgroup_free() -> int | None:
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit) as f:
                lim = f.read().strip()
            with open(usage) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if lim.isdigit() and int(lim) < 2**60:
            return max(0, int(lim) - used)
    return None


def available_bytes(device=None) -> int | None:
    """Free memory of a device now, in bytes (before the safety fraction).

    Args:
      device: a JAX device (default ``jax.devices()[0]``).

    Returns:
      Accelerators: ``bytes_limit - bytes_in_use`` from ``device.memory_stats()``. CPU:
      available system RAM (``/proc/meminfo`` MemAvailable, else ``os.sysconf``), capped by a
      cgroup memory limit. None when nothing is known.
    """
    device = device or jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - not implemented on some backends
        pass
    if stats and "bytes_limit" in stats:
        return max(0, int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)))
    if device.platform != "cpu":
        return None
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    cg = _cgroup_free()
    return free if cg is None else min(free, cg)


def limit_bytes(device=None) -> tuple[float | None, str]:
    """The memory a program may use and where that number comes from.

    Args:
      device: the device the program runs on (default ``jax.devices()[0]``).

    Returns:
      ``(bytes or None, source)``: :func:`limit` if active, else ``LOSSATLAS_MEMORY_LIMIT``,
      else ``SAFETY_FRACTION`` of :func:`available_bytes` (None: unknown, never chunk).
    """
    if _override:
        return _override[-1], "memory.limit()"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _parse(env), ENV_VAR
    free = available_bytes(device)
    if free is None:
        return None, "unknown"
    return SAFETY_FRACTION * free, f"{SAFETY_FRACTION:.0%} of free {'RAM' if _platform(device) == 'cpu' else 'memory'}"


@contextlib.contextmanager
def limit(nbytes: float):
    """Within the block, plan every vmapped program against ``nbytes`` (overrides the env var).

    Args:
      nbytes: bytes (``math.inf``: never chunk).
    """
    if not (isinstance(nbytes, (int, float)) and nbytes > 0):
        raise ValueError(f"memory.limit: nbytes must be a number > 0, got {nbytes!r}")
    _override.append(float(nbytes))
    try:
        yield
    finally:
        _override.pop()


def _platform(device) -> str:
    return (device or jax.devices()[0]).platform


def fmt(nbytes: float | None) -> str:
    """Bytes as a short human string (``1.5 GiB``)."""
    if nbytes is None:
        return "unknown"
    if math.isinf(nbytes):
        return "unlimited"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


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
            return jax.device_get(compiled(*call))
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


__all__ = ["ENV_VAR", "Estimate", "MemoryLimitError", "Plan", "SAFETY_FRACTION", "analyze", "available_bytes",
           "compile_checked", "estimate", "fmt", "limit", "limit_bytes", "plan", "run_vmapped"]

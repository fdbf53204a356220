"""XLA's memory estimate of a compiled program and the memory a program may use.

Part of :mod:`lossatlas.memory` (which re-exports every name here): :func:`analyze` and
:func:`estimate` read XLA's buffer assignment; :func:`available_bytes`, :func:`limit_bytes`
and :func:`limit` say how much a program may use (see the package docstring for the order).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from typing import Callable

import jax

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

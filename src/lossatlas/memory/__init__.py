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
Layout: :mod:`lossatlas.memory.estimates` (XLA's estimate, the available memory and the cap)
and :mod:`lossatlas.memory.chunking` (the planner and the chunked run); every name is
importable from ``lossatlas.memory``.
"""
from lossatlas.memory.chunking import Plan, compile_checked, plan, run_vmapped
from lossatlas.memory.estimates import (ENV_VAR, SAFETY_FRACTION, Estimate, MemoryLimitError, analyze,
                                        available_bytes, estimate, fmt, limit, limit_bytes)


def __getattr__(name):
    # ``last_plan`` is reassigned by every plan / run (a global of ``chunking``): read it there.
    if name == "last_plan":
        from lossatlas.memory import chunking
        return chunking.last_plan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ENV_VAR", "Estimate", "MemoryLimitError", "Plan", "SAFETY_FRACTION", "analyze", "available_bytes",
           "compile_checked", "estimate", "fmt", "limit", "limit_bytes", "plan", "run_vmapped"]

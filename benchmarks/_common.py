"""What every ``benchmarks/*.py`` script writes: a JSON record with a common header.

Imported by the scripts as ``from _common import benchmark_record, write_report`` (they
run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

from lossatlas.results import environment


def benchmark_record(name: str) -> dict:
    """The header every benchmark JSON starts with.

    Args:
      name: the benchmark's name.

    Returns:
      ``{"benchmark", "backend", "device", "num_devices", "host", "environment"}``.
    """
    import jax
    dev = jax.devices()[0]
    return {"benchmark": name, "backend": jax.default_backend(), "device": str(getattr(dev, "device_kind", dev)),
            "num_devices": len(jax.devices()), "host": platform.node(), "environment": environment()}


def write_report(path, record: dict) -> None:
    """Write a benchmark record as indented JSON (parent folders created) and say where.

    Args:
      path: the JSON file.
      record: the record (plain JSON values).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")


# JAX's monitoring events that split a first call's time (see ``compile_events``).
_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace_s",
           "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
           "/jax/core/compile/backend_compile_duration": "compile_or_cache_load_s",
           "/jax/compilation_cache/cache_retrieval_time_sec": "cache_load_s"}
_SINKS: list = []


def _on_event(name, secs, **kwargs):
    key = _EVENTS.get(name)
    for sink in _SINKS:
        if key:
            sink[key] = sink.get(key, 0.0) + float(secs)
            if key == "trace_s":
                sink["programs_traced"] = sink.get("programs_traced", 0) + 1
            big = kwargs.get("fun_name", "") in ("<lambda>", "jit(<lambda>)", "fused", "jit(fused)")  # run.py's _fused
            if big and key in ("trace_s", "lower_s", "compile_or_cache_load_s"):
                sink[f"stream_program_{key}"] = sink.get(f"stream_program_{key}", 0.0) + float(secs)


_REGISTERED = []


class compile_events:
    """Context manager: sums JAX's trace / lower / compile-or-cache-load durations inside the block.

    ``with compile_events() as ev: f(x)`` leaves in ``ev`` (a dict) ``trace_s``, ``lower_s``,
    ``compile_or_cache_load_s`` (XLA compile, or the persistent-cache load on a hit),
    ``cache_load_s``, ``programs_traced`` (every jitted function traced, eager ops included) and
    the same three durations of the stream program alone (``stream_program_*``).
    """

    def __enter__(self) -> dict:
        import jax.monitoring
        if not _REGISTERED:
            jax.monitoring.register_event_duration_secs_listener(_on_event)
            _REGISTERED.append(True)
        self.sink: dict = {}
        _SINKS.append(self.sink)
        return self.sink

    def __exit__(self, *exc):
        _SINKS.remove(self.sink)
        return False

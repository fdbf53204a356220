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

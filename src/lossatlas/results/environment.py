"""What a run ran on: versions, devices, compile settings and the git commit."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path


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

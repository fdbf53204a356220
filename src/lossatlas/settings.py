"""Process-wide JAX settings shared by the command line and the test suite.

One place decides how programs are compiled, so that ``lossatlas run NAME --quick`` and
the test that asserts NAME's quick checks run the *same* compiled programs (a chaotic
training run can land differently under other compile flags):

- every CPU core is a JAX device (:func:`lossatlas.devices.use_all_cpu_cores`), so seed
  axes shard over cores;
- quick runs compile at LLVM optimisation level 1 (``QUICK_XLA_FLAGS``): quick configs
  are compile-bound, level 1 compiles about a third faster, and XLA's HLO passes are
  unchanged; numbers can differ from level 3 in the last bits, which is why tests and
  the CLI share the setting. Quick runs also use full-float32 matmuls
  (``jax_default_matmul_precision="highest"``; GPUs otherwise use TF32 passes). Full runs
  keep XLA's and JAX's defaults;
- JAX's persistent compilation cache (on by default for the CLI; see
  :func:`enable_compilation_cache`) so a second run of the same program skips its
  compile.

Everything here must run before JAX initialises its backends (before the first
computation); afterwards flag changes have no effect, and :func:`configure` says so.
"""
from __future__ import annotations

import os
from pathlib import Path

from lossatlas import devices

#: XLA flags of quick runs (CLI ``--quick`` and the test suite).
QUICK_XLA_FLAGS = ("--xla_backend_optimization_level=1",)
#: Environment variable naming the compilation-cache folder; "0", "off" or "" disables it.
CACHE_ENV = "LOSSATLAS_COMPILATION_CACHE"
#: Default compilation-cache folder.
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lossatlas" / "jax"
#: Programs that compile faster than this are not written to the cache (JAX's own default is 1 s).
CACHE_MIN_COMPILE_SECONDS = 0.2


def enable_x64():
    """Context manager for 64-bit JAX inside a block (``with settings.enable_x64(): ...``), e.g. for
    gradient checks against finite differences or gradient norms too small for float32.

    Uses ``jax.enable_x64(True)`` where it exists, else ``jax.experimental.enable_x64`` (JAX < 0.7).
    """
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as _enable  # JAX < 0.7

    return _enable()


def _add_xla_flags(flags) -> list[str]:
    """Append flags to ``XLA_FLAGS`` unless the same option is already set there (an explicit
    user setting wins). Returns the flags added."""
    current = os.environ.get("XLA_FLAGS", "")
    added = [f for f in flags if f.split("=", 1)[0] not in current]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added


def _backends_initialised() -> bool:
    try:
        from jax._src import xla_bridge
        return bool(getattr(xla_bridge, "_backends", {}))
    except Exception:  # noqa: BLE001 -- private detail of JAX; assume not initialised
        return False


def _host_tag() -> str:
    """A short tag of this host's CPU (model and instruction-set flags) and jaxlib version."""
    import hashlib
    import platform

    import jaxlib

    text = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features")):
                    text += line
                if line.strip() == "":
                    break  # the first processor's block describes them all
    except OSError:
        text += platform.processor()
    text += getattr(jaxlib, "__version__", "")
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cache_dir_from_env(default: Path | None = DEFAULT_CACHE_DIR) -> Path | None:
    """The compilation-cache folder from ``LOSSATLAS_COMPILATION_CACHE`` (None = disabled)."""
    value = os.environ.get(CACHE_ENV)
    if value is None:
        return default
    if value.strip().lower() in ("", "0", "off", "false", "no", "none"):
        return None
    return Path(value).expanduser()


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``path``.

    Args:
      path: cache folder (created if missing); default: ``LOSSATLAS_COMPILATION_CACHE``
        or ``~/.cache/lossatlas/jax``. If the folder cannot be created the cache stays
        off (a cache is an optimisation, never a reason to fail a run).

    Returns:
      The folder in use, or None when the cache is off.
    """
    import jax

    folder = Path(path).expanduser() if path is not None else cache_dir_from_env()
    if folder is None:
        return None
    # One sub-folder per host CPU and jaxlib version: a cached XLA:CPU executable holds
    # machine code for the CPU that compiled it, so a home folder shared by other machines
    # must never hand it to another CPU.
    folder = folder / _host_tag()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    # (XLA's C++ log level, which would otherwise print a line per cache load on some
    # CPUs, is set in lossatlas/__init__.py: it must be set before jaxlib loads.)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def configure(*, quick: bool, cache: bool = True, cache_path: str | os.PathLike | None = None) -> dict:
    """Apply the shared compile settings; call once, before the first JAX computation.

    Args:
      quick: quick-mode compile flags (``QUICK_XLA_FLAGS``) as well.
      cache: enable the persistent compilation cache (:func:`enable_compilation_cache`).
      cache_path: its folder (default from the environment, see :func:`cache_dir_from_env`).

    Returns:
      ``{"xla_flags": XLA_FLAGS after the change, "cache_dir": str or None, "applied": bool}``;
      ``applied`` is False when JAX's backends had already started (e.g. a second CLI call in
      one process), in which case the flags in force are left as they are.
    """
    import jax

    applied = not _backends_initialised()
    if applied:
        devices.use_all_cpu_cores()
        if quick:
            _add_xla_flags(QUICK_XLA_FLAGS)
            jax.config.update("jax_default_matmul_precision", "highest")
    folder = enable_compilation_cache(cache_path) if cache else None
    return {"xla_flags": os.environ.get("XLA_FLAGS", ""), "applied": applied,
            "cache_dir": None if folder is None else str(folder)}

"""Small shims over JAX API moves, so lossatlas runs on the JAX versions it supports."""
from __future__ import annotations

import jax


def enable_x64():
    """Context manager turning on 64-bit JAX (``jax.enable_x64(True)``, formerly in jax.experimental)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as _enable  # JAX < 0.7

    return _enable()

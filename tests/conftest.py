"""Shared fixtures. Tests run with rank promotion disallowed (equinox's habit)."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Full float32 matmuls on GPU/TPU too (their default is TF32/bf16 passes), so equality checks
# between differently-compiled programs (scan vs loop, vmap vs single) mean the same everywhere.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture(scope="session")
def mnist1d():
    from lossatlas import data
    return data.load("mnist1d")


@pytest.fixture(scope="session")
def digits():
    from lossatlas import data
    return data.load("digits")

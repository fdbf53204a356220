"""Shared fixtures. Tests run with rank promotion disallowed (equinox's habit)."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

from lossatlas import devices  # noqa: E402

# Every CPU core is a JAX device, as under the CLI, so sweeps shard their seed axis
# (and the tests exercise that path) wherever the machine has more than one core.
devices.use_all_cpu_cores()

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

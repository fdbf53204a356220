"""Shared fixtures. Tests run with rank promotion disallowed (equinox's habit)."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The suite is dominated by compiling many small programs: a lower LLVM optimisation level
# compiles ~1/3 faster and changes no results (XLA's HLO passes are untouched). An explicit
# --xla_backend_optimization_level in XLA_FLAGS wins.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

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


@pytest.fixture(scope="session")
def run_quick(tmp_path_factory):
    """``run_quick(name, **overrides) -> (run_dir, results, {check name: check}, cfg)``.

    Runs an experiment's ``--quick`` config (plus overrides) through the real runner into a
    temporary results folder, exactly as ``lossatlas run NAME --quick`` does.
    """
    from lossatlas import runner

    def run(name, **overrides):
        module = runner.get_experiment(name)
        cfg = runner.make_config(module, quick=True, overrides=overrides or None)
        path, res, checks = runner.run_experiment(name, cfg, quick=True, out_dir=tmp_path_factory.mktemp("runs"))
        return path, res, {c["name"]: c for c in checks}, cfg

    return run

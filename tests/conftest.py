"""Shared fixtures. Tests run with rank promotion disallowed (equinox's habit)."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The same compile settings as `lossatlas run NAME --quick` (lossatlas.settings): every CPU
# core a device, LLVM optimisation level 1 (the suite is compile-bound), and JAX's persistent
# compilation cache (LOSSATLAS_COMPILATION_CACHE=off disables it). A quick check asserted here
# therefore sees the numbers the CLI's quick run sees.
from lossatlas import settings  # noqa: E402

settings.configure(quick=True)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# settings.configure(quick=True) also sets full float32 matmuls on GPU/TPU (their default is
# TF32/bf16 passes), so equality checks between differently-compiled programs (scan vs loop,
# vmap vs single) mean the same everywhere.


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
    from lossatlas_experiments import REGISTRY

    def run(name, **overrides):
        module = REGISTRY.get(name)
        cfg = runner.make_config(module, quick=True, overrides=overrides or None)
        path, res, checks = runner.run_experiment(REGISTRY, name, cfg, quick=True,
                                                  out_dir=tmp_path_factory.mktemp("runs"))
        return path, res, {c["name"]: c for c in checks}, cfg

    return run

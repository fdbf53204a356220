"""Shared fixtures. Tests run with rank promotion disallowed (equinox's habit)."""
import contextlib
import fcntl
import os
import pathlib

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


def _experiment_files() -> dict:
    """``{experiment: test file}``: the test file whose tests run that experiment's quick config."""
    import re
    out = {"mnist1d_benchmark": "tests/test_cli_results.py"}
    for f in sorted(pathlib.Path(__file__).parent.glob("test_exp_*.py")):
        for m in re.findall(r'run_quick\("(\w+)"|^NAME = "(\w+)"', f.read_text(), re.M):
            out.setdefault(m[0] or m[1], f"tests/{f.name}")
    return out


@pytest.hookimpl(optionalhook=True)  # an xdist hook: no error when xdist is not loaded
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (every test file on one worker), except that the registry test of an
    experiment goes to the worker of the test file that runs that experiment, so each shared
    quick run is made and read on one worker and no worker waits on the other's lock.
    (``--dist loadgroup`` would say this with markers, but xdist 3.8 cannot set groups under
    pytest 9.2.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    files = _experiment_files()

    class ByExperimentFile(LoadFileScheduling):
        def _split_scope(self, nodeid):
            path, _, rest = nodeid.partition("::")
            if path.endswith("test_registry_quick_runs.py") and rest.endswith("]"):
                return files.get(rest[rest.index("[") + 1:-1], path)
            return path

    return ByExperimentFile(config, log)


#: The config each experiment's quick test runs: ``--quick`` plus these overrides (kept small
#: where the quick config itself times many sizes). The registry test and the experiment's own
#: test file share that one run.
TEST_OVERRIDES = {
    "backprop_vs_finite_differences": {"widths": (4, 16, 32, 64), "repeats": 1, "exact_up_to": 2000},
}


def _shared_root(tmp_path_factory):
    """A folder every xdist worker of this session sees (the workers' base temp's parent)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if base.name.startswith("popen-gw") else base) / "quick-runs"
    root.mkdir(exist_ok=True)
    return root


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def shared_quick(tmp_path_factory):
    """``shared_quick(name, produce) -> run folder``: ``produce(out_dir) -> run folder`` runs once
    per session across every xdist worker (a file lock per experiment); later callers, in any
    worker, get the folder the first one wrote."""
    root = _shared_root(tmp_path_factory)

    def get(name, produce):
        marker = root / f"{name}.path"
        with _locked(root / f"{name}.lock"):
            if marker.exists():
                return pathlib.Path(marker.read_text())
            path = pathlib.Path(produce(root / name))
            marker.write_text(str(path))
            return path

    return get


@pytest.fixture(scope="session")
def run_quick(tmp_path_factory, shared_quick):
    """``run_quick(name, **overrides) -> (run_dir, results, {check name: check}, cfg)``.

    Runs an experiment's ``--quick`` config (plus overrides) through the real runner into a
    temporary results folder, exactly as ``lossatlas run NAME --quick`` does. Without overrides
    (beyond :data:`TEST_OVERRIDES`) the run is shared by every test of the session, in every
    worker: the first caller runs it, the others read its folder back (the runner itself
    returns the results read back from the folder, so both see the same values).
    """
    from lossatlas import checks as checks_lib
    from lossatlas import results, runner
    from lossatlas_experiments import REGISTRY

    def execute(name, overrides, out_dir):
        module = REGISTRY.get(name)
        cfg = runner.make_config(module, quick=True, overrides=overrides or None)
        return cfg, runner.run_experiment(REGISTRY, name, cfg, quick=True, out_dir=out_dir)

    def run(name, **overrides):
        if overrides:
            cfg, (path, res, checks) = execute(name, overrides, tmp_path_factory.mktemp("runs"))
            return path, res, {c["name"]: c for c in checks}, cfg
        base = TEST_OVERRIDES.get(name, {})
        path = shared_quick(name, lambda out: execute(name, base, out)[1][0])
        cfg = runner.make_config(REGISTRY.get(name), quick=True, overrides=base or None)
        checks = checks_lib.normalize(results.read_checks(path / "checks.json"))
        return path, results.load_results(path), {c["name"]: c for c in checks}, cfg

    return run

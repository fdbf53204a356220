"""Issue 12, part 4: bad input as a new user gives it. Each case must end in one line naming the
field or file and what is allowed, with the documented exit code, and leave nothing that looks
complete."""
import dataclasses
import gzip
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import jax
import numpy as np
import pytest

import lossatlas_experiments
from lossatlas import cli, exitcodes, results, runner
from lossatlas import continual as cl
from lossatlas import data
from lossatlas.data import files as data_files
from lossatlas.train import TrainConfig, limits, make_train
from lossatlas_experiments.__main__ import main  # the `lossatlas` command

ROOT = Path(__file__).resolve().parents[1]


def _err_line(capsys) -> str:
    """stderr of the last CLI call, which must be exactly one line."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lossatlas: "), err
    return lines[0]


def _no_runs(root: Path) -> None:
    """Nothing under ``root`` looks like a run: no run folder, no partial folder, no files."""
    assert not [p for p in root.rglob("*") if p.is_file()], list(root.rglob("*"))
    assert not list(root.rglob(".*.partial"))


# ------------------------------------------------------------------------------ a fake experiment

@dataclasses.dataclass(frozen=True)
class FakeConfig:
    seeds: int = 1
    seed: int = 0
    epochs: int = 2


def _fake_module(run=None, passed=True):
    """An experiment module that runs in no time (``run`` replaces its run function)."""
    mod = types.ModuleType("lossatlas_experiments.fake")
    mod.Config, mod.QUICK = FakeConfig, {}
    mod.run = run or (lambda cfg, key: {"x": np.arange(3.0)})
    mod.table = lambda res, cfg: [{"a": 1.0}]
    mod.checks = lambda res, cfg: [{"name": "claim", "value": 1.0, "passed": passed, "detail": "d"}]
    mod.plot = lambda res, cfg: {}
    return mod


@pytest.fixture
def fake(monkeypatch):
    """``fake(run=None, passed=True)`` registers the module as experiment ``fake``."""
    real = lossatlas_experiments.REGISTRY

    def install(run=None, passed=True):
        mod = _fake_module(run, passed)
        monkeypatch.setattr(lossatlas_experiments, "REGISTRY", real.with_modules({"fake": mod}))
        return mod

    return install


def _must_not_run(cfg, key):
    raise AssertionError("the experiment ran although its input was refused")


# ------------------------------------------------------------------------------ exit codes

def test_exit_codes_are_distinct_and_documented(capsys):
    codes = [exitcodes.OK, exitcodes.CHECK_FAILED, exitcodes.USAGE, exitcodes.RUNTIME, exitcodes.INTERRUPTED]
    assert codes == [0, 1, 2, 3, 130]
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    help_text = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    command_line = readme[readme.index("## Command line"):readme.index("## Results")]
    for code, _ in exitcodes.DESCRIPTIONS:
        assert f"  {code} " in help_text, code
        assert f"| {code} |" in command_line, code


def test_exit_code_0_and_1_follow_the_checks(fake, tmp_path, capsys):
    fake(passed=True)
    assert main(["run", "fake", "--out", str(tmp_path / "a")]) == exitcodes.OK
    fake(passed=False)
    assert main(["run", "fake", "--out", str(tmp_path / "b")]) == exitcodes.CHECK_FAILED
    (run,) = (tmp_path / "b" / "fake").iterdir()
    assert results.is_complete(run)  # a failed check still leaves a complete folder
    assert "[FAIL] claim" in capsys.readouterr().out


def test_runtime_error_is_one_line_exit_3(fake, tmp_path, capsys, monkeypatch):
    def boom(cfg, key):
        raise RuntimeError("simulated crash\nwith a second line")

    fake(run=boom)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert main(["run", "fake", "--out", str(tmp_path)]) == exitcodes.RUNTIME
    line = _err_line(capsys)
    assert line == ("lossatlas: error: RuntimeError: simulated crash "
                    "(run with LOSSATLAS_DEBUG=1 for the traceback)")
    _no_runs(tmp_path)
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    assert main(["run", "fake", "--out", str(tmp_path)]) == exitcodes.RUNTIME
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in boom" in err
    assert err.splitlines()[-1] == "lossatlas: error: RuntimeError: simulated crash"


def test_usage_errors_exit_2_before_anything_runs(fake, tmp_path, capsys):
    fake(run=_must_not_run)
    for args, field in ((["--set", "epochs=abc"], "epochs"), (["--set", "nonsense=1"], "nonsense"),
                        (["--set", "epochs"], "key=value"), (["--seeds", "0"], "seeds")):
        assert main(["run", "fake", *args, "--out", str(tmp_path)]) == exitcodes.USAGE, args
        assert field in _err_line(capsys)
    assert main(["run", "no_such_experiment", "--out", str(tmp_path)]) == exitcodes.USAGE
    assert "mnist1d_benchmark" in _err_line(capsys)
    _no_runs(tmp_path)


# ------------------------------------------------------------------------------ num_train / num_test

def test_subset_refuses_counts_outside_the_dataset(mnist1d):
    n = mnist1d.num_train
    for bad in (-5, 0, n + 1, 2.5, True):
        with pytest.raises(ValueError, match=rf"num_train must be an integer in \[1, {n}\], got {bad!r}"):
            mnist1d.subset(num_train=bad)
    with pytest.raises(ValueError, match=rf"num_test must be an integer in \[0, {mnist1d.num_test}\], got -1"):
        mnist1d.subset(num_test=-1)
    assert mnist1d.subset(num_train=n).num_train == n and mnist1d.subset(num_train=1).num_train == 1


def test_set_num_train_negative_or_zero_is_refused_by_name(tmp_path, capsys):
    for bad in ("-5", "0", "4001"):
        code = main(["run", "mnist1d_benchmark", "--quick", "--set", f"num_train={bad}", "--out", str(tmp_path)])
        assert code == exitcodes.USAGE
        line = _err_line(capsys)
        assert "num_train must be" in line and f"got {bad}" in line and "[batch_size=100, 4000]" in line, line
    _no_runs(tmp_path)


def test_batch_size_error_says_which_is_which(mnist1d):
    small = mnist1d.subset(num_train=50, num_test=10)
    with pytest.raises(ValueError) as e:
        make_train(TrainConfig(model="mlp", batch_size=100, epochs=1), small)
    msg = str(e.value)
    assert "batch_size=100" in msg and "num_train=50" in msg and "\n" not in msg


@pytest.mark.parametrize("loader", ["mnist", "cifar10"])
def test_file_loaders_refuse_zero_or_negative_num_train(tmp_path, loader):
    for bad in (0, -5):
        with pytest.raises(ValueError, match=rf"num_train must be an integer >= 1, got {bad}"):
            data.load(loader, root=tmp_path, num_train=bad)  # checked before looking for files


# ------------------------------------------------------------------------------ dataset files

def _good_mnist(root: Path):
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), rng.integers(0, 10, 4).astype(np.uint8),
              rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), rng.integers(0, 10, 2).astype(np.uint8))
    for stem, arr in zip(data_files.IDX_FILES, arrays):
        head = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
        with gzip.open(root / f"{stem}.gz", "wb") as f:
            f.write(head + arr.tobytes())


def _good_cifar(root: Path):
    rng = np.random.default_rng(0)
    for f in data_files.CIFAR10_FILES:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
        (root / f).write_bytes(pickle.dumps(batch))


def _assert_clean(err: Exception, path: Path):
    msg = str(err)
    assert isinstance(err, data.DataFileError), type(err)
    assert str(path) in msg and "\n" not in msg, msg
    assert "allow_pickle" not in msg and "enable" not in msg.lower(), msg


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_bad_gz_names_the_file(tmp_path, damage):
    _good_mnist(tmp_path)
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = p.read_bytes()
    p.write_bytes({"truncated": raw[:len(raw) // 2], "garbage": os.urandom(64), "empty": b""}[damage])
    with pytest.raises(data.DataFileError) as e:
        data.load("mnist", root=tmp_path)
    _assert_clean(e.value, p)


@pytest.mark.parametrize("damage", ["random", "truncated", "object_array", "missing_key", "labels_out_of_range"])
def test_bad_npz_names_the_file_and_never_suggests_pickle(tmp_path, damage):
    p = tmp_path / "mnist.npz"
    arrays = {"x_train": np.zeros((3, 28, 28), np.uint8), "y_train": np.array([0, 1, 2]),
              "x_test": np.zeros((1, 28, 28), np.uint8), "y_test": np.array([3])}
    if damage == "random":
        p.write_bytes(np.random.default_rng(1).bytes(300))
    elif damage == "truncated":
        np.savez(p, **arrays)
        p.write_bytes(p.read_bytes()[:200])
    elif damage == "object_array":
        np.savez(p, **{**arrays, "y_train": np.array([0, "a", None], dtype=object)})
    elif damage == "missing_key":
        np.savez(p, **{k: v for k, v in arrays.items() if k != "y_test"})
    else:
        np.savez(p, **{**arrays, "y_train": np.array([0, 1, 10])})
    with pytest.raises(data.DataFileError) as e:
        data.load("mnist", root=tmp_path)
    _assert_clean(e.value, p)


@pytest.mark.parametrize("damage", ["random", "truncated", "not_a_dict", "bad_shape"])
def test_bad_cifar_batch_names_the_file(tmp_path, damage):
    _good_cifar(tmp_path)
    p = tmp_path / "data_batch_1"
    if damage == "random":
        p.write_bytes(np.random.default_rng(2).bytes(500))
    elif damage == "truncated":
        p.write_bytes(p.read_bytes()[:100])
    elif damage == "not_a_dict":
        p.write_bytes(pickle.dumps([1, 2, 3]))
    else:
        p.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}))
    with pytest.raises(data.DataFileError) as e:
        data.load("cifar10", root=tmp_path)
    _assert_clean(e.value, p)


class _Evil:
    """Unpickling this would create ``marker`` (a harmless stand-in for running code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_cifar_batch_cannot_run_code(tmp_path):
    _good_cifar(tmp_path)
    marker = tmp_path / "pwned"
    p = tmp_path / "test_batch"
    p.write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": [1]}))
    assert pickle.loads(p.read_bytes())[b"data"] is None and marker.exists()  # plain pickle runs it
    marker.rmdir()
    with pytest.raises(data.DataFileError, match="refused to load global") as e:
        data.load("cifar10", root=tmp_path)
    _assert_clean(e.value, p)
    assert not marker.exists()


def test_cifar_batch_from_numpy_pickles_of_any_protocol(tmp_path):
    _good_cifar(tmp_path)
    for protocol in (2, 4, 5):
        batch = {b"data": np.full((2, 3072), 7, np.uint8), b"labels": np.array([3, 9]), b"batch_label": b"t"}
        (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
        ds = data.load("cifar10", root=tmp_path)
        assert ds.y_test.tolist() == [3, 9] and float(ds.x_test.max()) == pytest.approx(7 / 255)


# ------------------------------------------------------------------------------ --out

def test_out_is_a_file(fake, tmp_path, capsys):
    fake(run=_must_not_run)
    f = tmp_path / "afile"
    f.write_text("x")
    for out, culprit in ((f, f"--out {f}: it is a file"), (f / "sub", f"--out {f / 'sub'}: {f} is a file")):
        assert main(["run", "fake", "--out", str(out)]) == exitcodes.USAGE
        line = _err_line(capsys)
        assert culprit in line and "expected a writable directory" in line, line
    assert f.read_text() == "x"


def test_out_is_not_writable(fake, tmp_path, capsys, monkeypatch):
    fake(run=_must_not_run)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root ignores permission bits: make the probe fail as it would
            def refuse(*a, **k):
                raise PermissionError(13, "Permission denied")
            monkeypatch.setattr(results.folders.tempfile, "mkdtemp", refuse)
        assert main(["run", "fake", "--out", str(locked / "runs")]) == exitcodes.USAGE
        line = _err_line(capsys)
        assert f"--out {locked / 'runs'}: cannot create folders in {locked}" in line, line
        assert "Permission denied" in line
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o755)


def test_new_run_refuses_a_bad_out_dir_too(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(results.OutDirError, match="is a file, not a directory"):
        with results.new_run("x", {}, out_dir=f):
            pass


# ------------------------------------------------------------------------------ Ctrl-C

def test_ctrl_c_exits_130_with_one_line_and_no_partial_folder(fake, tmp_path, capsys):
    seen = []

    def interrupted(cfg, key):
        seen.extend(tmp_path.rglob(".*.partial"))  # the partial folder exists mid-run
        raise KeyboardInterrupt

    fake(run=interrupted)
    assert main(["run", "fake", "--out", str(tmp_path)]) == exitcodes.INTERRUPTED
    assert seen, "the run never started"
    assert _err_line(capsys) == "lossatlas: interrupted; the partial results folder was removed"
    _no_runs(tmp_path)


def test_real_sigint_in_a_subprocess(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time, dataclasses, types
        import numpy as np
        from lossatlas import cli
        from lossatlas.registry import Registry

        @dataclasses.dataclass(frozen=True)
        class Config:
            seeds: int = 1
            seed: int = 0

        def run(cfg, key):
            print("running", flush=True)
            time.sleep(60)

        mod = types.ModuleType("fake")
        mod.Config, mod.QUICK, mod.run = Config, {{}}, run
        sys.exit(cli.main(["run", "fake", "--out", {str(tmp_path)!r}], registry=Registry.from_modules({{"fake": mod}})))
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop(cli.DEBUG_ENV, None)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "running"
        assert list(tmp_path.rglob(".*.partial"))
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == exitcodes.INTERRUPTED, err
    ours = [ln for ln in err.splitlines() if ln.startswith("lossatlas")]
    assert ours == ["lossatlas: interrupted; the partial results folder was removed"], err
    assert "Traceback" not in err
    _no_runs(tmp_path)


# ------------------------------------------------------------------------------ show

def _complete_run(tmp_path) -> Path:
    with results.new_run("x", {"a": 1}, out_dir=tmp_path, run_id="r") as run:
        run.write_json("checks.json", [{"name": "c", "value": 1, "passed": True, "detail": "d"}])
    return tmp_path / "x" / "r"


@pytest.mark.parametrize("name,content", [("checks.json", '[{"name": "c", "pass'),
                                          ("checks.json", "\x00\xff\xfe garbage"),
                                          ("checks.json", '{"name": "c"}'),
                                          ("config.json", "{not json")])
def test_show_names_the_corrupt_file(tmp_path, capsys, name, content):
    run = _complete_run(tmp_path)
    assert main(["show", str(run)]) == exitcodes.OK
    capsys.readouterr()
    (run / name).write_bytes(content.encode("latin-1"))
    assert main(["show", str(run)]) == exitcodes.USAGE
    line = _err_line(capsys)
    assert str(run / name) in line, line


# ------------------------------------------------------------------------------ absurd run lengths

def test_set_absurd_epochs_is_refused_up_front(fake, tmp_path, capsys, monkeypatch):
    fake(run=_must_not_run)
    monkeypatch.delenv(limits.MAX_STEPS_ENV, raising=False)
    t0 = time.perf_counter()
    assert main(["run", "fake", "--set", "epochs=1000000000", "--out", str(tmp_path)]) == exitcodes.USAGE
    assert time.perf_counter() - t0 < 5
    line = _err_line(capsys)
    assert "epochs=1000000000" in line and "100,000,000" in line and limits.MAX_STEPS_ENV in line, line
    _no_runs(tmp_path)
    # the cap can be raised
    monkeypatch.setenv(limits.MAX_STEPS_ENV, "2e9")
    assert runner.make_config(_fake_module(), overrides={"epochs": "1000000000"}).epochs == 10**9
    monkeypatch.setenv(limits.MAX_STEPS_ENV, "lots")
    with pytest.raises(ValueError, match=limits.MAX_STEPS_ENV):
        runner.make_config(_fake_module(), overrides={"epochs": "1000000000"})


def test_engine_refuses_absurd_totals_and_warns_on_long_runs(mnist1d, monkeypatch):
    monkeypatch.delenv(limits.MAX_STEPS_ENV, raising=False)
    ds = mnist1d.subset(num_train=400, num_test=10)  # 4 steps per epoch at batch 100
    with pytest.raises(ValueError, match=r"TrainConfig.epochs: 4,000,000,000 optimizer steps per run "
                                         r"\(1,000,000,000 epochs x 4 steps per epoch\)"):
        make_train(TrainConfig(model="mlp", batch_size=100, epochs=10**9), ds)
    with pytest.warns(limits.LongRunWarning, match="1,000,000 optimizer steps per run"):
        make_train(TrainConfig(model="mlp", batch_size=100, epochs=250_000), ds)  # built, not run


def test_long_run_warning_is_one_cli_line(fake, tmp_path, capsys):
    def long_then_interrupted(cfg, key):
        limits.check_total_steps("TrainConfig", "epochs", 2 * limits.WARN_STEPS, "a lot")
        raise KeyboardInterrupt

    fake(run=long_then_interrupted)
    assert main(["run", "fake", "--out", str(tmp_path)]) == exitcodes.INTERRUPTED
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == ("lossatlas: LongRunWarning: TrainConfig.epochs: 2,000,000 optimizer steps per run "
                        "(a lot); this will take a while"), lines
    assert len(lines) == 2


# ------------------------------------------------------------------------------ run_stream lambdas

@pytest.fixture(scope="module")
def stream():
    return cl.permuted(data.load("digits"), 2, jax.random.PRNGKey(0)).subset(num_train=64, num_test=16)


@pytest.mark.parametrize("make", [cl.naive, cl.joint, cl.replay, cl.agem])
def test_run_stream_refuses_a_lambda_grid_the_strategy_ignores(stream, make):
    strat = make()
    with pytest.raises(ValueError) as e:
        cl.run_stream(stream, strat, cl.StreamConfig(batch_size=16), key=jax.random.PRNGKey(0), lams=[0.0, 100.0])
    msg = str(e.value)
    assert f"strategy {strat.name!r}" in msg and "lams (2 values) has no effect" in msg and "\n" not in msg
    assert "it is used by l2, ewc, online_ewc, si, lwf" in msg


def test_lambda_grids_stay_allowed_where_lambda_is_used():
    from lossatlas.continual.run import _check_lams
    for strat in (cl.l2(), cl.ewc(), cl.si(), cl.lwf(), cl.Strategy("custom")):
        assert _check_lams([0.0, 100.0], strat).tolist() == [0.0, 100.0]
    assert _check_lams([5.0], cl.naive()).tolist() == [5.0]  # one value: nothing duplicated


def test_set_of_a_shared_name_lists_the_sub_study_fields():
    """`--set learning_rate=...` on a study whose sub-studies each have one names them all."""
    from lossatlas import runner
    from lossatlas_experiments import REGISTRY
    with pytest.raises(ValueError, match=r"^--set learning_rate: learning_curve has no single 'learning_rate'; "
                                         r"its sub-studies each have one: lm_learning_rate, mnist_learning_rate$"):
        runner.make_config(REGISTRY.get("learning_curve"), overrides={"learning_rate": "0.1"})
    cfg = runner.make_config(REGISTRY.get("learning_curve"), overrides={"lm_learning_rate": "0.01"})
    assert cfg.lm_learning_rate == 0.01

"""Checkpoint and resume (lossatlas.checkpoint), partial run folders, and the kill -9 test."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import lossatlas as la
from lossatlas import checkpoint, cli, results, runner
from lossatlas_experiments import REGISTRY
from lossatlas import continual as cl


class Crash(Exception):
    """Stands for a kill right after a checkpoint was written."""


def crash_after(monkeypatch, done: int, call: int = 0):
    """Make call ``call``'s checkpoint write of ``done`` chunks raise once the file is on disk."""
    save = checkpoint.Call.save

    def saving(self, k, total, *a, **kw):
        save(self, k, total, *a, **kw)
        if k == done and self.index == call:
            raise Crash

    monkeypatch.setattr(checkpoint.Call, "save", saving)


def assert_bitwise(a, b):
    la_, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la_) == len(lb) and jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(la_, lb):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")


@pytest.fixture(scope="module")
def small():
    ds = la.load("mnist1d").subset(num_train=200)
    cfg = la.TrainConfig(model="mlp", model_cfg={"widths": (8,)}, optimizer="adam", learning_rate=1e-2,
                         batch_size=50, epochs=6, chunk_epochs=2)
    return cfg, ds


def run_sweep(cfg, ds, seed=1):
    return la.sweep(cfg, ds, seeds=2, grid={"learning_rate": [1e-2, 3e-3]}, key=jax.random.PRNGKey(seed))


def two_calls(cfg, ds):
    """An experiment's shape: two program calls with analysis between them."""
    first = run_sweep(cfg, ds, 1)
    return first, run_sweep(cfg, ds, 2 + int(np.nanargmin(np.asarray(first[1]["test_loss"][..., -1]))))


def test_sweep_resumed_from_a_chunk_is_bitwise_the_uninterrupted_run(small, tmp_path, monkeypatch):
    cfg, ds = small
    with checkpoint.checkpointing(tmp_path / "a", every=1):
        ref = two_calls(cfg, ds)
    with monkeypatch.context() as m:
        crash_after(m, 1, call=1)
        with pytest.raises(Crash), checkpoint.checkpointing(tmp_path / "b", every=1):
            two_calls(cfg, ds)
    meta = json.loads((tmp_path / "b/checkpoints/call-0001/meta.json").read_text())
    assert (meta["chunks_done"], meta["chunks_total"], meta["unit"]) == (1, 3, "epoch")
    with checkpoint.checkpointing(tmp_path / "b", every=1, resume=True):
        resumed = two_calls(cfg, ds)  # call 0 loaded, call 1 continued from its first chunk
    assert_bitwise(ref, resumed)
    with monkeypatch.context() as m, checkpoint.checkpointing(tmp_path / "b", every=1, resume=True):
        m.setattr(checkpoint.Call, "due", lambda *a: pytest.fail("a finished call ran a chunk"))
        loaded = two_calls(cfg, ds)  # both finished: loaded, not run
    assert_bitwise(ref, loaded)
    # chunked vs fused: the same program up to float reassociation (documented)
    for x, y in zip(jax.tree_util.tree_leaves(ref[0][1]), jax.tree_util.tree_leaves(run_sweep(cfg, ds)[1])):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def test_fingerprint_mismatch_is_a_clear_error(small, tmp_path):
    cfg, ds = small
    with checkpoint.checkpointing(tmp_path, every=3):
        run_sweep(cfg, ds)
    with pytest.raises(ValueError, match=r"different call \(differs in: config\).*start a new run"):
        with checkpoint.checkpointing(tmp_path, resume=True):
            run_sweep(cfg.replace(weight_decay=1e-4), ds)


def test_crash_while_writing_keeps_the_previous_checkpoint(small, tmp_path, monkeypatch):
    cfg, ds = small
    with checkpoint.checkpointing(tmp_path, every=1):
        ref = run_sweep(cfg, ds)
    path = tmp_path / "checkpoints/call-0000/state.npz"
    before = path.read_bytes()

    def torn(fh, **arrays):
        fh.write(b"PK\x03\x04 half a file")
        raise Crash

    monkeypatch.setattr(checkpoint.np, "savez", torn)
    with pytest.raises(Crash):
        checkpoint.atomic_savez(path, {"x": np.zeros(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before and not list(path.parent.glob(".*tmp*"))
    with checkpoint.checkpointing(tmp_path, resume=True):
        assert_bitwise(ref, run_sweep(cfg, ds))


def test_progress_bars_show_when_asked_and_change_no_number(small, tmp_path, capsys):
    cfg, ds = small
    with checkpoint.checkpointing(None):
        quiet = run_sweep(cfg, ds)
    assert capsys.readouterr().err == ""
    with checkpoint.checkpointing(None, progress=True):
        shown = run_sweep(cfg, ds)
    err = capsys.readouterr().err
    assert "6/6" in err and "epoch" in err and "test_loss" in err
    assert_bitwise(quiet, shown)


def test_run_stream_resumed_from_a_task_is_bitwise(tmp_path, monkeypatch):
    stream = cl.permuted(la.load("digits"), 3, jax.random.PRNGKey(0)).subset(num_train=200, num_test=50)
    cfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=50, epochs=1, eval_every=2, keep_params=True)
    kw = dict(key=jax.random.PRNGKey(3), seeds=2, lams=[0.0, 10.0])
    with checkpoint.checkpointing(tmp_path / "a", every=1):
        ref = cl.run_stream(stream, cl.ewc(), cfg, **kw)
    with monkeypatch.context() as m:
        crash_after(m, 2)
        with pytest.raises(Crash), checkpoint.checkpointing(tmp_path / "b", every=1):
            cl.run_stream(stream, cl.ewc(), cfg, **kw)
    with checkpoint.checkpointing(tmp_path / "b", every=1, resume=True):
        resumed = cl.run_stream(stream, cl.ewc(), cfg, **kw)
    assert_bitwise(ref, resumed)
    fused = cl.run_stream(stream, cl.ewc(), cfg, **kw)
    assert set(fused) == set(ref) and fused["R"].shape == ref["R"].shape == (2, 2, 3, 3)
    np.testing.assert_allclose(fused["R"], ref["R"], atol=0.05)


def _fake_partial(root: Path, name: str, run_id: str, pid: int):
    p = root / name / f".{run_id}.partial"
    (p / "checkpoints/call-0000").mkdir(parents=True)
    results.write_json(p / "config.json", {"experiment": name, "quick": True, "config": {"seeds": 1}})
    results.write_json(p / "owner.json", {"pid": pid, "host": __import__("socket").gethostname()})
    (p / "checkpoints/call-0000/meta.json").write_text(json.dumps(
        {"call": 0, "desc": "mlp", "unit": "epoch", "units_per_chunk": 2, "chunks_done": 3, "chunks_total": 10}))
    return p


def test_show_partial_and_clean_remove_only_stale_partial_folders(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = _fake_partial(tmp_path, "mnist1d_benchmark", "old", dead.pid)
    live = _fake_partial(tmp_path, "mnist1d_benchmark", "live", os.getpid())
    done = tmp_path / "mnist1d_benchmark" / "done"
    done.mkdir()
    (done / results.COMPLETE_MARKER).write_text("x")
    assert cli.main(["show", "--partial", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "old  stale" in out and "live  running" in out and "6/20 epochs" in out
    assert cli.main(["clean", "--out", str(tmp_path), "--older-than", "1"]) == 0  # too recent
    assert capsys.readouterr().out == "" and stale.exists()
    assert cli.main(["clean", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"removed {stale}"
    assert not stale.exists() and live.exists() and done.exists()


def test_resume_refuses_another_config_or_experiment(tmp_path):
    p = _fake_partial(tmp_path, "mnist1d_benchmark", "r1", 0)
    module = REGISTRY.get("mnist1d_benchmark")
    cfg = runner.make_config(module, quick=True)
    with pytest.raises(ValueError, match="different experiment or config .*differs in: config"):
        runner.run_experiment(REGISTRY, "mnist1d_benchmark", cfg, quick=True, resume=p)
    with pytest.raises(ValueError, match="holds a run of 'mnist1d_benchmark', not 'optimizers'"):
        runner.run_experiment(REGISTRY, "optimizers", resume=p)
    with pytest.raises(FileNotFoundError, match="no partial run folder"):
        runner.run_experiment(REGISTRY, "mnist1d_benchmark", resume=tmp_path / "mnist1d_benchmark" / "nope")


# ---------------------------------------------------------------- kill -9 a real CLI run
ARGS = ["mnist1d_benchmark", "--quick", "--set", "models=logreg", "--set", "epochs=100", "--set", "batch_size=10",
        "--set", "num_train=1000", "--checkpoint-every", "1"]  # 20 chunks of 5 epochs


def cli_run(*extra, wait=True):
    cmd = [sys.executable, "-m", "lossatlas_experiments", "run", *ARGS, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if wait:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), err  # 1: a check failed (tiny config), still a complete run
    return proc


def test_kill_9_then_resume_gives_bitwise_identical_arrays(tmp_path):
    cli_run("--out", str(tmp_path / "ref"))
    (ref_dir,) = (tmp_path / "ref" / "mnist1d_benchmark").iterdir()

    root = tmp_path / "killed"
    proc = cli_run("--out", str(root), wait=False)
    meta = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # kill it part-way through its training
        found = list(root.glob("mnist1d_benchmark/.*.partial/checkpoints/call-0000/meta.json"))
        if found:
            try:
                meta = json.loads(found[0].read_text())
            except ValueError:
                meta = None
            if meta and meta["chunks_done"] < meta["chunks_total"]:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    assert meta is not None and 0 < meta["chunks_done"] < meta["chunks_total"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    (partial,) = (root / "mnist1d_benchmark").glob(".*.partial")
    assert (partial / "checkpoints/call-0000/state.npz").exists() and not (partial / "arrays.npz").exists()

    assert cli.main(["show", "--partial", str(root)]) == 0
    cli_run("--resume", str(partial))
    run_id = partial.name[1:-len(".partial")]
    final = root / "mnist1d_benchmark" / run_id
    assert results.is_complete(final) and not partial.exists() and not (final / "checkpoints").exists()
    assert json.loads((final / "metrics.json").read_text())["resumed"] is True
    a, b = results.load_arrays(ref_dir), results.load_arrays(final)
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k

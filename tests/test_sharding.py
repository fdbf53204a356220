"""Every vmapped axis lossatlas owns is sharded over the devices (issue 14) and gives one device's
numbers; the same sweep runs on two processes (jax.distributed, gloo collectives on CPU).

The programs run in subprocesses (the device count is fixed when JAX starts): one with 1 CPU
device (the reference), one with 2, and two processes of 1 device each joined by
``lossatlas.devices.initialize_distributed``. Each subprocess has a timeout, so a hang fails the
test instead of blocking the suite.
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

_SCRIPT = textwrap.dedent("""
    import json, sys
    from lossatlas import devices, settings
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "dist":  # coordinator, num_processes, process_id
        devices.initialize_distributed(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), initialization_timeout=60)
    settings.configure(quick=True)
    import jax, jax.numpy as jnp, numpy as np
    from lossatlas import continual as cl, data, landscape, losses, saddles
    from lossatlas.train import TrainConfig, model_fns, sweep

    spans = {}  # entry point -> number of devices its output is split over (1 = unsharded)

    def span(name, tree):
        spans[name] = max(len(x.sharding.device_set) for x in jax.tree_util.tree_leaves(tree))

    results = {}
    digits = data.load("digits")
    ds = digits.subset(num_train=64, num_test=32)
    cfg = TrainConfig(model="mlp", model_cfg={"widths": (8,)}, learning_rate=1e-2, batch_size=32, epochs=1,
                      eval_batch_size=32)
    key = jax.random.PRNGKey(0)
    # seeds: 2 seeds split over the devices (over the processes under jax.distributed)
    state2, hist = sweep(cfg, ds, seeds=2, key=key)
    span("sweep_seeds", state2.params)
    results["sweep_seeds"] = devices.to_host((state2.params, hist["loss"], hist["test_loss"]))
    if mode != "dist":
        # grid cells: 2 learning rates x 3 seeds -> a (2 grid, 1 seed) mesh
        state, hist = sweep(cfg, ds, seeds=3, key=key, grid={"learning_rate": [1e-2, 3e-2]})
        span("sweep_grid", state.params)
        results["sweep_grid"] = devices.to_host((state.params, hist["loss"]))
        mesh = {str(s): None if m is None else dict(m.shape) for s, m in [
            ((3,), devices.mesh_for(3)), ((2, 3), devices.mesh_for((2, 3), ("grid", "seed"))),
            ((3, 4), devices.mesh_for((3, 4), ("grid", "seed"))), ((3, 3), devices.mesh_for((3, 3), ("g", "s")))]}
        # curvature vmapped over the sweep's seed axis follows its sharding
        fns = model_fns(cfg, ds)
        batch = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
        from lossatlas import curvature
        eig = jax.jit(jax.vmap(lambda p, s, k: curvature.top_eigenvalues(lambda q: fns.loss(q, s, batch), p, 2, k)[0]))(
            state2.params, state2.model_state, jax.random.split(jax.random.PRNGKey(1), 2))
        span("curvature", eig)
        results["curvature"] = devices.to_host(eig)
        # landscape.plane: 4 x 2 grid points, eagerly, under jit, and in batches of 6 (each batch split)
        p0 = jax.tree_util.tree_map(lambda a: a[0], state2.params)
        s0 = jax.tree_util.tree_map(lambda a: a[0], state2.model_state)
        d1 = landscape.random_direction(jax.random.PRNGKey(2), p0)
        d2 = landscape.random_direction(jax.random.PRNGKey(3), p0)
        xs, ys = jnp.linspace(-1, 1, 4), jnp.linspace(-1, 1, 2)
        loss = lambda q: fns.loss(q, s0, batch)  # noqa: E731
        plane = landscape.plane(loss, p0, d1, d2, xs, ys)
        span("plane", plane)
        planej = jax.jit(lambda p: landscape.plane(loss, p, d1, d2, xs, ys))(p0)
        span("plane_jit", planej)
        planeb = landscape.plane(loss, p0, d1, d2, xs, ys, point_batch=6)
        results["plane"] = devices.to_host((plane, planej, planeb))
        # critical-point search from 2 starts (under jit, as its docstring shows)
        crit = jax.jit(lambda p: saddles.find_critical_points(loss, p, key, "gradnorm", 3))(
            jax.device_get(state2.params))
        span("critical", crit.loss)
        results["critical"] = devices.to_host((crit.loss, crit.grad_norm, crit.params))
    # run_stream: 2 lambdas x 1 seed -> the lambda axis split
    stream = cl.permuted(digits, 2, key).subset(num_train=32, num_test=16)
    scfg = cl.StreamConfig(model_cfg={"widths": (8,)}, batch_size=16, epochs=1)
    gathered = devices.to_host
    def spy(tree):
        span("run_stream", tree)
        return gathered(tree)
    devices.to_host = spy
    so = cl.run_stream(stream, cl.l2(), scfg, key=key, seeds=1, lams=[0.0, 1.0])
    devices.to_host = gathered
    results["run_stream"] = (so["R"], so["loss"])
    if devices.is_primary():
        flat = {f"{k}/{i}": np.asarray(v) for k, t in results.items()
                for i, v in enumerate(jax.tree_util.tree_leaves(t))}
        np.savez(out + ".npz", **flat)
        with open(out + ".json", "w") as f:
            json.dump({"spans": spans, "devices": len(jax.devices()), "processes": jax.process_count(),
                       "mesh": mesh if mode != "dist" else None}, f)
""")

TIMEOUT = 240  # seconds; a loaded 2-core machine took 65 s for all four side by side


def _env(num_devices: int) -> dict:
    env = dict(os.environ)
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f)
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={num_devices}".strip()
    return env


def _start(args, num_devices):
    return subprocess.Popen([sys.executable, "-c", _SCRIPT, *map(str, args)], env=_env(num_devices),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs):
    """Wait for every process (killing all if one times out); assert they all succeeded."""
    try:
        outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"a sharded run did not finish in {TIMEOUT} s (hang?)")
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]


def _load(prefix):
    with open(f"{prefix}.json") as f:
        info = json.load(f)
    return info, dict(np.load(f"{prefix}.npz"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The script on 1 device, on 2 devices, and on 2 processes of 1 device, run side by side."""
    d = tmp_path_factory.mktemp("sharding")
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    coord = f"127.0.0.1:{port}"
    procs = [_start(["local", d / "one"], 1), _start(["local", d / "two"], 2),
             _start(["dist", d / "dist", coord, 2, 0], 1), _start(["dist", d / "dist_p1", coord, 2, 1], 1)]
    _finish(procs)
    assert not (d / "dist_p1.json").exists()  # only process 0 writes
    return _load(d / "one"), _load(d / "two"), _load(d / "dist")


# float32 rounding may differ between a program split over 2 devices and the same program on
# one (XLA vectorises a batch of 1 and of 2 members differently): set before the run from
# float32's eps (1.2e-7) times the few hundred operations between parameters and outputs.
RTOL, ATOL = 1e-5, 1e-6


def _compare(got, want, prefix):
    names = sorted(k for k in want if k.startswith(prefix + "/"))
    assert names and names == sorted(k for k in got if k.startswith(prefix + "/"))
    for k in names:
        np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=ATOL, err_msg=k)


def test_every_owned_vmap_axis_is_split_over_two_devices_with_one_devices_numbers(runs):
    (one, ref), (two, got), _ = runs
    assert one["devices"] == 1 and two["devices"] == 2
    assert set(one["spans"].values()) == {1}
    for name in ("sweep_seeds", "sweep_grid", "curvature", "plane", "plane_jit", "critical", "run_stream"):
        assert two["spans"][name] == 2, (name, two["spans"])
    for name in ("sweep_seeds", "sweep_grid", "curvature", "plane", "critical", "run_stream"):
        _compare(got, ref, name)
    # eagerly, under jit, and in batches of 6 (a split batch of 6, then a remainder of 2): one plane
    np.testing.assert_allclose(got["plane/1"], got["plane/0"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got["plane/2"], got["plane/0"], rtol=RTOL, atol=ATOL)


def test_mesh_for_splits_the_innermost_axis_first_and_refuses_uneven_sizes(runs):
    """On 2 devices: 3 seeds cannot be split (None: unsharded); (2 grid, 3 seeds) splits the grid;
    (3, 4) splits the seeds; (3, 3) cannot be split."""
    mesh = runs[1][0]["mesh"]
    assert mesh == {"(3,)": None, "(2, 3)": {"grid": 2, "seed": 1}, "(3, 4)": {"grid": 1, "seed": 2},
                    "(3, 3)": None}


def test_two_processes_hold_the_seed_shards_and_gather_the_single_process_result(runs):
    """Two processes of one CPU device each (jax.distributed, gloo): each holds one seed of the
    sweep and one lambda of run_stream; process 0's gathered results are the 1-device run's."""
    (_, ref), _, (dist, got) = runs
    assert dist["processes"] == 2 and dist["devices"] == 2
    assert dist["spans"]["sweep_seeds"] == 2 and dist["spans"]["run_stream"] == 2
    _compare(got, ref, "sweep_seeds")
    _compare(got, ref, "run_stream")


def test_bad_mesh_and_distributed_arguments_are_refused_by_name(monkeypatch):
    """One-line ValueErrors naming the field, raised before jax.distributed is touched."""
    from lossatlas import devices
    with pytest.raises(ValueError, match="axis_names must name each of the 2 axes"):
        devices.mesh_for((2, 3), "seed")
    with pytest.raises(ValueError, match="sizes must be positive"):
        devices.mesh_for(0)
    with pytest.raises(ValueError, match="num_processes must be an integer >= 1 or None, got 0"):
        devices.initialize_distributed("127.0.0.1:1", num_processes=0, process_id=0)
    with pytest.raises(ValueError, match=r"process_id must be an integer in \[0, 1\] or None, got 2"):
        devices.initialize_distributed("127.0.0.1:1", num_processes=2, process_id=2)
    monkeypatch.setenv("LOSSATLAS_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="LOSSATLAS_NUM_PROCESSES must be an integer, got 'two'"):
        devices.initialize_distributed("127.0.0.1:1")

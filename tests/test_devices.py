"""Analysis on a sweep's seed-sharded outputs (issue 14): curvature and critical-point searches
run directly on the arrays ``sweep`` returns, sharded over several CPU devices, finish and give
the numbers of the same call on host copies.

Earlier experiments copied sweep outputs to the host before Lanczos / Newton-MR because such
calls had hung on 2 CPU devices (see ``lossatlas.linalg``'s module docstring for the batched
LAPACK deadlock fixed there). The calls run in a subprocess with a timeout, so a regression
fails this test instead of hanging the suite.
"""
import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    from lossatlas import settings
    settings.configure(quick=True)
    import jax, jax.numpy as jnp, numpy as np
    from lossatlas import curvature, data, losses, saddles
    from lossatlas.train import TrainConfig, program, sweep

    assert len(jax.devices()) == 2, jax.devices()
    ds = data.load("mnist1d").subset(num_train=128, num_test=64)
    cfg = TrainConfig(model="mlp", model_cfg={"widths": (8,)}, learning_rate=1e-2, batch_size=64, epochs=1,
                      eval_batch_size=64)
    state, _ = sweep(cfg, ds, seeds=2, key=jax.random.PRNGKey(0))
    params = state.params
    leaf = jax.tree_util.tree_leaves(params)[0]
    assert len(leaf.sharding.device_set) == 2 and not leaf.sharding.is_fully_replicated, leaf.sharding
    host = jax.device_get(params)
    model = program(cfg, ds).model
    x, y = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)

    def loss(p):
        return losses.cross_entropy(model.apply({"params": p}, x), y)

    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    calls = {
        "top_eigenvalues": jax.jit(jax.vmap(lambda p, k: curvature.top_eigenvalues(loss, p, 3, k))),
        "lanczos_quadrature": jax.jit(jax.vmap(lambda p, k: curvature.lanczos_quadrature(loss, p, k, 20, 2))),
        "find_critical_points": jax.jit(lambda p, k: saddles.find_critical_points(
            loss, p, k[0], "newton_mr", 10).loss),
    }
    # float32 rounding differs between the two compiled programs (one seed per device vs both
    # on one): eigenvalues and losses agree to 1e-6, SLQ's quadrature weights to 1e-5
    tols = {"top_eigenvalues": (1e-6,), "lanczos_quadrature": (1e-6, 1e-5), "find_critical_points": (1e-6,)}
    for name, f in calls.items():
        on_host = jax.device_get(f(host, keys))
        sharded = jax.device_get(f(params, keys))
        for a, b, tol in zip(jax.tree_util.tree_leaves(sharded), jax.tree_util.tree_leaves(on_host), tols[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=name)
        print("finished", name, flush=True)
""")


def test_analysis_of_sharded_sweep_outputs_finishes_and_matches_host_copies():
    env = dict(os.environ)
    # two CPU devices whatever this machine's core count (an explicit flag wins in settings)
    flags = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f)
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=2".strip()
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("top_eigenvalues", "lanczos_quadrature", "find_critical_points"):
        assert f"finished {name}" in proc.stdout, proc.stdout

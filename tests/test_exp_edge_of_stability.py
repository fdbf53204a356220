"""edge_of_stability (Cohen et al. 2021, Fig. 1) in quick mode, plus the probe against the dense
Hessian and the checks against trajectories that are not at the edge of stability."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lossatlas import train
from lossatlas.checks import assert_passed
from lossatlas_experiments import edge_of_stability as eos


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick("edge_of_stability")


def test_quick_run_is_at_the_edge_of_stability(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    assert (path / "edge_of_stability.png").exists() and (path / "table.md").exists()
    E, S = len(cfg.learning_rates), cfg.seeds
    assert res["loss"].shape == (E, S, cfg.steps)
    assert res["lambda_max"].shape == (E, S, cfg.steps // cfg.probe_every)
    assert not res["diverged"].any() and np.all(np.isfinite(res["lambda_max"]))
    # seeds are vmap members with different initialisations; the same seed's init does not depend on eta
    assert np.all(np.abs(np.diff(res["lambda_init"], axis=1)) > 0)
    np.testing.assert_allclose(res["lambda_init"], res["lambda_init"][:1].repeat(E, 0), rtol=1e-3)


def _tiny():
    cfg = eos.Config(num_train=32, widths=(4,), learning_rates=(0.5,), steps=10, probe_every=1, seeds=1)
    ds = eos.regression_dataset(cfg)
    return cfg, ds, eos.train_config(cfg, ds.num_train)


def test_regression_dataset_is_centred_one_hot():
    cfg, ds, tcfg = _tiny()
    assert ds.task == "regression" and ds.y_train.shape == (32, 10)
    np.testing.assert_array_equal(ds.y_train.sum(1), 1.0)
    np.testing.assert_allclose(ds.x_train.mean(0), 0.0, atol=1e-6)
    assert tcfg.batch_size == ds.num_train == 32          # full batch: the probe's batch is the training set


def test_lambda_max_probe_equals_the_dense_hessian_top_eigenvalue():
    """The first probe (after one full-batch step) is the largest-magnitude eigenvalue of the
    dense Hessian of the mean training loss at the parameters after that step."""
    cfg, ds, tcfg = _tiny()
    tcfg = tcfg.replace(epochs=2)
    fns = train.model_fns(tcfg, ds)
    run = train.make_train(tcfg, ds, probes={"lam": train.probes.lambda_max(fns.loss, num_iters=400)}, probe_every=1,
                           checkpoints=train.Checkpoints(steps=(1,)))
    state, hist = run(jax.random.PRNGKey(3))
    params = jax.tree_util.tree_map(lambda a: a[0], hist["checkpoints"]["params"])
    flat, unravel = ravel_pytree(params)
    batch = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
    hess = jax.hessian(lambda f: fns.loss(unravel(f), state.model_state, batch))(flat)
    eig = np.linalg.eigvalsh(np.asarray(hess, np.float64))
    top = eig[np.argmax(np.abs(eig))]
    assert top > 0 and eig[-1] - eig[-2] > 1e-3 * top      # a separated top eigenvalue (power iteration converges)
    np.testing.assert_allclose(float(hist["probes"]["lam"][0]), top, rtol=1e-3)


def _synthetic(lam_fn, loss_fn, etas=(1.0, 2.0), T=400, every=10):
    cfg = eos.Config(learning_rates=etas, steps=T, probe_every=every, seeds=1)
    ps = np.arange(1, T // every + 1) * every
    etas_a = np.asarray(etas, float)
    lam = np.stack([lam_fn(ps, 2 / e) for e in etas])[:, None]
    loss = np.stack([loss_fn(np.arange(T), 2 / e) for e in etas])[:, None]
    res = {"learning_rates": etas_a, "loss": loss, "lambda_max": lam, "probe_steps": ps,
           "lambda_init": 0.5 * (2 / etas_a)[:, None], "lambda_final_lanczos": lam[..., -1].copy(),
           "diverged": np.zeros((len(etas), 1), bool)}
    return {c["name"]: c for c in eos.checks(res, cfg)}, cfg


def test_checks_pass_on_an_ideal_eos_trajectory_and_fail_without_one():
    # ideal: linear sharpening to 2/eta by step 150, then flat at 1.02 x 2/eta; loss falls, zig-zag after 150
    def lam_eos(ps, thr):
        return np.where(ps < 150, 0.5 * thr + 0.5 * thr * ps / 150, 1.02 * thr)

    def loss_eos(t, thr):
        return np.exp(-t / 200) * (1 + 0.1 * ((t >= 150) & (t % 7 == 0)))
    ok, _ = _synthetic(lam_eos, loss_eos)
    assert all(c["passed"] for c in ok.values()), [c["detail"] for c in ok.values() if not c["passed"]]

    # stable GD: sharpness flat at half the threshold, monotone loss -> no sharpening, no EoS phase
    flat, _ = _synthetic(lambda ps, thr: np.full(ps.shape, 0.5 * thr), lambda t, thr: np.exp(-t / 200))
    assert not flat["progressive sharpening up to 2/eta"]["passed"]
    assert not flat["lambda_max hovers at 2/eta in the EoS phase"]["passed"]
    assert not flat["loss non-monotone at EoS, monotone before"]["passed"]

    # sharpness that overshoots and keeps rising (no self-stabilisation), loss stuck after crossing
    runaway, _ = _synthetic(lambda ps, thr: 0.5 * thr + thr * ps / 150,
                            lambda t, thr: np.maximum(np.exp(-t / 200), np.exp(-75 / 200)))
    assert not runaway["lambda_max hovers at 2/eta in the EoS phase"]["passed"]
    assert not runaway["loss keeps falling through the EoS phase"]["passed"]


def test_config_refuses_bad_grids():
    with pytest.raises(ValueError, match="learning_rates"):
        eos.Config(learning_rates=(2.0, 1.0))
    with pytest.raises(ValueError, match="probe_every"):
        dataclasses.replace(eos.Config(), steps=1005)

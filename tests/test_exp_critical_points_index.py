"""critical_points_index (Dauphin et al. 2014 Fig. 1; Pennington & Bahri 2017) in quick mode, the
critical points re-checked independently (jax.grad, numpy eigvalsh of jax.hessian), the fit on
synthetic data, and bad config values."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from lossatlas import settings, train
from lossatlas.checks import assert_passed
from lossatlas_experiments import _critical_points_stats as cstats
from lossatlas_experiments import critical_points_index as cpi


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick("critical_points_index")


def test_quick_run_passes_and_counts_add_up(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    assert (path / "critical_points_index.png").exists() and (path / "table.md").exists()
    S = len(cfg.init_scales) * cfg.seeds * len(cfg.checkpoint_epochs)
    assert res["loss"].shape == (S,) and res["points"].shape == (S, int(res["num_params"]))
    crit, flat = res["is_critical"].astype(bool), res["is_gradient_flat"].astype(bool)
    assert not (crit & flat).any()                                     # gradient-flat is never critical
    assert int(res["num_critical"]) + int(res["num_gradient_flat"]) + int(res["num_neither"]) == S
    assert int(res["num_critical"]) >= cpi.MIN_POINTS


def test_critical_points_are_critical_and_their_index_is_the_dense_one(quick):
    """Independently of the library: |grad| by jax.grad of the flat objective, and the index as
    the count of numpy eigvalsh(jax.hessian) eigenvalues below -1000 eps max|lambda| over n."""
    _, res, _, cfg = quick
    crit = np.flatnonzero(res["is_critical"].astype(bool))
    ds = cpi.regression_dataset(cfg)
    with settings.enable_x64():
        loss, batch = cpi.objective(cfg, ds)
        template = train.model_fns(cpi.train_config(cfg, ds.num_train), ds).init(jax.random.PRNGKey(0)).params
        _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64),
                                                                          template))
        f = lambda x: loss(unravel(x), batch)  # noqa: E731
        every = np.asarray(jax.jit(jax.vmap(jax.grad(f)))(jnp.asarray(res["points"], jnp.float64)))
        pts = jnp.asarray(res["points"][crit], jnp.float64)
        grads = every[crit]
        hess = np.asarray(jax.jit(jax.vmap(jax.hessian(f)))(pts), np.float64)
        losses = np.asarray(jax.vmap(f)(pts))
    assert np.all(np.linalg.norm(grads, axis=1) <= cfg.grad_tol)
    # the critical flag is |grad| <= grad_tol recomputed here for every start, not only for the flagged ones
    np.testing.assert_array_equal(np.linalg.norm(every, axis=1) <= cfg.grad_tol, res["is_critical"].astype(bool))
    np.testing.assert_allclose(losses, res["loss"][crit], rtol=1e-10)
    lam = np.linalg.eigvalsh(0.5 * (hess + np.swapaxes(hess, 1, 2)))
    tol = 1000 * np.finfo(np.float64).eps * np.abs(lam).max(1, keepdims=True)
    n = lam.shape[1]
    np.testing.assert_array_equal(np.sum(lam < -tol, 1) / n, res["index"][crit])
    np.testing.assert_allclose(lam, res["eigenvalues"][crit], atol=1e-9 * np.abs(lam).max())


def test_power_fit_recovers_a_known_law():
    eps = np.linspace(0.05, 0.2, 80)
    alpha = 3.0 * np.maximum(eps - 0.08, 0) ** 1.5
    a, ec, b, sse = cstats.fit_power(eps, alpha, (1.5,))
    assert abs(ec - 0.08) < 2e-3 and abs(a - 3.0) < 0.15 and sse < 1e-4   # grid resolution of eps_c
    alpha2 = 2.0 * np.maximum(eps - 0.08, 0) ** 0.75
    assert abs(cstats.fit_power(eps, alpha2, cstats.B_GRID)[2] - 0.75) <= 0.05


@pytest.mark.parametrize("field,value", [("input_dim", 0), ("input_dim", 65), ("l2_penalty", -1.0),
                                         ("grad_tol", 0.0), ("checkpoint_epochs", (0, 5000)),
                                         ("checkpoint_epochs", (10, 5)), ("init_scales", (0.0,)),
                                         ("activation", "relu"), ("widths", ()), ("seeds", 0)])
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(cpi.Config(), **{field: value})

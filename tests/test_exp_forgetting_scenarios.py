"""forgetting_scenarios in quick mode: van de Ven & Tolias's scenario pattern, and the mathematics behind it."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import continual as cl
from lossatlas import losses
from lossatlas.checks import assert_passed
from lossatlas_experiments import _stream_sweeps as ss
from lossatlas_experiments import forgetting_scenarios as fs

NAME = "forgetting_scenarios"


@pytest.fixture(scope="module")
def quick(run_quick):
    return run_quick(NAME)


def test_paper_pattern_in_quick_mode(quick):
    path, res, checks, cfg = quick
    assert_passed(checks)
    summ = fs.summary(res, cfg)
    ci, ti = fs.SCENARIOS.index("class"), fs.SCENARIOS.index("task")
    for protocol in cfg.protocols:
        s = summ[protocol]
        # the class-IL checks are gating (the class-IL naive-to-joint gap is many standard errors wide)
        for name in ("class-IL regularisers stay near fine-tuning", "replay keeps the old classes in class-IL"):
            assert checks[f"{protocol}: {name}"].get("gating", True), name
        # a task-IL comparison is gating exactly when the task-IL gap is resolved (GAP_SE standard errors)
        resolved = fs._gap_ok(s, ti)[0]
        for name in ("ewc", "si"):
            c = checks[f"{protocol}: {fs.LABELS[name]} above fine-tuning in task-IL (our finding)"]
            assert c["gating"] == resolved and (resolved or not c["passed"]), c
        # the per-seed gap fractions average to the seed-mean one only up to the spread of joint - naive
        for name in fs.REGULARISERS:
            if name in cfg.strategies:
                assert abs(fs.seed_gap_fraction(s, name, ci).mean() - fs.gap_fraction(s, name)[ci]) < 0.05, name
    for f in ("forgetting_scenarios.png", "forgetting_scenarios_lambda.png", "table.md", "checks.json"):
        assert (path / f).exists()


def test_paired_bound():
    """The one-sided bound is the t quantile times the standard error of the paired differences."""
    m, se, lo = fs.paired_bound([1.0, 2.0, 3.0], "lower")
    assert m == 2.0 and np.isclose(se, 1 / np.sqrt(3)) and np.isclose(lo, 2.0 - 2.919986 / np.sqrt(3), atol=1e-5)
    assert np.isclose(fs.paired_bound([1.0, 2.0, 3.0], "upper")[2], 4.0 - lo)
    assert fs.paired_bound([0.5], "lower")[2] == -np.inf  # one seed bounds nothing


def test_accuracy_matrices(quick):
    _, res, _, cfg = quick
    for protocol in cfg.protocols:
        t = res[protocol]["meta"]["num_tasks"]
        for name in cfg.strategies:
            r = res[protocol][name]
            assert r["R"].shape[:3] == (3, len(r["lams"]), cfg.seeds) and r["R"].shape[-2:] == (t, t)
            assert np.all((r["R"] >= 0) & (r["R"] <= 1)) and np.all((r["val_acc"] >= 0) & (r["val_acc"] <= 1))
            # every strategy learns each task it is trained on (the diagonal of R), in every scenario
            learned = cl.learning_accuracy(r["R"][:, r["chosen"][0]])
            assert learned.min() > 0.6, (protocol, name, learned.min())
            # same initialisation in every scenario; a task-IL mask is a subset of the class-IL mask that
            # still holds the true label, so at init task-IL accuracy >= class-IL accuracy on every task
            ti, ci = fs.SCENARIOS.index("task"), fs.SCENARIOS.index("class")
            assert np.all(r["init_acc"][ti] >= r["init_acc"][ci])
        # naive class-IL: only the last task's classes survive; earlier tasks drop to ~0
        naive = res[protocol]["naive"]["R"][fs.SCENARIOS.index("class"), 0]
        assert naive[:, -1, :-1].mean() < 0.05 and naive[:, -1, -1].mean() > 0.9
        # the summary is the average of the last row of R at the chosen lambda
        s = fs.summary(res, cfg)[protocol]["ewc"]
        idx = res[protocol]["ewc"]["chosen"]
        for d in range(3):
            np.testing.assert_allclose(s["acc"][d], res[protocol]["ewc"]["R"][d, idx[d], :, -1, :].mean(-1))
            assert np.all(res[protocol]["ewc"]["lams"][idx[d]] > 0)


def test_padded_head_is_the_same_model(digits):
    """Extra output units masked out everywhere change neither the loss nor the accuracy, and never learn."""
    st = cl.split(digits, jax.random.PRNGKey(0), scenario="domain").subset(num_train=40, num_test=30)
    padded = ss.pad_outputs(st, 10)
    cfg = cl.StreamConfig(model_cfg={"widths": (16,)}, batch_size=8)
    apply_b, apply_s = cl.model_apply(padded, cfg), cl.model_apply(st, cfg)
    pb = cl.init_params(padded, cfg, jax.random.PRNGKey(1))
    last = sorted(pb)[-1]
    ps = {**pb, last: {"kernel": pb[last]["kernel"][:, :2], "bias": pb[last]["bias"][:2]}}
    assert jax.tree_util.tree_structure(ps) == jax.tree_util.tree_structure(
        cl.init_params(st, cfg, jax.random.PRNGKey(1)))
    x, y = jnp.asarray(st.x_train[2, :8]), jnp.asarray(st.y_train[2, :8])

    def loss(apply, p, mask):
        return losses.cross_entropy(cl.masked(apply(p, x), mask), y)

    for i in (0, 4):
        mb, ms = jnp.asarray(padded.masks[i, 2]), jnp.asarray(st.masks[i, 2])
        np.testing.assert_allclose(loss(apply_b, pb, mb), loss(apply_s, ps, ms), rtol=1e-6)
        np.testing.assert_array_equal(jnp.argmax(cl.masked(apply_b(pb, x), mb), -1),
                                      jnp.argmax(cl.masked(apply_s(ps, x), ms), -1))
    g = jax.grad(lambda p: loss(apply_b, p, jnp.asarray(padded.masks[3, 2])))(pb)[last]["kernel"]
    assert np.all(np.asarray(g[:, 2:]) == 0) and np.any(np.asarray(g[:, :2]) != 0)


def test_quadratic_family_is_the_library_strategies():
    """The family is a stack of the library's L2, EWC, online EWC and SI with the config's settings (that a
    stack's member i trains as strategy i alone is tests/test_continual_engine.py's)."""
    cfg = fs.Config(fisher_examples=16, online_gamma=0.5)
    fam = fs.quadratic_family(cfg)
    assert cl.member_labels(fam) == fs.QUADRATIC
    assert [s for _, s in fam.members] == [fs._strategy(n, cfg)[0] for n in fs.QUADRATIC]
    assert dict(fam.members)["online_ewc"] == cl.ewc(fisher="sampled", online=True, gamma=0.5, fisher_examples=16,
                                                     chunk_size=cfg.fisher_chunk)


def test_validation_split_is_disjoint(digits):
    test_ds, val_ds = ss.split_validation(digits, 0.2, jax.random.PRNGKey(3))
    assert len(val_ds.y_test) == round(0.2 * len(digits.y_train))
    np.testing.assert_array_equal(test_ds.x_test, digits.x_test)
    rows = lambda x: {r.tobytes() for r in np.asarray(x)}  # noqa: E731
    assert not rows(test_ds.x_train) & rows(val_ds.x_test)
    assert len(test_ds.y_train) + len(val_ds.y_test) == len(digits.y_train)


def test_config_errors():
    with pytest.raises(ValueError, match="Config.strategies must include 'naive' and 'joint'"):
        fs.Config(strategies=("ewc", "joint"))
    with pytest.raises(ValueError, match="Config.protocols must be a tuple of"):
        fs.Config(protocols=("rotated",))
    with pytest.raises(ValueError, match="Config.quadratic_lams must hold finite numbers > 0"):
        fs.Config(quadratic_lams=(0.0, 1.0))
    assert dataclasses.replace(fs.Config(), **fs.QUICK).seeds >= 2

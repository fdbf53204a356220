"""Optimisers experiment in quick mode: known rates on the quadratic (Polyak 1964), Rosenbrock,
MNIST-1D, and Adam's scale-invariant update (Kingma & Ba 2015)."""
import numpy as np
import pytest

from lossatlas_experiments import _optimizers_quadratic as quadratic_study
from lossatlas_experiments import optimizers as exp


@pytest.fixture(scope="module")
def quick(run_quick):
    path, res, checks, cfg = run_quick("optimizers")
    return cfg, res, exp.table(res, cfg), list(checks.values()), path.parent.parent


def test_checks_pass(quick):
    cfg, res, rows, chk, out = quick
    assert len(chk) >= 9
    assert all(c["passed"] for c in chk), [c for c in chk if not c["passed"]]
    assert len(rows) > 10


def test_quadratic_rates_against_theory(quick):
    q = quick[1]["quad"]
    # GD with step 2/(L+mu) is exactly ((kappa-1)/(kappa+1))^t in the slowest modes
    np.testing.assert_allclose(q["rate"]["sgd"], q["rate_theory"]["sgd"], rtol=1e-3)
    # heavy ball: close to sqrt-kappa theory and much faster than GD
    assert np.all(q["rate"]["momentum"] < q["rate"]["sgd"])
    steps_gd, steps_hb = q["steps_to_1e-6"]["sgd"], q["steps_to_1e-6"]["momentum"]
    assert np.all(np.diff(steps_gd) > 0) and np.all(np.diff(steps_hb) > 0)
    assert steps_gd[-1] / steps_hb[-1] > 30  # kappa = 1e4


def test_fit_rate_recovers_a_geometric_sequence():
    t = np.arange(200)
    assert abs(quadratic_study.fit_rate(t * np.log10(0.9)) - 0.9) < 1e-6
    assert quadratic_study.steps_to(t * np.log10(0.5), 1e-6) == 20  # 0.5^20 < 1e-6 <= 0.5^19


def test_adam_effective_step(quick):
    a = quick[1]["adam"]
    cons = int(np.argmin(a["sigmas"]))
    # |update| ~ lr for consistent gradients across four decades of gradient scale; per unit gradient ~ 1/scale
    np.testing.assert_allclose(a["step_rel"][:, cons], 1.0, atol=0.05)
    np.testing.assert_allclose(a["per_unit"][:, cons] * a["scales"], 1.0, rtol=0.1)


def test_outputs_written(quick):
    out = quick[4]
    (run_dir,) = list((out / "optimizers").iterdir())
    for name in ("optimizers_quadratic.png", "optimizers_rosenbrock.png", "optimizers_mnist1d.png",
                 "adam_effective_step.png", "table.md", "checks.json"):
        assert (run_dir / name).exists(), name

"""Teacher-student regression: targets from a known random network plus known noise."""
from __future__ import annotations

import numpy as np

from lossatlas import validate
from lossatlas.data.dataset import Dataset


def teacher_predict(teacher: dict, x: np.ndarray) -> np.ndarray:
    """Evaluate a teacher (as stored in ``meta["teacher"]``) without noise.

    Args:
      teacher: ``{"W": [D, O], "b": [O]}`` for a linear teacher, or
        ``{"W1": [D, H], "b1": [H], "W2": [H, O], "b2": [O]}`` for a tanh teacher.
      x: inputs ``[N, D]``.

    Returns:
      The noiseless targets ``[N, O]`` (float64).
    """
    x = np.asarray(x, np.float64)
    if "W1" in teacher:
        h = np.tanh(x @ teacher["W1"] + teacher["b1"])
        return h @ teacher["W2"] + teacher["b2"]
    return x @ teacher["W"] + teacher["b"]


def load_teacher_student(*, num_train: int = 4000, num_test: int = 1000, input_dim: int = 20,
                         output_dim: int = 1, hidden: int = 0, noise_std: float = 0.1,
                         seed: int = 0) -> Dataset:
    """Regression data ``y = teacher(x) + noise_std * eps`` with a known teacher.

    ``x ~ N(0, I)`` and ``eps ~ N(0, I)``, independently for train and test (test
    targets are noisy too). The teacher is linear (``hidden=0``: ``x @ W + b``)
    or one tanh hidden layer (``tanh(x @ W1 + b1) @ W2 + b2``), with weights
    ``N(0, 1/fan_in)`` and biases ``N(0, 0.1**2)``, so outputs have O(1) scale.

    ``meta["best_mse"] = noise_std**2`` is the Bayes-optimal value of the squared
    error averaged over examples *and* output elements (``mean((f(x) - y)**2)``):
    no predictor of ``y`` from ``x`` can do better in expectation, and the
    teacher itself attains it.

    Args:
      num_train, num_test: numbers of examples (>= 0; train >= 1).
      input_dim, output_dim: dimensions D and O (>= 1).
      hidden: teacher width; 0 for a linear teacher (>= 0).
      noise_std: standard deviation of the additive Gaussian noise (>= 0).
      seed: seed for ``numpy.random.default_rng`` (>= 0).

    Returns:
      A ``Dataset`` with float32 ``x [N, D]``, float32 ``y [N, O]``,
      ``task="regression"``, ``num_classes=0`` and ``meta`` with keys
      ``noise_var``, ``best_mse``, ``noise_std``, ``hidden`` and ``teacher``
      (numpy weights, usable with :func:`teacher_predict`).
    """
    num_train = validate.integer("", "num_train", num_train, 1)
    num_test = validate.integer("", "num_test", num_test, 0)
    input_dim = validate.integer("", "input_dim", input_dim, 1)
    output_dim = validate.integer("", "output_dim", output_dim, 1)
    hidden = validate.integer("", "hidden", hidden, 0)
    noise_std = validate.number("", "noise_std", noise_std, 0.0)
    seed = validate.integer("", "seed", seed, 0)

    rng_teacher, rng_train, rng_test = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    if hidden == 0:
        teacher = {"W": rng_teacher.normal(0, 1 / np.sqrt(input_dim), (input_dim, output_dim)),
                   "b": rng_teacher.normal(0, 0.1, (output_dim,))}
    else:
        teacher = {"W1": rng_teacher.normal(0, 1 / np.sqrt(input_dim), (input_dim, hidden)),
                   "b1": rng_teacher.normal(0, 0.1, (hidden,)),
                   "W2": rng_teacher.normal(0, 1 / np.sqrt(hidden), (hidden, output_dim)),
                   "b2": rng_teacher.normal(0, 0.1, (output_dim,))}

    def sample(rng, n):
        x = rng.standard_normal((n, input_dim)).astype(np.float32)
        y = teacher_predict(teacher, x) + noise_std * rng.standard_normal((n, output_dim))
        return x, y.astype(np.float32)

    x_train, y_train = sample(rng_train, num_train)
    x_test, y_test = sample(rng_test, num_test)
    return Dataset(
        name="teacher_student", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=0, task="regression",
        meta={"noise_var": noise_std**2, "best_mse": noise_std**2, "noise_std": noise_std,
              "hidden": hidden, "teacher": teacher})

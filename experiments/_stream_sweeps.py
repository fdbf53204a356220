"""Shared pieces of the continual-learning experiments (forgetting_scenarios, fisher_estimators).

* :func:`make_streams`: a dataset cut into a training part, a held-out validation part (from
  the training examples) and the test set, turned into task streams of every requested
  scenario. The streams of one protocol share their shapes: the domain-IL stream's output
  layer is padded to the width of the task/class-IL streams with units that are masked out
  everywhere (their logits are -1e9 before the softmax, so they have zero probability and
  zero gradient; the model is the same function as a network with only the shared units), so
  one compiled program trains all scenarios, stacked as a vmap axis.
* :func:`sweep`: one ``lossatlas.continual.run_stream`` program per strategy (or stack of
  strategies, ``cl.stack_strategies``) over scenarios x (members x) lambdas x seeds, with the
  validation streams evaluated in the same program; it returns the test accuracy matrix ``R``,
  the accuracy at initialisation and the final average accuracy on the validation set (for
  choosing lambda), and optionally the parameters after the first task.
* :func:`select`: the lambda with the best mean-over-seeds final validation accuracy (never one
  where a seed diverged, unless every lambda did).
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lossatlas import continual as cl
from lossatlas import data as data_lib
from lossatlas import keys


def split_validation(ds: data_lib.Dataset, fraction: float, key) -> tuple[data_lib.Dataset, data_lib.Dataset]:
    """``(train_and_test, train_and_val)``: a random ``fraction`` of the training set held out.

    Both datasets share the reduced training set; the first keeps the test set, the second has
    the held-out examples in its test slot (so a stream built from it with the same key has
    the validation examples where the first has the test examples).
    """
    n = len(ds.y_train)
    perm = keys.numpy_rng(key).permutation(n)
    n_val = int(round(fraction * n))
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    test = dataclasses.replace(ds, x_train=ds.x_train[tr], y_train=ds.y_train[tr])
    valset = dataclasses.replace(test, x_test=ds.x_train[val], y_test=ds.y_train[val])
    return test, valset


def pad_outputs(stream: cl.Stream, k: int) -> cl.Stream:
    """The stream with ``k - K`` extra output units, masked out for every task (same model function)."""
    extra = k - stream.num_outputs
    if extra < 0:
        raise ValueError(f"pad_outputs: k={k} is smaller than the stream's {stream.num_outputs} outputs")
    masks = np.concatenate([stream.masks, np.zeros(stream.masks.shape[:2] + (extra,), bool)], axis=-1)
    return dataclasses.replace(stream, masks=masks, num_outputs=k)


def make_streams(protocol: str, ds: data_lib.Dataset, scenarios, key, *, num_tasks: int,
                 val_fraction: float, num_train: int | None, num_test: int | None, num_val: int | None):
    """Test and validation streams of every scenario of one protocol, padded to one output width.

    Args:
      protocol: ``"split"`` (2 classes per task) or ``"permuted"``.
      ds: the dataset.
      scenarios: tuple of scenario names.
      key: PRNG key; the class order / permutations and the validation split come from it.
      num_tasks: number of tasks (split: at most ``C // 2``; the first ``2 * num_tasks`` classes of
        the drawn class order).
      val_fraction: fraction of the training set held out for validation.
      num_train, num_test, num_val: per-task caps (``Stream.subset``; None = all).

    Returns:
      ``(streams, val_streams)``: lists in the order of ``scenarios``.
    """
    k_split, k_stream = jax.random.split(key)
    test_ds, val_ds = split_validation(ds, val_fraction, k_split)

    def build(d, scenario):
        if protocol == "split":
            return cl.split(d, k_stream, classes_per_task=2, num_tasks=num_tasks, scenario=scenario)
        return cl.permuted(d, num_tasks, k_stream, scenario=scenario)

    def cap(s, n_test):
        return s.subset(num_train=min(num_train or s.num_train, s.num_train),
                        num_test=min(n_test or s.num_test, s.num_test))

    streams = [cap(build(test_ds, s), num_test) for s in scenarios]
    vals = [cap(build(val_ds, s), num_val) for s in scenarios]
    k = max(s.num_outputs for s in streams)
    return [pad_outputs(s, k) for s in streams], [pad_outputs(s, k) for s in vals]


def sweep(streams, val_streams, strategy: cl.Strategy, config: cl.StreamConfig, key, seeds: int, lams,
          first_task_params: bool = False) -> dict:
    """Train ``strategy`` on every stream x (member x) lambda x seed: one ``cl.run_stream`` program.

    Args:
      streams: list of same-shaped streams (the leading axis ``D``).
      val_streams: matching streams whose test slot holds the validation examples.
      strategy: a strategy, or a stack of them (``cl.stack_strategies``: a member axis ``M``).
      config: as for :func:`lossatlas.continual.run_stream`.
      key: PRNG key; seed ``i`` uses ``jax.random.split(key, seeds)[i]`` (as ``run_stream``).
      seeds: ``S``.
      lams: the ``L`` lambda values.
      first_task_params: also return the parameters at the end of task 0 (``params0``).

    Returns:
      numpy dict with leading axes ``[D, (M,) L, S]``: ``R [.., T, T]``, ``init_acc [.., T]``,
      ``val_acc`` (final average accuracy over the tasks' validation sets; NaN for a run that
      diverged), ``diverged_at`` (step, -1: never), ``lams [L]`` and, if asked, ``params0``.
    """
    config = config.replace(keep_params=first_task_params, eval_every=0)
    out = cl.run_stream(list(streams), strategy, config, key=key, seeds=seeds, lams=list(lams),
                        validation=list(val_streams))
    res = {k: out[k] for k in ("R", "init_acc", "diverged_at")}
    res["val_acc"] = cl.average_accuracy(out["val_R"])  # NaN where the run diverged (its rows are NaN)
    if first_task_params:
        lead = (slice(None),) * (out["R"].ndim - 2)  # [D, (M,) L, S], then the task axis
        res["params0"] = jax.tree_util.tree_map(lambda p: p[lead + (0,)], out["params"])
    res["lams"] = np.asarray(lams, np.float64)
    return res


def select(val_acc, lams, exclude_zero: bool = True) -> int:
    """Index of the lambda with the best mean-over-seeds validation accuracy (``val_acc [L, S]``).

    ``exclude_zero``: lambda = 0 (no regularisation) is not a candidate, as in a grid search
    over a method's strength (the unregularised run is reported as the baseline instead).
    """
    lams = np.asarray(lams)
    score = np.asarray(val_acc).mean(-1).astype(float)
    score = np.where(np.isnan(score), -np.inf, score)  # a lambda where a seed diverged is not chosen
    if exclude_zero and (lams > 0).any():
        score = np.where(lams > 0, score, -np.inf)
    return int(np.argmax(score))

"""Shared pieces of the continual-learning experiments (forgetting_scenarios, fisher_estimators).

* :func:`make_streams`: a dataset cut into a training part, a held-out validation part (from
  the training examples) and the test set, turned into task streams of every requested
  scenario. The streams of one protocol share their shapes: the domain-IL stream's output
  layer is padded to the width of the task/class-IL streams with units that are masked out
  everywhere (their logits are -1e9 before the softmax, so they have zero probability and
  zero gradient; the model is the same function as a network with only the shared units), so
  one compiled program trains all scenarios, stacked as a vmap axis.
* :func:`sweep`: one compiled ``jit(vmap_scenario(vmap_lambda(vmap_seed(run))))`` per
  strategy, built from the library's pure :meth:`lossatlas.continual.StreamProgram.run`;
  it returns the test accuracy matrix ``R``, the accuracy at initialisation and the final
  average accuracy on the validation set (for choosing lambda), and optionally the
  parameters after the first task.
* :func:`select`: the lambda with the best mean-over-seeds final validation accuracy (never one
  where a seed diverged, unless every lambda did).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import continual as cl
from lossatlas import data as data_lib
from lossatlas import memory


def split_validation(ds: data_lib.Dataset, fraction: float, key) -> tuple[data_lib.Dataset, data_lib.Dataset]:
    """``(train_and_test, train_and_val)``: a random ``fraction`` of the training set held out.

    Both datasets share the reduced training set; the first keeps the test set, the second has
    the held-out examples in its test slot (so a stream built from it with the same key has
    the validation examples where the first has the test examples).
    """
    n = len(ds.y_train)
    perm = np.random.default_rng(np.asarray(jax.random.key_data(key) if jax.dtypes.issubdtype(
        key.dtype, jax.dtypes.prng_key) else key).astype(np.uint32).ravel().tolist()).permutation(n)
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


def _stack(trees):
    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def sweep(streams, val_streams, strategy: cl.Strategy, config: cl.StreamConfig, key, seeds: int, lams,
          first_task_params: bool = False, data_extra=None) -> dict:
    """Train ``strategy`` on every stream x lambda x seed as one compiled program.

    Args:
      streams: list of same-shaped streams (the scenario axis ``D``); the program is built
        from the first, the others enter as data.
      val_streams: matching streams whose test slot holds the validation examples.
      strategy, config: as for :func:`lossatlas.continual.run_stream`.
      key: PRNG key; seed ``i`` uses ``jax.random.split(key, seeds)[i]`` (as ``run_stream``).
      seeds: ``S``.
      lams: the ``L`` lambda values.
      first_task_params: also return the parameters at the end of task 0 (``[D, L, S, ...]``).
      data_extra: optional list of ``D`` dicts of arrays added to each row's device data
        (a strategy reads them from ``ctx.data``, e.g. a per-row method index).

    Returns:
      numpy dict: ``R [D, L, S, T, T]``, ``init_acc [D, L, S, T]``, ``val_acc [D, L, S]`` (final
      average accuracy over the tasks' validation sets; NaN for a run that diverged),
      ``diverged_at [D, L, S]`` (step, -1: never), ``lams [L]`` and, if asked, ``params0``.
      The program's memory is estimated first (``lossatlas.memory.run_vmapped``): if it would
      not fit it runs in chunks (same numbers); if one member does not fit, a one-line
      ``MemoryLimitError`` says what to lower.
    """
    config = config.replace(keep_params=True, eval_every=0)
    prog = cl.program(streams[0], strategy, config)
    t = streams[0].num_tasks
    rows = [prog.host_data() if i == 0 else cl.program(s, strategy, config).host_data() for i, s in enumerate(streams)]
    if data_extra is not None:
        if len(data_extra) != len(streams):
            raise ValueError(f"sweep: data_extra has {len(data_extra)} entries for {len(streams)} streams")
        rows = [{**r, **e} for r, e in zip(rows, data_extra)]
    data = _stack(rows)
    val = _stack([{"x": v.x_test.astype(np.float32), "y": v.y_test.astype(np.int32)} for v in val_streams])

    def one(k, lam, dv):
        d, v = dv
        out = prog.run(k, lam, d)
        last = jax.tree_util.tree_map(lambda p: p[-1], out["params"])
        acc = prog.evaluate(last, jnp.int32(t - 1), {**d, "x_test": v["x"], "y_test": v["y"]})
        res = {"R": out["R"], "init_acc": out["init_acc"], "diverged_at": out["diverged_at"],
               "val_acc": jnp.where(out["diverged_at"] < 0, jnp.mean(acc), jnp.nan)}
        if first_task_params:
            res["params0"] = jax.tree_util.tree_map(lambda p: p[0], out["params"])
        return res

    f = jax.vmap(one, (0, None, None))
    f = jax.vmap(f, (None, 0, None))
    f = jax.jit(jax.vmap(f, (None, None, 0)))
    keys = jax.random.split(key, seeds)
    lam_arr = jnp.asarray(np.asarray(lams, np.float32).reshape(-1))
    # XLA's memory estimate first: rows, then lambdas, then seeds run in chunks if it would not fit
    out = jax.device_get(memory.run_vmapped(f, (keys, lam_arr, (data, val)), (2, 1, 0), what="stream sweep",
                                            lower="seeds, lambdas, scenarios/methods, "
                                            "fisher_chunk, fisher_examples, batch_size, widths or num_test"))
    out = {k: (jax.tree_util.tree_map(np.asarray, v) if k == "params0" else np.asarray(v)) for k, v in out.items()}
    out["lams"] = np.asarray(lams, np.float64)
    return out


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

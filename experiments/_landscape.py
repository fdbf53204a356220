"""Shared pieces of the loss-landscape experiments (landscape_interpolation,
landscape_filter_norm, mode_connectivity): training with parameter checkpoints in one
compiled program, and batch-mean loss / accuracy functions of a params pytree.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import train
from lossatlas.train import TrainConfig

from . import kit


@functools.lru_cache(maxsize=None)
def dataset(name: str = "mnist1d"):
    """``lossatlas.data.load(name)``, one object per process: programs are cached per dataset
    object, so experiments that train the same config on it share their compiled programs."""
    return kit.load(name)


def objective_fns(config: TrainConfig, ds):
    """``(loss_fn, acc_fn)``, each ``f(params, (x, y)) -> batch mean`` for a config's model
    and loss on ``ds`` (evaluation mode; the model must have no state such as batch statistics)."""
    fns = train.model_fns(config, ds)

    def loss_fn(params, batch):
        return fns.loss(params, {}, batch)

    def acc_fn(params, batch):
        return jnp.mean(fns.correct(fns.apply(params, {}, batch[0]), batch[1]))

    return loss_fn, acc_fn


def split_data(ds, num_train: int | None = None, num_test: int | None = None):
    """``(train, test)`` as ``(x, y)`` device arrays, the first ``num_*`` examples (None: all)."""
    tr = (jnp.asarray(ds.x_train[:num_train]), jnp.asarray(ds.y_train[:num_train]))
    te = (jnp.asarray(ds.x_test[:num_test]), jnp.asarray(ds.y_test[:num_test]))
    return tr, te


def train_checkpoints(config: TrainConfig, ds, key, seeds: int, num_checkpoints: int, init_eval: bool = True):
    """``lossatlas.train.sweep`` over ``seeds`` seeds (key ``key``), keeping the parameters at
    ``num_checkpoints + 1`` evenly spaced epochs (0 = initialisation, last = the end) through
    the engine's :class:`lossatlas.train.Checkpoints` hook, inside the same compiled program.

    Args:
      config: the run's :class:`TrainConfig`; ``epochs`` must be a multiple of ``num_checkpoints``.
      ds: the dataset.
      key: the sweep's key (seed ``i`` uses ``jax.random.split(key, seeds)[i]``).
      seeds: runs.
      num_checkpoints: parameter snapshots after the initial one (>= 1).
      init_eval: also evaluate the initial parameters on the whole training set.

    Returns:
      ``(checkpoints, history)``: params pytree with leading axes ``[S, C+1]``, and the sweep's
      history as numpy arrays (per-epoch ``test_loss``, ``test_acc``, ``train_loss``,
      ``train_acc`` ``[S, epochs]``, ``diverged_at`` ``[S]``, ...) plus ``init_train_loss``,
      ``init_train_acc`` ``[S]`` with ``init_eval``.
    """
    epochs = config.epochs
    if num_checkpoints < 1 or epochs % num_checkpoints:
        raise ValueError(f"epochs ({epochs}) must be a positive multiple of num_checkpoints ({num_checkpoints})")
    at = tuple(range(0, epochs + 1, epochs // num_checkpoints))
    _, hist = train.sweep(config, ds, key=key, seeds=seeds, checkpoints=train.Checkpoints(epochs=at))
    ckpts = jax.device_get(hist.pop("checkpoints")["params"])
    hist = {k: np.asarray(v) for k, v in jax.device_get(hist).items()}
    if init_eval:
        loss_fn, acc_fn = objective_fns(config, ds)
        batch = (jnp.asarray(ds.x_train), jnp.asarray(ds.y_train))
        p0 = take(ckpts, (slice(None), 0))
        hist["init_train_loss"] = np.asarray(jax.vmap(lambda p: loss_fn(p, batch))(p0))
        hist["init_train_acc"] = np.asarray(jax.vmap(lambda p: acc_fn(p, batch))(p0))
    return ckpts, hist


def take(tree, index):
    """``tree`` with every leaf indexed by ``index`` along the leading axes."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def t_half_width(x, axis: int = -1, level: float = 0.95):
    """Half-width of the two-sided ``level`` Student-t interval of the mean of ``x`` over
    ``axis`` (its entries independent samples: seeds, pairs), ``n - 1`` degrees of freedom."""
    from scipy import stats

    x = np.asarray(x, np.float64)
    n = x.shape[axis]
    return stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=axis, ddof=1) / np.sqrt(n)


def t_interval(x, axis: int = -1, level: float = 0.95):
    """``(mean, lo, hi)`` over ``axis``: the mean and its two-sided Student-t interval
    (:func:`t_half_width`)."""
    x = np.asarray(x, np.float64)
    m, half = x.mean(axis=axis), t_half_width(x, axis, level)
    return m, m - half, m + half


def mean_bound(x, side: str, level: float = 0.95) -> float:
    """One-sided Student-t confidence bound (``level``, ``n - 1`` dof) on the mean of ``x``,
    whose entries are independent samples (seeds, pairs of minima): the lower bound for
    ``side="lower"``, the upper for ``side="upper"``. Needs at least 2 samples."""
    from scipy import stats

    x = np.asarray(x, np.float64).ravel()
    if x.size < 2 or side not in ("lower", "upper"):
        raise ValueError(f"mean_bound: needs >= 2 samples and side 'lower' or 'upper', got {x.size}, {side!r}")
    half = stats.t.ppf(level, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half if side == "lower" else x.mean() + half)

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

from lossatlas import data as data_lib
from lossatlas import devices
from lossatlas.train import Program


@functools.lru_cache(maxsize=None)
def dataset(name: str = "mnist1d"):
    """``lossatlas.data.load(name)``, one object per process: programs are cached per dataset
    object, so experiments that train the same config on it share their compiled programs."""
    return data_lib.load(name)


def objective_fns(prog: Program):
    """``(loss_fn, acc_fn)``, each ``f(params, (x, y)) -> batch mean`` for a program's model
    and loss (evaluation mode; the model must have no state such as batch statistics)."""

    def out(params, x):
        return prog.apply(params, {}, x, train=False)[0]

    def loss_fn(params, batch):
        return jnp.mean(prog.objective.per_example(out(params, batch[0]), batch[1]))

    def acc_fn(params, batch):
        return jnp.mean(prog.objective.correct(out(params, batch[0]), batch[1]))

    return loss_fn, acc_fn


def split_data(ds, num_train: int | None = None, num_test: int | None = None):
    """``(train, test)`` as ``(x, y)`` device arrays, the first ``num_*`` examples (None: all)."""
    tr = (jnp.asarray(ds.x_train[:num_train]), jnp.asarray(ds.y_train[:num_train]))
    te = (jnp.asarray(ds.x_test[:num_test]), jnp.asarray(ds.y_test[:num_test]))
    return tr, te


def train_checkpoints(prog: Program, keys, num_checkpoints: int, init_eval: bool = True):
    """Train one run per key (vmapped; the key axis sharded over the CPU cores where it
    divides) with the library's training loop, keeping the parameters at
    ``num_checkpoints + 1`` evenly spaced moments (0 = initialisation, last = the end).

    Run ``i`` is the run ``lossatlas.train.sweep`` makes from key ``keys[i]``: same init,
    same shuffles, same steps.

    Args:
      prog: a :class:`lossatlas.train.Program`; ``prog.config.epochs`` must be a multiple
        of ``num_checkpoints``.
      keys: ``[S]`` PRNG keys.
      num_checkpoints: parameter snapshots after the initial one (static int >= 1).
      init_eval: also evaluate the initial parameters on the training set (needs
        ``prog.config.eval_train``).

    Returns:
      ``(checkpoints, history)``: params pytree with leading axes ``[S, C+1]``, and per-epoch
      ``test_loss``, ``test_acc`` (and ``train_loss``, ``train_acc`` with ``eval_train``)
      ``[S, epochs]`` plus ``init_train_loss``, ``init_train_acc`` (with ``init_eval``) and
      ``diverged_at`` ``[S]`` as numpy arrays.
    """
    epochs = prog.config.epochs
    if num_checkpoints < 1 or epochs % num_checkpoints:
        raise ValueError(f"epochs ({epochs}) must be a positive multiple of num_checkpoints ({num_checkpoints})")
    mesh = devices.seed_mesh(keys.shape[0])
    ckpts, hist = _train_program(prog, num_checkpoints, init_eval)(devices.shard_leading(keys, mesh), prog.device_data(mesh))
    return ckpts, {k: np.asarray(v) for k, v in jax.device_get(hist).items()}


@functools.lru_cache(maxsize=16)
def _train_program(prog: Program, num_checkpoints: int, init_eval: bool):
    """The jitted, vmapped ``keys, data -> (checkpoints, history)`` (cached: experiments that
    train the same config share one compile)."""
    per = prog.config.epochs // num_checkpoints
    hp = prog.hparams()
    names = ("test_loss", "test_acc") + (("train_loss", "train_acc") if prog.config.eval_train else ())

    def one(key, data):
        state = prog.init(key, hp)
        init_metrics = prog.evaluate(state.params, state.model_state, data, "train") if init_eval else {}

        def chunk(st, _):
            st, hist = prog.run_epochs(st, hp, data, per)
            return st, (st.params, {k: hist[k] for k in names})

        final, (ckpts, hist) = jax.lax.scan(chunk, state, None, length=num_checkpoints)
        ckpts = jax.tree_util.tree_map(lambda p0, p: jnp.concatenate([p0[None], p]), state.params, ckpts)
        hist = {k: v.reshape(-1) for k, v in hist.items()}
        hist.update({f"init_{k}": v for k, v in init_metrics.items()})
        hist["diverged_at"] = final.diverged_at
        return ckpts, hist

    return jax.jit(jax.vmap(one, (0, None)))


def take(tree, index):
    """``tree`` with every leaf indexed by ``index`` along the leading axes."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)

"""The public entry points of the engine: ``program`` (the cached :class:`Program` of a
config and a dataset), ``init`` (a run's initial state) and ``make_train`` (one compiled
run, with optional checkpoints and probes)."""
from __future__ import annotations

import functools
from typing import Mapping

import numpy as np

from lossatlas import keys as keys_lib
from lossatlas.data import Dataset
from lossatlas.train import hooks as hooks_lib
from lossatlas.train.config import TrainConfig
from lossatlas.train.engine import Program
from lossatlas.train.state import TrainState


@functools.lru_cache(maxsize=32)
def program(config: TrainConfig, dataset: Dataset) -> Program:
    """The (cached) :class:`Program` for a config and a dataset object (library use: it hands
    out the engine's internals; studies use make_train, sweep, init and model_fns)."""
    return Program(config, dataset)


def init(config: TrainConfig, dataset: Dataset, key) -> TrainState:
    """The initial :class:`TrainState` of a run: what ``make_train(config, dataset)(key)``
    starts from (parameters scaled by ``init_scale``, fresh optimizer state, step 0).

    Args:
      config: a :class:`TrainConfig`.
      dataset: the data (its first example fixes the input shape).
      key: the run's PRNG key (the same key given to ``train``).

    Returns:
      The initial :class:`TrainState`.
    """
    keys_lib.require_key("init", key)
    prog = program(config, dataset)
    return prog.compiled((), 0)[0](key, {})[0]


def make_train(config: TrainConfig, dataset: Dataset, *, checkpoints: hooks_lib.Checkpoints | None = None,
               probes: Mapping | None = None, probe_every: int | None = None, return_init: bool = False,
               progress: bool = False):
    """Compile-once training function for one run.

    Args:
      config: a :class:`TrainConfig`.
      dataset: a :class:`lossatlas.data.Dataset` (moved to the device once).
      checkpoints: a :class:`lossatlas.train.Checkpoints`: keep the parameters and model
        state (and optionally the optimizer state) at those epochs or steps, stacked in
        ``history["checkpoints"]`` [K, ...], inside the same compiled program.
      probes: ``{name: probe}``: pure functions ``(params, model_state, batch, key) -> array``
        (or :class:`lossatlas.train.Probe` with state, see :mod:`lossatlas.train.probes`)
        evaluated after every ``probe_every`` steps on the minibatch just used; values in
        ``history["probes"][name]`` [num_probes, ...] (NaN once the run diverged);
        ``train.probe_steps`` holds the step count after which each ran.
      probe_every: steps between probes: a divisor of the steps per epoch, or a multiple of
        it whose epoch count divides ``epochs`` (default: once per epoch).
      return_init: ``train(key)`` also returns the initial state (a third element).
      progress: show a tqdm progress bar; the run then executes in equal chunks of
        epochs (the largest divisor of ``epochs`` not above ``config.chunk_epochs``,
        default ``ceil(epochs / 20)``, so one compile). Its numbers equal the fused
        program's up to floating-point reassociation (batch-norm running statistics
        under Adam can amplify it to ~1e-3 in evaluation loss).

    Returns:
      ``train(key) -> (TrainState, history)`` where history has per-step
      ``loss`` and ``grad_norm`` [epochs * steps_per_epoch] (entry ``t``: the minibatch loss
      and gradient norm at the parameters *before* update ``t``) and per-epoch
      ``test_loss``, ``test_acc``, ``train_loss``, ``train_acc`` [epochs]
      (accuracies only for classification/language; train metrics only when
      ``config.eval_train``), ``diverged_at`` (the step where the loss or
      gradient first became NaN/Inf, or -1; entries from then on are NaN and the
      state is frozen at its last finite values), and ``checkpoints`` / ``probes``
      when asked for. The function has attributes ``program``, ``steps_per_epoch``,
      ``checkpoint_steps`` and ``probe_steps``. Calling it raises
      ``lossatlas.memory.MemoryLimitError`` if XLA's memory estimate of the run
      exceeds the available memory.
    """
    prog = program(config, dataset)
    hooks = hooks_lib.resolve(checkpoints, probes, probe_every, steps_per_epoch=prog.steps_per_epoch,
                              epochs=config.epochs)

    def train(key):
        keys_lib.require_key("make_train", key)
        return prog.execute(key, {}, levels=0, progress=progress, hooks=hooks, return_init=return_init)

    train.program = prog
    train.steps_per_epoch = prog.steps_per_epoch
    train.checkpoint_steps = np.asarray(hooks.ckpt_steps, np.int64)
    train.probe_steps = hooks.probe_steps(prog.total_steps)
    return train

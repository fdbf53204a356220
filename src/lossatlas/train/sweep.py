"""Seeds and hyperparameter grids as vmap axes of one compiled program."""
from __future__ import annotations

import itertools
import numbers
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas.data import Dataset
from lossatlas.keys import require_key
from lossatlas.train.config import OPTIMIZER_FIELDS, SWEEPABLE, TrainConfig
from lossatlas.train.run import program
from lossatlas.train.hooks import Checkpoints, resolve
from lossatlas.train.objective import DEFAULT_LOSS


def check_grid_field(config: TrainConfig, dataset: Dataset, name: str) -> None:
    """Refuse a grid axis that cannot change the run (a silent no-op sweep)."""
    if name in ("momentum", "b1", "b2", "eps") and name not in OPTIMIZER_FIELDS[config.optimizer]:
        users = [o for o, fields in OPTIMIZER_FIELDS.items() if name in fields]
        raise ValueError(f"sweep: grid field {name!r} has no effect with optimizer={config.optimizer!r}; "
                         f"it is used by {', '.join(users)}")
    loss = config.loss or DEFAULT_LOSS[dataset.task]
    if name == "label_smoothing" and loss != "cross_entropy":
        raise ValueError(f"sweep: grid field 'label_smoothing' has no effect with loss={loss!r}; "
                         f"it is used by cross_entropy")


def seed_keys(key, seeds: int):
    """The per-seed keys `sweep` uses: ``jax.random.split(key, seeds)``."""
    return jax.random.split(key, seeds)


def sweep(config: TrainConfig, dataset: Dataset, *, key, seeds: int = 1,
          grid: Mapping[str, Sequence[float]] | None = None, checkpoints: Checkpoints | None = None,
          probes: Mapping | None = None, probe_every: int | None = None, return_init: bool = False,
          progress: bool = False):
    """Train every (grid point, seed) pair at once, as one compiled program.

    Seed ``i`` uses ``jax.random.split(key, seeds)[i]``, so member ``[..., i]``
    equals ``make_train(config_at_that_point, dataset)(that_key)`` up to
    floating-point reassociation across the vmapped batch (batch-norm running
    statistics under Adam can amplify it to ~1e-3 in evaluation loss).

    Args:
      config: base :class:`TrainConfig`.
      dataset: the data, shared by all members (moved to the device once).
      seeds: number of seeds (>= 1).
      grid: ``{field: [values...]}`` over numeric fields in ``SWEEPABLE``
        (learning_rate, weight_decay, momentum, b1, b2, eps, init_scale,
        label_smoothing, clip_norm, clip_value); the full Cartesian product is run.
        A field the run does not use is refused (momentum only for momentum /
        nesterov, b1 / b2 for adam / adamw, eps for adam, adamw, rmsprop, adagrad,
        label_smoothing for cross_entropy; see ``OPTIMIZER_FIELDS``).
      key: PRNG key (required: split into the per-seed keys).
      checkpoints, probes, probe_every: as in :func:`lossatlas.train.make_train`, for every
        member (checkpoints ``[..., K, ...]`` and probes ``[..., num_probes, ...]`` after the
        grid and seed axes).
      return_init: also return the initial states (a third element, same leading axes).
      progress: show a progress bar (the run then executes in chunks of epochs).

    Returns:
      ``(state, history)``: pytrees whose arrays have leading axes
      ``[len(grid[f1]), len(grid[f2]), ..., seeds]`` (grid fields in the order
      given), followed by the shapes of a single run.

    Raises:
      lossatlas.memory.MemoryLimitError: XLA's memory estimate of even one grid point
        with the smallest seed chunk exceeds the available memory (the one-line
        message says what to lower). A program that fits only in parts runs in equal
        chunks of grid points, then of seeds, with the same numbers (see
        ``lossatlas.memory``; ``LOSSATLAS_MEMORY_LIMIT`` overrides the cap).
    """
    if isinstance(seeds, (bool, np.bool_)) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ValueError(f"sweep: seeds must be a positive integer, got {seeds!r}")
    seeds = int(seeds)
    grid = dict(grid or {})
    for name, values in grid.items():
        if name not in SWEEPABLE:
            raise ValueError(f"sweep: grid field {name!r} is not sweepable; sweepable: {', '.join(SWEEPABLE)}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) == 0:
            raise ValueError(f"sweep: grid[{name!r}] must be a non-empty list of numbers")
        for k, v in enumerate(values):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
                raise ValueError(f"sweep: grid[{name!r}][{k}] must be a number, got {v!r}")
            config.replace(**{name: float(v)})  # validates the range, naming the field
        check_grid_field(config, dataset, name)
    keys = seed_keys(require_key("sweep", key), seeds)
    prog = program(config, dataset)
    hooks = resolve(checkpoints, probes, probe_every, steps_per_epoch=prog.steps_per_epoch, epochs=config.epochs)
    if not grid:
        return prog.execute(keys, {}, levels=1, progress=progress, desc=f"{config.model} x{seeds} seeds",
                            hooks=hooks, return_init=return_init)
    names = list(grid)
    points = list(itertools.product(*[grid[n] for n in names]))
    grid_hp = {n: jnp.asarray([p[i] for p in points], jnp.float32) for i, n in enumerate(names)}
    shape = tuple(len(grid[n]) for n in names)
    out = prog.execute(keys, grid_hp, levels=2, progress=progress, hooks=hooks, return_init=return_init,
                       desc=f"{config.model} x{len(points)} points x{seeds} seeds")
    unflat = lambda x: x.reshape(shape + x.shape[1:])  # noqa: E731
    return tuple(jax.tree_util.tree_map(unflat, part) for part in out)


def grid_points(grid: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Coordinates of every grid cell, each array shaped like the sweep's grid axes."""
    names = list(grid)
    mesh = np.meshgrid(*[np.asarray(grid[n], float) for n in names], indexing="ij")
    return dict(zip(names, mesh))

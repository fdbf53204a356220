"""Engine hooks: checkpoints and probes inside the compiled training program.

A user attaches a measurement to training without touching the engine:

* :class:`Checkpoints` keeps the parameters (and model state, optionally the optimizer
  state) at chosen epochs or steps, stacked along a new leading axis of
  ``history["checkpoints"]``;
* a *probe* is a pure function ``(params, model_state, batch, key) -> array`` that the scan
  evaluates after every ``probe_every`` optimizer steps, on the minibatch of the step just
  taken; its values are stacked in ``history["probes"][name]``. A :class:`Probe` with
  ``init``/``update`` carries its own state between calls (e.g. a warm-started eigenvector,
  see :mod:`lossatlas.train.probes`).

Both run inside the same ``lax.scan`` (and ``vmap`` over seeds and grid points) as the
training steps: nothing returns to Python. Example::

    fns = train.model_fns(config, dataset)
    run = train.make_train(config, dataset,
                           checkpoints=train.Checkpoints(epochs=(0, 5, 10)),
                           probes={"lambda_max": train.probes.lambda_max(fns.loss)},
                           probe_every=10)
    state, hist = run(key)
    hist["checkpoints"]["params"]       # [3, ...]: init, after epoch 5, after epoch 10
    hist["probes"]["lambda_max"]        # [total_steps // 10]
    run.probe_steps                     # the step count after which each probe ran
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossatlas import validate

_PROBE, _PROBE_INIT = 2, 3  # fold_in tags of probe keys (0: shuffles, 1: steps; see TrainState)


class Probe(NamedTuple):
    """A measurement with state carried between calls (optax's init/update shape).

    Attributes:
      init: ``(params, key) -> probe_state``.
      update: ``(probe_state, params, model_state, batch, key) -> (value, probe_state)``;
        ``batch`` is ``(x, y)`` of the minibatch of the step just taken.
    """

    init: Callable[[Any, jax.Array], Any]
    update: Callable[..., tuple[Any, Any]]


def as_probe(fn) -> Probe:
    """A :class:`Probe` from a plain ``(params, model_state, batch, key) -> array`` function."""
    if isinstance(fn, Probe):
        return fn
    if not callable(fn):
        raise ValueError(f"probes: each probe must be a function (params, model_state, batch, key) -> array "
                         f"or a lossatlas.train.Probe, got {type(fn).__name__}")
    return Probe(lambda params, key: (), lambda st, params, model_state, batch, key: (
        fn(params, model_state, batch, key), st))


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """Where to keep the training state, inside the compiled program.

    Attributes:
      epochs: epoch counts after which to keep the state (0: the initial state), or
      steps: optimizer-step counts instead (0: the initial state). Give exactly one.
      opt_state: also keep the optimizer state (memory: one more copy per checkpoint).
    """

    epochs: tuple | None = None
    steps: tuple | None = None
    opt_state: bool = False

    def __post_init__(self):
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("Checkpoints: give exactly one of epochs=(...) or steps=(...), "
                             f"got epochs={self.epochs!r}, steps={self.steps!r}")
        field = "epochs" if self.epochs is not None else "steps"
        values = validate.int_tuple("Checkpoints", field, getattr(self, field), lo=0)
        if list(values) != sorted(set(values)):
            validate.fail("Checkpoints", field, values, "strictly increasing")
        object.__setattr__(self, field, values)
        object.__setattr__(self, "opt_state", validate.boolean("Checkpoints", "opt_state", self.opt_state))


@dataclasses.dataclass(frozen=True)
class Hooks:
    """Checkpoints and probes resolved against one program's shape (hashable: it is part of
    the compiled program's cache key). Build with :func:`resolve`."""

    ckpt_steps: tuple = ()
    ckpt_at_epoch_end: bool = True
    ckpt_opt_state: bool = False
    probes: tuple = ()          # ((name, Probe), ...)
    probe_every: int = 0        # steps
    probe_block: int = 0        # steps per probe inside an epoch (probe_every divides an epoch)
    probe_group: int = 1        # epochs per probe (probe_every a multiple of an epoch)

    @property
    def active(self) -> bool:
        return bool(self.ckpt_steps or self.probes)

    def probe_steps(self, total_steps: int) -> np.ndarray:
        """The optimizer-step counts after which the probes ran."""
        if not self.probes:
            return np.zeros((0,), np.int64)
        return np.arange(1, total_steps // self.probe_every + 1) * self.probe_every


NO_HOOKS = Hooks()


def resolve(checkpoints: Checkpoints | None, probes: Mapping[str, Any] | None, probe_every: int | None,
            *, steps_per_epoch: int, epochs: int) -> Hooks:
    """Check ``checkpoints``/``probes``/``probe_every`` against a run's length.

    Args:
      checkpoints: a :class:`Checkpoints` or None.
      probes: ``{name: probe}`` (functions or :class:`Probe`) or None.
      probe_every: steps between probes; it must divide ``steps_per_epoch`` or be a
        multiple of it that divides the run (default: ``steps_per_epoch``, once per epoch).
      steps_per_epoch, epochs: the run's shape.

    Returns:
      A :class:`Hooks`.
    """
    total = steps_per_epoch * epochs
    out = {}
    if checkpoints is not None:
        if not isinstance(checkpoints, Checkpoints):
            raise ValueError(f"make_train: checkpoints must be a lossatlas.train.Checkpoints, "
                             f"got {type(checkpoints).__name__}")
        if checkpoints.epochs is not None:
            if checkpoints.epochs[-1] > epochs:
                validate.fail("Checkpoints", "epochs", checkpoints.epochs, f"within the run's {epochs} epochs")
            steps, at_end = tuple(e * steps_per_epoch for e in checkpoints.epochs), True
        else:
            if checkpoints.steps[-1] > total:
                validate.fail("Checkpoints", "steps", checkpoints.steps, f"within the run's {total} steps")
            steps, at_end = checkpoints.steps, all(s % steps_per_epoch == 0 for s in checkpoints.steps)
        out.update(ckpt_steps=steps, ckpt_at_epoch_end=at_end, ckpt_opt_state=checkpoints.opt_state)
    if probes:
        if not isinstance(probes, Mapping) or not all(isinstance(k, str) for k in probes):
            raise ValueError("make_train: probes must be a dict {name: probe}")
        every = steps_per_epoch if probe_every is None else validate.integer("make_train", "probe_every",
                                                                              probe_every, 1, total)
        if steps_per_epoch % every == 0:
            block, group = every, 1
        elif every % steps_per_epoch == 0 and epochs % (every // steps_per_epoch) == 0:
            block, group = steps_per_epoch, every // steps_per_epoch
        else:
            validate.fail("make_train", "probe_every", every,
                          f"a divisor of steps_per_epoch={steps_per_epoch}, or a multiple of it whose "
                          f"epoch count divides epochs={epochs}")
        out.update(probes=tuple((k, as_probe(v)) for k, v in sorted(probes.items())), probe_every=every,
                   probe_block=block, probe_group=group)
    elif probe_every is not None:
        raise ValueError("make_train: probe_every is set but no probes are given")
    return Hooks(**out)


# ---------------------------------------------------------------- inside the program
def init_state(hooks: Hooks, state) -> dict:
    """The hooks' part of the carry: checkpoint buffers (with the initial state written
    where step 0 is asked for) and each probe's state."""
    hs = {}
    if hooks.ckpt_steps:
        k = len(hooks.ckpt_steps)
        buf = jax.tree_util.tree_map(lambda x: jnp.zeros((k,) + jnp.shape(x), jnp.result_type(x)),
                                     _kept(hooks, state))
        hs["ckpt"] = write_checkpoint(hooks, buf, state)
    if hooks.probes:
        key = jax.random.fold_in(state.key, _PROBE_INIT)
        hs["probe"] = {name: p.init(state.params, jax.random.fold_in(key, i))
                       for i, (name, p) in enumerate(hooks.probes)}
    return hs


def _kept(hooks: Hooks, state) -> dict:
    kept = {"params": state.params, "model_state": state.model_state}
    if hooks.ckpt_opt_state:
        kept["opt_state"] = state.opt_state
    return kept


def write_checkpoint(hooks: Hooks, buf: dict, state) -> dict:
    """Write ``state`` into its slot of ``buf`` if ``state.step`` is a checkpoint step (one
    slot-sized update, no copy of the whole buffer)."""
    steps = jnp.asarray(hooks.ckpt_steps, jnp.int32)
    slot = jnp.clip(jnp.searchsorted(steps, state.step), 0, len(hooks.ckpt_steps) - 1)
    hit = steps[slot] == state.step
    return jax.tree_util.tree_map(lambda b, x: b.at[slot].set(jnp.where(hit, x, b[slot])), buf,
                                  _kept(hooks, state))


def run_probes(hooks: Hooks, hs: dict, state, batch) -> tuple[dict, dict]:
    """Evaluate every probe on ``state`` and ``batch``; NaN (float outputs) once diverged."""
    key = jax.random.fold_in(jax.random.fold_in(state.key, _PROBE), state.step)
    values, new = {}, {}
    for i, (name, p) in enumerate(hooks.probes):
        v, new[name] = p.update(hs["probe"][name], state.params, state.model_state, batch,
                                jax.random.fold_in(key, i))
        values[name] = jax.tree_util.tree_map(lambda a: _mask(jnp.asarray(a), state.diverged_at), v)
    return dict(hs, probe=new), values


def _mask(a, diverged_at):
    return jnp.where(diverged_at < 0, a, jnp.nan) if jnp.issubdtype(a.dtype, jnp.floating) else a

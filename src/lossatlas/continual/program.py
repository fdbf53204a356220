"""The compiled stream program: a whole task stream (tasks x epochs x minibatches) as one scan.

``run_stream(stream, strategy, config, key=..., seeds=S, lams=[...])`` trains every
(lambda, seed) pair at once: ``jit(vmap_lambda(vmap_seed(run)))``, with the seed axis sharded
over devices when there are several (``lossatlas.devices``). The jitted function is cached per
(stream object, strategy spec, config), so repeated calls do not recompile.

Inside one run::

    init params (model from lossatlas.models), optimiser (lossatlas.optim), strategy state
    acc0 = accuracy on every task at initialisation              # [T] (masks[0, j])
    scan over tasks t:
      (optimiser state reset if config.reset_optimizer)
      scan over evaluation blocks of config.eval_every steps:   # epochs x minibatches of task t
        scan over steps: strategy.loss -> grad -> strategy.update -> optimiser -> strategy.observe
        accuracy on every task (if eval_every)                   # a curve point [T]
      strategy.consolidate
      R[t] = accuracy on every task                              # row t of the accuracy matrix

Minibatches of task ``t`` are a fresh permutation of its training set each epoch (the last
partial batch is dropped); keys come from the run's key by ``fold_in`` (task, epoch, step).

Divergence is a result, not a crash (as in ``lossatlas.train``): a step whose loss, gradient or
new parameters are NaN/Inf freezes that run at its last finite state (parameters, optimiser and
strategy state), records the global step in ``diverged_at`` (-1 if never) and makes its later
losses and accuracies NaN; its vmapped neighbours are unaffected.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import checkpoint, devices, losses, memory, models, optim
from lossatlas.continual.streams import Stream
from lossatlas.continual.strategies import Context, Strategy, masked
from lossatlas.train.config import _freeze_model_cfg
from lossatlas.treeutil import global_norm, tree_where

_INIT, _DATA, _STEP, _CONSOLIDATE = range(4)
#: What a user can lower when a stream program does not fit in memory.
MEMORY_HINT = ("seeds, the number of lambdas, batch_size, the model's width, the test set (Stream.subset) or the "
               "strategy's chunk/memory sizes (e.g. ewc(chunk_size=...), fisher_examples, replay memory)")


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """How each task of a stream is trained. Frozen and hashable (programs are cached on it).

    Attributes:
      model: registry name (``lossatlas.models.list_models()``); models with batch statistics
        (``norm="batch"``) are not supported.
      model_cfg: model options (a mapping, stored frozen); ``num_outputs`` is set from the stream.
      optimizer: one of ``lossatlas.optim.OPTIMIZERS``.
      learning_rate, momentum: optimiser values (momentum for "momentum" / "nesterov").
      batch_size: minibatch size (the last partial batch of an epoch is dropped).
      epochs: passes over each task's training set.
      eval_every: evaluate every task every this many steps inside the scan (0: only at the
        end of each task). Must divide the steps per task.
      reset_optimizer: fresh optimiser state at the start of every task (Avalanche's default).
      keep_params: also return the parameters at the end of every task (``params``, a pytree
        with leading ``[L, S, T]`` axes; e.g. for curvature at each task's solution).
    """
    model: str = "mlp"
    model_cfg: Any = (("widths", (100,)),)
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 1
    eval_every: int = 0
    reset_optimizer: bool = True
    keep_params: bool = False

    def __post_init__(self):
        object.__setattr__(self, "model_cfg", _freeze_model_cfg(self.model_cfg))
        if self.model not in models.MODELS:
            raise ValueError(f"StreamConfig.model: unknown model {self.model!r}; valid: {models.list_models()}")
        kw = dict(self.model_cfg)
        if kw.get("norm") == "batch":
            raise ValueError("StreamConfig.model_cfg: norm='batch' is not supported by stream programs; "
                             "use norm='layer' or 'none'")
        if "num_outputs" in kw:
            raise ValueError("StreamConfig.model_cfg: num_outputs is set from the stream; remove it")
        if self.optimizer not in optim.OPTIMIZERS:
            raise ValueError(f"StreamConfig.optimizer must be one of {optim.OPTIMIZERS}, got {self.optimizer!r}")
        for name, lo, hi in (("learning_rate", 0.0, None), ("momentum", 0.0, 1.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < lo \
                    or (hi is not None and v >= hi):
                rng = f">= {lo}" if hi is None else f"in [{lo}, {hi})"
                raise ValueError(f"StreamConfig.{name} must be a finite number {rng}, got {v!r}")
            object.__setattr__(self, name, float(v))
        for name, lo in (("batch_size", 1), ("epochs", 1), ("eval_every", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                raise ValueError(f"StreamConfig.{name} must be an integer >= {lo}, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("reset_optimizer", "keep_params"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"StreamConfig.{name} must be True or False, got {getattr(self, name)!r}")

    @property
    def model_kwargs(self) -> dict:
        """``model_cfg`` as a plain dict."""
        return dict(self.model_cfg)

    def replace(self, **changes) -> "StreamConfig":
        """A copy with some fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"StreamConfig has no field(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class StreamProgram:
    """The pure pieces of one stream run; build with :func:`program` (cached).

    Attributes:
      steps_per_task: optimiser steps per task.
      block: steps between in-scan evaluations (``steps_per_task`` when ``eval_every=0``).
      num_blocks: evaluation points per task.
      num_traces: how many times :meth:`run` has been traced (tests use it to catch recompiles).
    """

    def __init__(self, stream: Stream, strategy: Strategy, config: StreamConfig):
        if not isinstance(stream, Stream):
            raise ValueError(f"run_stream: stream must be a lossatlas.continual.Stream, got {type(stream).__name__}")
        if not isinstance(strategy, Strategy):
            raise ValueError(f"run_stream: strategy must be a lossatlas.continual.Strategy, got "
                             f"{type(strategy).__name__}")
        if not isinstance(config, StreamConfig):
            raise ValueError(f"run_stream: config must be a StreamConfig, got {type(config).__name__}")
        if config.batch_size > stream.num_train:
            raise ValueError(f"StreamConfig.batch_size={config.batch_size} is larger than a task's training set "
                             f"({stream.num_train} examples)")
        self.stream, self.strategy, self.config = stream, strategy, config
        self.model = models.get_model(config.model, **config.model_kwargs, num_outputs=stream.num_outputs)
        self.steps_per_epoch = stream.num_train // config.batch_size
        self.steps_per_task = self.steps_per_epoch * config.epochs
        if config.eval_every and self.steps_per_task % config.eval_every:
            raise ValueError(f"StreamConfig.eval_every={config.eval_every} must divide the {self.steps_per_task} "
                             f"steps per task; valid: {_divisors(self.steps_per_task)}")
        self.block = config.eval_every or self.steps_per_task
        self.num_blocks = self.steps_per_task // self.block
        self.tx = optim.make_optimizer(config.optimizer, config.learning_rate, momentum=config.momentum)
        self.num_traces = 0
        self._data: dict = {}
        self._jitted = None
        self._chunked = None

    # ---------------------------------------------------------------- data
    def host_data(self) -> dict:
        s = self.stream
        return {"x_train": np.asarray(s.x_train, np.float32), "y_train": np.asarray(s.y_train, np.int32),
                "x_test": np.asarray(s.x_test, np.float32), "y_test": np.asarray(s.y_test, np.int32),
                "masks": np.asarray(s.masks, bool)}

    def device_data(self, mesh=None) -> dict:
        if mesh not in self._data:
            self._data[mesh] = devices.replicate(self.host_data(), mesh)
        return self._data[mesh]

    def curve_steps(self) -> np.ndarray:
        """Global step after each in-scan evaluation, ``[T * num_blocks]`` (0 = init not included)."""
        t = self.stream.num_tasks
        return (np.arange(t)[:, None] * self.steps_per_task
                + (np.arange(self.num_blocks)[None, :] + 1) * self.block).reshape(-1)

    # ---------------------------------------------------------------- pieces
    def apply(self, params, x):
        """Unmasked logits ``[B, K]``."""
        return self.model.apply({"params": params}, x)

    def init_params(self, key):
        variables = self.model.init(key, jnp.asarray(self.stream.x_train[0, :1]))
        return variables["params"]

    def batch_loss(self, params, batch, task, data):
        """Weighted mean cross-entropy, each example masked with ``masks[task, example_task]``."""
        logits = masked(self.apply(params, batch["x"]), data["masks"][task][batch["task"]])
        per = losses.cross_entropy(logits, batch["y"], reduction="none")
        w = batch["weight"]
        return jnp.sum(w * per) / jnp.maximum(jnp.sum(w), 1.0)

    def evaluate(self, params, task, data):
        """Accuracy on every task's test set, with masks ``masks[task, j]``: ``[T]``."""
        x = data["x_test"]
        t, m = x.shape[0], x.shape[1]
        logits = self.apply(params, x.reshape((t * m,) + x.shape[2:])).reshape(t, m, -1)
        logits = masked(logits, data["masks"][task][:, None, :])
        return jnp.mean((jnp.argmax(logits, axis=-1) == data["y_test"]).astype(jnp.float32), axis=-1)

    def context(self, task, step, key, lam, data) -> Context:
        return Context(task=task, step=step, key=key, lam=lam, data=data, apply=self.apply,
                       loss=lambda p, b: self.batch_loss(p, b, task, data),
                       num_tasks=self.stream.num_tasks, batch_size=self.config.batch_size)

    def run(self, key, lam, data=None, *, start=None, tasks=None) -> dict:
        """One run (pure; jit / vmap it).

        Args:
          key: PRNG key of the run.
          lam: regularisation strength (scalar, may be traced).
          data: the stream on the device (default: :meth:`device_data`).
          start: carry to continue from instead of the initial one (see :meth:`chunked`).
          tasks: int32 indices of the tasks to train (default: all, in order).

        Returns:
          ``{"R": [T, T], "init_acc": [T], "loss": [T * steps_per_task], "diverged_at": []}`` plus
          ``"curves": [T, num_blocks, T]`` when ``eval_every > 0`` and ``"params"`` (leading
          ``[T]``: the parameters after each task) when ``keep_params``. ``diverged_at`` is the
          global step whose loss, gradient or parameters first became NaN/Inf (-1: never); from
          then on the run is frozen and its losses, ``R`` rows and curve points are NaN. With
          ``start`` or ``tasks`` given: ``(carry after the last task, that dict over those tasks)``.
        """
        self.num_traces += 1
        data = self.device_data() if data is None else data
        strat, tx, cfg = self.strategy, self.tx, self.config
        t_total, n, b = self.stream.num_tasks, self.stream.num_train, cfg.batch_size
        lam = jnp.asarray(lam, jnp.float32)
        k_init, k_data, k_step, k_cons = (jax.random.fold_in(key, i) for i in (_INIT, _DATA, _STEP, _CONSOLIDATE))
        params = self.init_params(k_init)
        zero = jnp.zeros((), jnp.int32)
        state = strat.init(params, self.context(zero, zero, jax.random.fold_in(k_cons, t_total), lam, data))
        acc0 = self.evaluate(params, zero, data)
        spe, epochs = self.steps_per_epoch, cfg.epochs

        def step_fn(carry, idx_b, t):
            params, opt_state, state, step, div = carry
            ctx = self.context(t, step, jax.random.fold_in(k_step, step), lam, data)
            batch = {"x": data["x_train"][t, idx_b], "y": data["y_train"][t, idx_b],
                     "task": jnp.full((b,), t, jnp.int32), "weight": jnp.ones((b,), jnp.float32)}
            value, raw = jax.value_and_grad(strat.loss, argnums=1)(state, params, batch, ctx)
            grads, state = strat.update(state, raw, params, batch, ctx)
            updates, new_opt = tx.update(grads, opt_state, params)
            new = optax.apply_updates(params, updates)
            new_state = strat.observe(state, raw, params, new, batch, ctx)
            finite = jnp.isfinite(value) & jnp.isfinite(global_norm(raw)) & jnp.isfinite(global_norm(new))
            alive = (div < 0) & finite
            div = jnp.where((div < 0) & ~finite, step, div)
            carry = (tree_where(alive, new, params), tree_where(alive, new_opt, opt_state),
                     tree_where(alive, new_state, state),
                     step + 1, div)
            return carry, jnp.where(div < 0, value, jnp.nan)

        def task_fn(carry, t):
            params, opt_state, state, step, div = carry
            if cfg.reset_optimizer:
                opt_state = tx.init(params)
            k_t = jax.random.fold_in(k_data, t)
            perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(k_t, e), n)[: spe * b])(
                jnp.arange(epochs))
            idx = perms.reshape(self.num_blocks, self.block, b)

            def block_fn(carry, idx_blk):
                carry, values = jax.lax.scan(lambda c, i: step_fn(c, i, t), carry, idx_blk)
                acc = self.evaluate(carry[0], t, data) if cfg.eval_every else jnp.zeros((0,), jnp.float32)
                acc = jnp.where(carry[4] < 0, acc, jnp.nan)
                return carry, (values, acc)

            (params, opt_state, state, step, div), (values, accs) = jax.lax.scan(
                block_fn, (params, opt_state, state, step, div), idx)
            state = tree_where(div < 0, strat.consolidate(
                state, params, self.context(t, step, jax.random.fold_in(k_cons, t), lam, data)), state)
            row = jnp.where(div < 0, self.evaluate(params, t, data), jnp.nan)
            kept = params if cfg.keep_params else ()
            return (params, opt_state, state, step, div), (row, values.reshape(-1), accs, kept)

        carry = (params, tx.init(params), state, zero, jnp.full((), -1, jnp.int32)) if start is None else start
        ts = jnp.arange(t_total, dtype=jnp.int32) if tasks is None else tasks
        carry, (rows, values, accs, kept) = jax.lax.scan(task_fn, carry, ts)
        out = {"R": rows, "init_acc": acc0, "loss": values.reshape(-1), "diverged_at": carry[4]}
        if cfg.eval_every:
            out["curves"] = accs
        if cfg.keep_params:
            out["params"] = kept
        return out if start is None and tasks is None else (carry, out)

    # ---------------------------------------------------------------- compiled
    def compiled(self):
        """``jit(vmap_lambda(vmap_seed(run)))``: ``(keys [S], lams [L], data) -> [L, S, ...]`` (cached)."""
        if self._jitted is None:
            f = jax.vmap(self.run, (0, None, None))
            f = jax.vmap(f, (None, 0, None))
            self._jitted = jax.jit(f)
        return self._jitted

    def sweep(self, keys, lams) -> dict:
        """Every (lambda, seed) pair, the seed axis sharded over the devices.

        When there are more seeds than devices but not a multiple of them, extra seeds are run
        and dropped (e.g. 5 seeds on 2 devices run as 6), so the axis can be sharded.

        Returns:
          The :meth:`run` outputs with leading axes ``[L, S]``, as device arrays.
        """
        keys = jnp.asarray(keys)
        lams = jnp.asarray(lams, jnp.float32).reshape(-1)
        num = keys.shape[0]
        ndev = len(jax.devices())
        pad = (-num) % ndev if 1 < ndev < num else 0  # e.g. 5 seeds on 2 devices: run 6, keep 5
        if pad:
            keys = jnp.concatenate([keys, jax.random.split(jax.random.fold_in(keys[-1], 1), pad)])
        mesh = devices.seed_mesh(keys.shape[0])
        if checkpoint.active() is not None:
            return self.sweep_chunked(keys, lams, mesh, num)
        args = (devices.shard_leading(keys, mesh), devices.replicate(lams, mesh), self.device_data(mesh))
        out = memory.run_vmapped(self.compiled(), args, (1, 0), what=f"run_stream ({self.strategy.name})",
                                 lower=MEMORY_HINT)  # estimated first: chunked over lambdas, then seeds
        return jax.tree_util.tree_map(lambda a: a[:, :num], out) if pad else out

    # ---------------------------------------------------------------- chunked (checkpoints, progress)
    def chunked(self):
        """Cached jitted ``(start, one_task)`` for :meth:`sweep_chunked`, vmapped like :meth:`compiled`.

        ``start(keys, lams, data) -> (carry, init_acc)`` (a scan over no tasks) and
        ``one_task(carry, keys, lams, data, t) -> (carry, outputs of task t)`` (``t``: int32 ``[1]``;
        one compile for every task).
        """
        if self._chunked is None:
            def start(key, lam, data):
                carry, out = self.run(key, lam, data, tasks=jnp.zeros((0,), jnp.int32))
                return carry, out["init_acc"]

            def one_task(carry, key, lam, data, t):
                carry, out = self.run(key, lam, data, start=carry, tasks=t)
                out.pop("init_acc")
                return carry, out

            start = jax.vmap(jax.vmap(start, (0, None, None)), (None, 0, None))
            one_task = jax.vmap(jax.vmap(one_task, (0, 0, None, None, None)), (0, None, 0, None, None))
            self._chunked = (jax.jit(start), jax.jit(one_task))
        return self._chunked

    def sweep_chunked(self, keys, lams, mesh, num: int) -> dict:
        """:meth:`sweep` one task at a time through :func:`lossatlas.checkpoint.run_chunks`.

        Used inside a :func:`lossatlas.checkpoint.checkpointing` block: the run saves its state
        after tasks, resumes from them, and shows a progress bar per task when the block asks.
        Equal to the fused :meth:`sweep` up to floating-point reassociation.

        Args:
          keys: per-seed keys ``[S']`` (already padded to the devices).
          lams: ``[L]`` float32.
          mesh: the seed mesh (or None).
          num: seeds to keep (``S <= S'``).

        Returns:
          As :meth:`sweep`.
        """
        start, one_task = self.chunked()
        keys, lams, data = devices.shard_leading(keys, mesh), devices.replicate(lams, mesh), self.device_data(mesh)
        s, strat = self.stream, self.strategy
        fingerprint = lambda: {  # noqa: E731 -- hashes the data: only when checkpoints are written
            "kind": "stream", "config": repr(self.config), "stream": s.name, "scenario": s.scenario,
            "strategy": repr(strat.spec) if strat.spec is not None else
            f"{strat.name}:" + ",".join(getattr(f, "__qualname__", repr(f)) for f in strat[1:6]),
            "data": checkpoint.digest(s.x_train, s.y_train, s.x_test, s.y_test, s.masks),
            "keys": checkpoint.digest(keys), "lams": np.asarray(lams).tolist()}
        t_total = s.num_tasks

        def step(state):
            carry, acc0, t = state
            carry, out = one_task(carry, keys, lams, data, t)
            return (carry, acc0, t + 1), out

        def init():
            carry, acc0 = devices.shard_axis(start(keys, lams, data), mesh, 1)  # as one_task returns them
            return carry, acc0, jnp.zeros((1,), jnp.int32)

        (_, acc0, _), out = checkpoint.run_chunks(
            fingerprint=fingerprint, init=init, step=step, num_chunks=t_total, units_per_chunk=1,
            concat=functools.partial(checkpoint.concat_chunks, axis=2), unit="task",
            desc=f"{strat.name} x{lams.shape[0]} lams x{num} seeds")
        out = dict(out, init_acc=acc0)
        return jax.tree_util.tree_map(lambda a: a[:, :num], out) if keys.shape[0] != num else out


@functools.lru_cache(maxsize=64)
def program(stream: Stream, strategy: Strategy, config: StreamConfig) -> StreamProgram:
    """The cached :class:`StreamProgram` of a stream object, a strategy (by its spec) and a config."""
    return StreamProgram(stream, strategy, config)


def _check_lams(lams, strategy: Strategy | None = None) -> np.ndarray:
    """``lams`` as float32 ``[L]``; ValueError for a bad value, or for several values when
    ``strategy`` ignores lambda (a silent grid of identical runs; as ``sweep`` refuses an
    unused grid field)."""
    if isinstance(lams, (str, bytes)) or not hasattr(lams, "__len__") or len(lams) == 0:
        raise ValueError(f"run_stream: lams must be a non-empty list of numbers >= 0, got {lams!r}")
    out = []
    for i, v in enumerate(lams):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
            raise ValueError(f"run_stream: lams[{i}] must be a finite number >= 0, got {v!r}")
        out.append(float(v))
    if strategy is not None and not strategy.uses_lam and len(out) > 1:
        from lossatlas.continual.strategies import STRATEGIES
        users = [n for n, make in STRATEGIES.items() if make().uses_lam]
        raise ValueError(f"run_stream: lams ({len(out)} values) has no effect with strategy {strategy.name!r}; "
                         f"it is used by {', '.join(users)} (pass one value or none)")
    return np.asarray(out, np.float32)


def run_stream(stream: Stream, strategy: Strategy, config: StreamConfig | None = None, *, key=None,
               seeds: int = 1, lams: Sequence[float] | None = None) -> dict:
    """Train a strategy on a stream for every (lambda, seed) pair, as one compiled program.

    Seed ``i`` uses ``jax.random.split(key, seeds)[i]`` (as ``lossatlas.train.sweep``), and
    member ``[l, i]`` equals ``program(stream, strategy, config).run(keys[i], lams[l])`` up to
    floating-point reassociation across the vmapped batch.

    Args:
      stream: a :class:`~lossatlas.continual.streams.Stream`.
      strategy: a :class:`~lossatlas.continual.strategies.Strategy`.
      config: a :class:`StreamConfig` (default ``StreamConfig()``).
      key: PRNG key (default ``PRNGKey(0)``).
      seeds: number of seeds ``S >= 1``.
      lams: regularisation strengths (a vmap axis, ``L`` values); default ``[strategy.lam]``.
        Several values are refused for a strategy that ignores lambda (``strategy.uses_lam``
        False: naive, joint, replay, agem).

    Returns:
      A dict of numpy arrays: ``R [L, S, T, T]`` (accuracy on task j after training task i),
      ``init_acc [L, S, T]``, ``loss [L, S, T * steps_per_task]`` (training objective per step),
      ``curves [L, S, T * num_blocks, T]`` and ``curve_steps [T * num_blocks]`` when
      ``config.eval_every > 0`` (accuracy on every task after every ``eval_every`` steps), and
      ``lams [L]``, ``steps_per_task`` (int), ``diverged_at [L, S]`` (the global step whose loss,
      gradient or parameters first became NaN/Inf, -1 if never: that member is frozen at its last
      finite state and its later ``loss``, ``R`` rows and ``curves`` are NaN; ``summarize``
      reports it as diverged); with ``config.keep_params`` also ``params``, the parameter pytree
      after every task with leading axes ``[L, S, T]``.

      The program's memory is estimated before it runs (``lossatlas.memory``): if it would not
      fit, the lambda axis (then the seed axis) runs in equal chunks with the same numbers, and
      if one member does not fit either, a one-line ``MemoryLimitError`` says what to lower.
    """
    config = StreamConfig() if config is None else config
    if isinstance(seeds, (bool, np.bool_)) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ValueError(f"run_stream: seeds must be a positive integer, got {seeds!r}")
    lam_values = _check_lams([strategy.lam] if lams is None else lams, strategy) if isinstance(strategy, Strategy) \
        else None
    prog = program(stream, strategy, config)
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, int(seeds))
    out = jax.device_get(prog.sweep(keys, lam_values))
    out = {k: (jax.tree_util.tree_map(np.asarray, v) if k == "params" else np.asarray(v)) for k, v in out.items()}
    if "curves" in out:
        sh = out["curves"].shape
        out["curves"] = out["curves"].reshape(sh[:2] + (sh[2] * sh[3], sh[4]))
        out["curve_steps"] = prog.curve_steps()
    out["lams"] = lam_values
    out["steps_per_task"] = prog.steps_per_task
    return out


__all__ = ["StreamConfig", "StreamProgram", "program", "run_stream"]

"""One stream run (tasks x epochs x minibatches as one scan), built from ``lossatlas.train``'s pieces.

The model, its initial state (``init_scale``), the optimiser (with schedule, clipping,
weight decay) and the divergence freeze are those of :func:`lossatlas.train.program` for the
stream's first task; the stream adds the strategy's hooks, the output masks and the per-task
evaluation. Inside one run::

    state = train program's init(key)                           # TrainState: params, opt state, key
    acc0 = accuracy on every task at initialisation              # [T] (masks[0, j])
    scan over tasks t:
      (optimiser state reset if config.reset_optimizer)
      scan over evaluation blocks of config.eval_every steps:   # epochs x minibatches of task t
        scan over steps: strategy.loss -> grad -> strategy.update -> optimiser -> strategy.observe
        accuracy on every task (if eval_every)                   # a curve point [T]
      strategy.consolidate
      R[t] = accuracy on every task                              # row t of the accuracy matrix

Keys follow ``make_train``: the epoch ``e`` of task ``t`` is shuffled with
``fold_in(fold_in(run_key, 0), t * epochs + e)`` and step ``n`` draws from
``fold_in(fold_in(run_key, 1), n)``, so a one-task stream with the naive strategy is
``make_train`` on that task (a test checks it). Divergence is a result, not a crash (as in
``lossatlas.train``): a step whose loss, gradient or new parameters are NaN/Inf freezes that
run at its last finite state, records the global step in ``diverged_at`` (-1 if never) and
makes its later losses and accuracies NaN; its vmapped neighbours are unaffected.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import losses
from lossatlas.continual.config import StreamConfig
from lossatlas.continual.streams import Stream
from lossatlas.continual.strategies import Context, Strategy, masked
from lossatlas.data import Dataset
from lossatlas.train import TrainState
from lossatlas.train import program as train_program
from lossatlas.treeutil import global_norm, tree_where

# as lossatlas.train's engine: shuffle keys fold in 0, step keys 1 (the one-task test pins it)
_SHUFFLE, _STEP, _CONSOLIDATE = 0, 1, 2

__all__ = ["StreamProgram", "host_data", "init_params", "model_apply", "program", "task_dataset"]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def task_dataset(stream: Stream, task: int = 0) -> Dataset:
    """Task ``task`` of a stream as a :class:`lossatlas.data.Dataset` with ``num_outputs`` classes."""
    return Dataset(name=f"{stream.name}[{task}]", x_train=np.asarray(stream.x_train[task]),
                   y_train=np.asarray(stream.y_train[task]), x_test=np.asarray(stream.x_test[task]),
                   y_test=np.asarray(stream.y_test[task]), num_classes=stream.num_outputs)


def host_data(stream: Stream) -> dict:
    """The arrays a stream program reads, as numpy (``x_train``, ``y_train``, ``x_test``, ``y_test``, ``masks``)."""
    return {"x_train": np.asarray(stream.x_train, np.float32), "y_train": np.asarray(stream.y_train, np.int32),
            "x_test": np.asarray(stream.x_test, np.float32), "y_test": np.asarray(stream.y_test, np.int32),
            "masks": np.asarray(stream.masks, bool)}


class StreamProgram:
    """The pure pieces of one stream run; build with :func:`program` (cached).

    Attributes:
      train: the :class:`lossatlas.train.Program` of the first task (model, init, optimiser).
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
        self.train = train_program(config.train_config(), task_dataset(stream))
        self.steps_per_epoch = self.train.steps_per_epoch
        self.steps_per_task = self.steps_per_epoch * config.epochs
        if config.eval_every and self.steps_per_task % config.eval_every:
            raise ValueError(f"StreamConfig.eval_every={config.eval_every} must divide the {self.steps_per_task} "
                             f"steps per task; valid: {_divisors(self.steps_per_task)}")
        self.block = config.eval_every or self.steps_per_task
        self.num_blocks = self.steps_per_task // self.block
        self.hp = self.train.hparams()
        self.tx = self.train.optimizer(self.hp)
        self.num_traces = 0

    # ---------------------------------------------------------------- pieces
    def apply(self, params, x, *, train: bool = False, rng=None):
        """Unmasked logits ``[B, K]`` (evaluation mode unless ``train``)."""
        return self.train.apply(params, {}, x, train=train, rng=rng)[0]

    def init(self, key) -> TrainState:
        """The train program's initial state (parameters, optimiser state, the run's key)."""
        return self.train.init(key, self.hp)

    def batch_loss(self, params, batch, task, data, rng=None):
        """Weighted mean cross-entropy, each example masked with ``masks[task, example_task]``."""
        out = self.apply(params, batch["x"], train=rng is not None, rng=rng)
        logits = masked(out, data["masks"][task][batch["task"]])
        per = losses.cross_entropy(logits, batch["y"], label_smoothing=self.hp["label_smoothing"], reduction="none")
        w = batch["weight"]
        return jnp.sum(w * per) / jnp.maximum(jnp.sum(w), 1.0)

    def evaluate(self, params, task, x_test, y_test, masks):
        """Accuracy on every task's ``x_test [T, M, ...]``, with masks ``masks[task, j]``: ``[T]``."""
        t, m = x_test.shape[0], x_test.shape[1]
        logits = self.apply(params, x_test.reshape((t * m,) + x_test.shape[2:])).reshape(t, m, -1)
        logits = masked(logits, masks[task][:, None, :])
        return jnp.mean((jnp.argmax(logits, axis=-1) == y_test).astype(jnp.float32), axis=-1)

    def context(self, task, step, key, lam, data, member=0, rng=None) -> Context:
        return Context(task=task, step=step, key=key, lam=lam, data=data, apply=self.apply,
                       loss=lambda p, b: self.batch_loss(p, b, task, data, rng),
                       num_tasks=self.stream.num_tasks, batch_size=self.config.batch_size, member=member)

    # ---------------------------------------------------------------- one run
    def run(self, key, lam, data, member=0, *, start=None, tasks=None) -> dict:
        """One run (pure; jit / vmap it).

        Args:
          key: PRNG key of the run.
          lam: regularisation strength (scalar, may be traced).
          data: the stream on the device (:func:`host_data` arrays), optionally with ``x_val``,
            ``y_val`` (a validation stream's test arrays, ``[T, M', ...]``).
          member: which member of a stacked strategy runs (int32 scalar, may be traced).
          start: carry to continue from instead of the initial one (chunked runs).
          tasks: int32 indices of the tasks to train (default: all, in order).

        Returns:
          ``{"R": [T, T], "init_acc": [T], "loss": [T * steps_per_task], "diverged_at": []}`` plus
          ``"curves": [T, num_blocks, T]`` when ``eval_every > 0``, ``"val_R": [T, T]`` with
          validation data and ``"params"`` (leading ``[T]``: the parameters after each task)
          when ``keep_params``. With ``start`` or ``tasks`` given: ``(carry after the last
          task, that dict over those tasks)``.
        """
        self.num_traces += 1
        strat, tx, cfg = self.strategy, self.tx, self.config
        t_total, n, b = self.stream.num_tasks, self.stream.num_train, cfg.batch_size
        lam = jnp.asarray(lam, jnp.float32)
        member = jnp.asarray(member, jnp.int32)
        ts0 = self.init(key)
        k_run = ts0.key
        k_shuffle, k_step, k_cons = (jax.random.fold_in(k_run, i) for i in (_SHUFFLE, _STEP, _CONSOLIDATE))
        zero = jnp.zeros((), jnp.int32)
        spe, epochs = self.steps_per_epoch, cfg.epochs
        has_val = "x_val" in data

        def evaluate(params, t):
            return self.evaluate(params, t, data["x_test"], data["y_test"], data["masks"])

        def step_fn(carry, idx_b, t):
            ts, state = carry
            rng = jax.random.fold_in(k_step, ts.step)
            ctx = self.context(t, ts.step, rng, lam, data, member, rng)
            batch = {"x": data["x_train"][t, idx_b], "y": data["y_train"][t, idx_b],
                     "task": jnp.full((b,), t, jnp.int32), "weight": jnp.ones((b,), jnp.float32)}
            value, raw = jax.value_and_grad(strat.loss, argnums=1)(state, ts.params, batch, ctx)
            grads, new_state = strat.update(state, raw, ts.params, batch, ctx)
            updates, new_opt = tx.update(grads, ts.opt_state, ts.params)
            new = optax.apply_updates(ts.params, updates)
            new_state = strat.observe(new_state, raw, ts.params, new, batch, ctx)
            finite = jnp.isfinite(value) & jnp.isfinite(global_norm(raw)) & jnp.isfinite(global_norm(new))
            alive = (ts.diverged_at < 0) & finite
            div = jnp.where((ts.diverged_at < 0) & ~finite, ts.step, ts.diverged_at)
            keep = functools.partial(tree_where, alive)
            ts = ts._replace(step=ts.step + 1, params=keep(new, ts.params), opt_state=keep(new_opt, ts.opt_state),
                             diverged_at=div)
            return (ts, keep(new_state, state)), jnp.where(div < 0, value, jnp.nan)

        def task_fn(carry, t):
            ts, state = carry
            if cfg.reset_optimizer:
                ts = ts._replace(opt_state=tx.init(ts.params))
            perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(k_shuffle, t * epochs + e), n)
                             [: spe * b])(jnp.arange(epochs))
            idx = perms.reshape(self.num_blocks, self.block, b)

            def block_fn(carry, idx_blk):
                carry, values = jax.lax.scan(lambda c, i: step_fn(c, i, t), carry, idx_blk)
                acc = evaluate(carry[0].params, t) if cfg.eval_every else jnp.zeros((0,), jnp.float32)
                return carry, (values, jnp.where(carry[0].diverged_at < 0, acc, jnp.nan))

            (ts, state), (values, accs) = jax.lax.scan(block_fn, (ts, state), idx)
            alive = ts.diverged_at < 0
            ctx = self.context(t, ts.step, jax.random.fold_in(k_cons, t), lam, data, member)
            state = tree_where(alive, strat.consolidate(state, ts.params, ctx), state)
            out = {"R": jnp.where(alive, evaluate(ts.params, t), jnp.nan), "loss": values.reshape(-1), "curves": accs}
            if has_val:
                val = self.evaluate(ts.params, t, data["x_val"], data["y_val"], data["masks"])
                out["val_R"] = jnp.where(alive, val, jnp.nan)
            if cfg.keep_params:
                out["params"] = ts.params
            return (ts, state), out

        if start is None:
            ctx0 = self.context(zero, zero, jax.random.fold_in(k_cons, t_total), lam, data, member)
            carry = (ts0, strat.init(ts0.params, ctx0))
        else:
            carry = start
        ts = jnp.arange(t_total, dtype=jnp.int32) if tasks is None else tasks
        carry, out = jax.lax.scan(task_fn, carry, ts)
        out["loss"] = out["loss"].reshape(-1)
        out["diverged_at"] = carry[0].diverged_at
        out["init_acc"] = evaluate(ts0.params, zero)
        if not cfg.eval_every:
            out.pop("curves")
        return out if start is None and tasks is None else (carry, out)


@functools.lru_cache(maxsize=64)
def program(stream: Stream, strategy: Strategy, config: StreamConfig) -> StreamProgram:
    """The cached :class:`StreamProgram` of a stream object, a strategy (by its spec) and a config."""
    return StreamProgram(stream, strategy, config)


def model_apply(stream: Stream, config: StreamConfig):
    """The model of ``config`` sized for ``stream``, as a pure ``apply(params, x) -> logits [B, K]``.

    Unmasked logits in evaluation mode (mask them with :func:`~lossatlas.continual.masked` and
    ``stream.masks[i, j]``); the same function the stream program trains, so it takes the
    ``params`` that ``run_stream`` returns with ``config.keep_params``.
    """
    from lossatlas.continual.strategies import naive
    return program(stream, naive(), config).apply


def init_params(stream: Stream, config: StreamConfig, key):
    """The initial parameters a stream run with ``key`` starts from (``init_scale`` applied)."""
    from lossatlas import keys as keys_lib
    from lossatlas.continual.strategies import naive
    return program(stream, naive(), config).init(keys_lib.require_key("init_params", key)).params

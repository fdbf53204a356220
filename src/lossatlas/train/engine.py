"""The compiled training program: `make_train(config, dataset)` -> `train(key)`.

Every epoch and minibatch runs inside `lax.scan`; per-epoch shuffles come from
the run's key, and the train/test evaluation runs inside the same program. All
shapes are derived from the config and the dataset before tracing (purejaxrl's
``make_train`` habit), so one call compiles once and later calls reuse it.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lossatlas import checkpoint, devices, memory, optim
from lossatlas.treeutil import global_norm, tree_where
from lossatlas.data import Dataset
from lossatlas.train import hooks as hooks_lib
from lossatlas.train.config import SWEEPABLE, TrainConfig
from lossatlas.train.device_data import device_data, host_data
from lossatlas.train.limits import check_total_steps
from lossatlas.train.objective import build_model, make_objective
from lossatlas.train.state import TrainState

_SHUFFLE, _STEP = 0, 1


def _cast_floats(tree, dtype):
    """Floating-point leaves of ``tree`` cast to ``dtype`` (integer leaves, e.g. tokens, kept)."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, tree)
# Variable collections that only analysis tools use (see lossatlas.models.common.record).
_PROBE_COLLECTIONS = ("intermediates", "perturbations")


#: What a user can lower when a training program does not fit in memory.
MEMORY_HINT = "seeds, grid size, batch_size, eval_batch_size or the model's width"


def epochs_per_chunk(total: int, target: int, multiple: int = 1) -> int:
    """The largest divisor of ``total`` that is a multiple of ``multiple`` (which divides
    ``total``) and <= ``max(target, multiple)``: equal chunks, one compile."""
    target = max(multiple, min(target, total))
    return next(d for d in range(target, 0, -1) if total % d == 0 and d % multiple == 0)


class Program:
    """Pure pieces of one training run, shared by `make_train` and `sweep`.

    Construct through :func:`program` (cached per config and dataset object). The
    device copy of the data is not per program: programs on the same dataset object
    share it (see :func:`device_data`).
    """

    def __init__(self, config: TrainConfig, dataset: Dataset):
        if dataset.num_test == 0:
            raise ValueError(f"Dataset {dataset.name!r} has no test examples; test metrics need at least one")
        if config.batch_size > dataset.num_train:
            raise ValueError(
                f"TrainConfig.batch_size={config.batch_size} is larger than the training set "
                f"(dataset {dataset.name!r} has num_train={dataset.num_train}); lower batch_size to "
                f"<= {dataset.num_train} or use at least {config.batch_size} training examples")
        self.config = config
        self.dataset = dataset
        self.objective = make_objective(config.loss, dataset)
        self.model = build_model(config.model, config.model_kwargs, dataset, self.objective)
        self.steps_per_epoch = dataset.num_train // config.batch_size
        self.total_steps = self.steps_per_epoch * config.epochs
        check_total_steps("TrainConfig", "epochs", self.total_steps,
                          f"{config.epochs:,} epochs x {self.steps_per_epoch:,} steps per epoch")
        if config.warmup_steps >= self.total_steps and config.schedule.startswith("warmup"):
            raise ValueError(
                f"TrainConfig.warmup_steps={config.warmup_steps} must be < the run's {self.total_steps} steps")
        self.num_traces = 0
        self._jitted = {}

    # ---------------------------------------------------------------- data
    @property
    def host_data(self) -> dict:
        """The arrays the program reads, as numpy (see :func:`host_data`; not cached)."""
        return host_data(self.dataset, self.config.eval_batch_size, self.config.eval_train)

    def device_data(self, mesh=None) -> dict:
        """The data on the default device, or replicated over ``mesh``: one copy per dataset
        object, evaluation chunking and mesh, shared by every config (see :func:`device_data`)."""
        return device_data(self.dataset, self.config.eval_batch_size, self.config.eval_train, mesh)

    @property
    def data(self) -> dict:
        return self.device_data(None)

    # ---------------------------------------------------------------- pieces
    def hparams(self, overrides=None) -> dict:
        """Sweepable values: Python floats from the config, traced scalars from ``overrides``."""
        hp = {name: getattr(self.config, name) for name in SWEEPABLE}
        hp.update(overrides or {})
        return hp

    def optimizer(self, hp) -> optax.GradientTransformation:
        c = self.config
        return optim.make_optimizer(
            c.optimizer, hp["learning_rate"], momentum=hp["momentum"], b1=hp["b1"], b2=hp["b2"],
            eps=hp["eps"], weight_decay=hp["weight_decay"], schedule=c.schedule,
            total_steps=self.total_steps, warmup_steps=c.warmup_steps,
            clip_norm=hp["clip_norm"], clip_value=hp["clip_value"])

    def apply(self, params, model_state, x, *, train: bool, rng=None):
        """Model output and updated model state (batch statistics when training), computed at
        ``config.precision`` (outputs and model state come back in their float32 dtypes)."""
        precision = self.config.precision
        if precision == "tf32":
            with jax.default_matmul_precision("tensorfloat32"):
                return self._apply(params, model_state, x, train=train, rng=rng)
        if precision == "bf16":
            out, new_state = self._apply(_cast_floats(params, jnp.bfloat16), model_state,
                                         _cast_floats(x, jnp.bfloat16), train=train, rng=rng)
            new_state = jax.tree_util.tree_map(lambda new, old: new.astype(jnp.asarray(old).dtype),
                                               new_state, model_state)
            return _cast_floats(out, jnp.float32), new_state
        return self._apply(params, model_state, x, train=train, rng=rng)

    def _apply(self, params, model_state, x, *, train: bool, rng=None):
        variables = {"params": params, **model_state}
        rngs = {"dropout": rng} if rng is not None else {}
        if train and model_state:
            out, new_state = self.model.apply(variables, x, train=True, rngs=rngs, mutable=list(model_state))
            return out, dict(new_state)
        return self.model.apply(variables, x, train=train, rngs=rngs), model_state

    def init(self, key, hp) -> TrainState:
        """Initial state; ``init_scale`` multiplies every kernel and embedding."""
        k_init, k_run = jax.random.split(key)
        x0 = jnp.asarray(self.dataset.x_train[:1])
        variables = dict(self.model.init({"params": k_init, "dropout": k_init}, x0, train=False))
        for probe in _PROBE_COLLECTIONS:  # analysis-only collections are not state
            variables.pop(probe, None)
        params = variables.pop("params")
        scale = hp["init_scale"]
        if not (isinstance(scale, (int, float)) and scale == 1.0):
            def rescale(path, leaf):
                name = str(getattr(path[-1], "key", path[-1])).lower()
                return leaf * scale if ("kernel" in name or "embedding" in name) else leaf
            params = jax.tree_util.tree_map_with_path(rescale, params)
        opt_state = self.optimizer(hp).init(params)
        return TrainState(jnp.zeros((), jnp.int32), params, opt_state, variables, k_run,
                          jnp.full((), -1, jnp.int32))

    def loss(self, params, model_state, x, y, *, train=True, rng=None, label_smoothing=0.0):
        """Mean training loss of a batch, with (new model state, output) as aux."""
        out, new_state = self.apply(params, model_state, x, train=train, rng=rng)
        value = jnp.mean(self.objective.per_example(out, y, label_smoothing))
        return value, (new_state, out)

    def train_step(self, state: TrainState, x, y, hp, tx):
        rng = jax.random.fold_in(jax.random.fold_in(state.key, _STEP), state.step)
        grad_fn = jax.value_and_grad(
            functools.partial(self.loss, train=True, rng=rng, label_smoothing=hp["label_smoothing"]),
            has_aux=True)
        (value, (model_state, _)), grads = grad_fn(state.params, state.model_state, x, y)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        gnorm = global_norm(grads)
        # Divergence is a result, not a crash: a non-finite loss, gradient or new
        # parameter freezes this run (its vmapped neighbours are unaffected).
        finite = jnp.isfinite(value) & jnp.isfinite(gnorm) & jnp.isfinite(global_norm(params))
        alive = (state.diverged_at < 0) & finite
        keep = functools.partial(tree_where, alive)
        diverged_at = jnp.where((state.diverged_at < 0) & ~finite, state.step, state.diverged_at)
        new = TrainState(state.step + 1, keep(params, state.params), keep(opt_state, state.opt_state),
                         keep(model_state, state.model_state), state.key, diverged_at)
        nan = jnp.full((), jnp.nan, value.dtype)
        return new, (jnp.where(diverged_at < 0, value, nan), jnp.where(diverged_at < 0, gnorm, nan))

    def evaluate(self, params, model_state, data, split: str = "test") -> dict:
        """Mean loss and accuracy over a whole split, in chunks inside the program.

        The test split is stored in padded chunks; the training split is read by
        gathering padded chunks of indices from ``x_train`` (padding rows masked out).
        """
        def body(carry, chunk):
            if split == "train":
                idx, m = chunk
                x, y = data["x_train"][idx], data["y_train"][idx]
            else:
                x, y, m = chunk
            out, _ = self.apply(params, model_state, x, train=False)
            valid = m > 0
            loss_sum = jnp.sum(jnp.where(valid, self.objective.per_example(out, y), 0.0))
            hit_sum = (jnp.sum(jnp.where(valid, self.objective.correct(out, y), 0.0))
                       if self.objective.has_accuracy else 0.0)
            return (carry[0] + loss_sum, carry[1] + hit_sum), None

        mask = data[f"{split}_mask"]
        if split == "train":
            xs = (data["train_idx_chunks"], mask)
        else:
            xs = (data[f"x_{split}_chunks"], data[f"y_{split}_chunks"], mask)
        (loss_sum, hit_sum), _ = jax.lax.scan(body, (jnp.zeros(()), jnp.zeros(())), xs)
        n = jnp.sum(mask)
        out = {f"{split}_loss": loss_sum / n}
        if self.objective.has_accuracy:
            out[f"{split}_acc"] = hit_sum / n
        return out

    def batch_indices(self, key, epoch_idx):
        """Training-set indices of every minibatch of epoch ``epoch_idx``: [steps, batch_size]
        (a fresh permutation per epoch from ``fold_in(fold_in(key, 0), epoch)``)."""
        spe, bs, n = self.steps_per_epoch, self.config.batch_size, self.dataset.num_train
        perm = jax.random.permutation(jax.random.fold_in(jax.random.fold_in(key, _SHUFFLE), epoch_idx), n)
        return perm[: spe * bs].reshape(spe, bs)

    def init_carry(self, key, hp, hooks=hooks_lib.NO_HOOKS):
        """``(TrainState, hook state)``: what the epoch scan carries."""
        state = self.init(key, hp)
        return state, hooks_lib.init_state(hooks, state)

    def run_epochs(self, carry, hp, data, num_epochs: int, hooks=hooks_lib.NO_HOOKS):
        """``num_epochs`` epochs as one scan; returns the carry and per-step / per-epoch history
        (``probes`` in it when ``hooks`` has probes)."""
        self.num_traces += 1
        tx = self.optimizer(hp)
        spe = self.steps_per_epoch
        in_epoch = bool(hooks.probes) and hooks.probe_group == 1
        block = hooks.probe_block if in_epoch else spe
        step_ckpt = bool(hooks.ckpt_steps) and not hooks.ckpt_at_epoch_end

        def step(c, idx_B):
            st, hs = c
            st, out = self.train_step(st, data["x_train"][idx_B], data["y_train"][idx_B], hp, tx)
            if step_ckpt:
                hs = dict(hs, ckpt=hooks_lib.write_checkpoint(hooks, hs["ckpt"], st))
            return (st, hs), out

        def probe(c, idx_B):
            st, hs = c
            hs, values = hooks_lib.run_probes(hooks, hs, st, (data["x_train"][idx_B], data["y_train"][idx_B]))
            return (st, hs), values

        def steps_block(c, idx_PxB):
            c, out = jax.lax.scan(step, c, idx_PxB)
            if in_epoch:
                c, values = probe(c, idx_PxB[-1])
                return c, (out, values)
            return c, (out, {})

        def epoch(c, _):
            st, hs = c
            idx = self.batch_indices(st.key, st.step // spe).reshape(spe // block, block, -1)
            c, ((loss, gnorm), values) = jax.lax.scan(steps_block, c, idx)
            st, hs = c
            if hooks.ckpt_steps and hooks.ckpt_at_epoch_end:
                hs = dict(hs, ckpt=hooks_lib.write_checkpoint(hooks, hs["ckpt"], st))
            metrics = self.evaluate(st.params, st.model_state, data, "test")
            if self.config.eval_train:
                metrics.update(self.evaluate(st.params, st.model_state, data, "train"))
            metrics = {k: jnp.where(st.diverged_at < 0, v, jnp.nan) for k, v in metrics.items()}
            out = {"loss": loss.reshape(-1), "grad_norm": gnorm.reshape(-1), **metrics}
            if in_epoch:
                out["probes"] = values
            return (st, hs), out

        if hooks.probes and not in_epoch:  # one probe per group of epochs
            m = hooks.probe_group
            if num_epochs % m:
                raise ValueError(f"run_epochs: num_epochs={num_epochs} is not a multiple of the probe group {m}")

            def group(c, _):
                c, out = jax.lax.scan(epoch, c, None, length=m)
                st = c[0]
                c, values = probe(c, self.batch_indices(st.key, st.step // spe - 1)[-1])
                return c, (out, values)

            carry, (hist, values) = jax.lax.scan(group, carry, None, length=num_epochs // m)
            hist = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), hist)
            hist["probes"] = values
        else:
            carry, hist = jax.lax.scan(epoch, carry, None, length=num_epochs)
            if in_epoch:  # [epochs, probes per epoch, ...] -> [probes, ...]
                hist["probes"] = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), hist["probes"])
        for k in ("loss", "grad_norm"):
            hist[k] = hist[k].reshape(-1)
        hist["diverged_at"] = carry[0].diverged_at
        return carry, hist

    @staticmethod
    def finish(carry, hist):
        """``(state, history)`` from the final carry: checkpoints move into the history."""
        state, hs = carry
        if "ckpt" in hs:
            hist = dict(hist, checkpoints=hs["ckpt"])
        return state, hist

    def run(self, key, hp_overrides=None, data=None, num_epochs=None, hooks=hooks_lib.NO_HOOKS):
        """Init + all epochs (pure; jit/vmap it): ``(state, history)``."""
        hp = self.hparams(hp_overrides)
        carry = self.init_carry(key, hp, hooks)
        carry, hist = self.run_epochs(carry, hp, self.data if data is None else data,
                                      num_epochs or self.config.epochs, hooks)
        return self.finish(carry, hist)

    # ---------------------------------------------------------------- compiled
    def compiled(self, grid_names: tuple = (), levels: int = 0, hooks=hooks_lib.NO_HOOKS):
        """Cached jitted ``(init_carry, run_epochs, full_run)`` for a set of swept field names.

        ``levels`` is the number of vmap axes: 0 (one run), 1 (seeds) or 2 (a flat
        axis of grid points outside the seed axis); ``hooks`` (checkpoints, probes) are
        part of the program.
        """
        cache_key = (grid_names, levels, hooks)
        if cache_key in self._jitted:
            return self._jitted[cache_key]

        def vmapped(f, key_axis):
            # f(key_or_carry, grid_hp); seeds are the inner axis, grid points the outer.
            if levels >= 1:
                f = jax.vmap(f, (0, None))
            if levels == 2:
                f = jax.vmap(f, (key_axis, 0))
            return f

        def init(key, grid_hp):
            return vmapped(lambda k, g: self.init_carry(k, self.hparams(g), hooks), None)(key, grid_hp)

        def epochs(carry, grid_hp, data, num_epochs):
            f = lambda c, g: self.run_epochs(c, self.hparams(g), data, num_epochs, hooks)  # noqa: E731
            return vmapped(f, 0)(carry, grid_hp)

        def full(key, grid_hp, data):
            return vmapped(lambda k, g: self.run(k, g, data, hooks=hooks), None)(key, grid_hp)

        fns = (jax.jit(init), jax.jit(epochs, static_argnums=3), jax.jit(full))
        self._jitted[cache_key] = fns
        return fns

    def _chunk_program(self, grid_names: tuple, levels: int, chunk: int, hooks):
        """Cached ``jit((carry, grid_hp, data) -> run_epochs(..., chunk))`` for the chunked path."""
        cache_key = ("chunk", grid_names, levels, chunk, hooks)
        if cache_key not in self._jitted:
            epochs = self.compiled(grid_names, levels, hooks)[1]
            self._jitted[cache_key] = jax.jit(lambda carry, grid_hp, data: epochs(carry, grid_hp, data, chunk))
        return self._jitted[cache_key]

    def execute(self, keys, grid_hp, *, levels: int, progress: bool, desc: str = "",
                hooks=hooks_lib.NO_HOOKS, return_init: bool = False):
        """Run the whole program, fused, or in chunks of epochs.

        It runs in equal chunks of epochs (the largest divisor of ``epochs`` not above
        ``config.chunk_epochs``, default ``ceil(epochs / 20)``, and a multiple of the probe
        group when probes run every few epochs) under a progress bar when ``progress`` is
        set, and always inside a :func:`lossatlas.checkpoint.checkpointing` block, which
        then also saves and resumes the run between chunks (see :mod:`lossatlas.checkpoint`);
        otherwise as one fused program. Chunked and fused differ only by floating-point
        reassociation. With several devices (e.g. every CPU core, or every process's devices
        after ``lossatlas.devices.initialize_distributed``) the seed axis, and with a grid the
        grid-point axis, are sharded over them on a ``("grid", "seed")`` mesh where the
        sizes divide (``lossatlas.devices.mesh_for``; else on the default device). The fused
        run's memory is estimated first (``lossatlas.memory.run_vmapped``): grid points, then
        seeds, run in equal chunks if it would not fit; a chunk of epochs (which carries
        every member's state) is estimated once per shape and refused with a one-line
        error if it would not fit.

        Args:
          keys: the run's key, or per-seed keys ``[S]`` (``levels >= 1``).
          grid_hp: ``{field: values [P]}`` for ``levels == 2``, else ``{}``.
          levels: number of vmap axes (see :meth:`compiled`).
          progress: show a progress bar (runs chunked).
          desc: label of the progress bar.
          hooks: checkpoints and probes (:func:`lossatlas.train.hooks.resolve`).
          return_init: also return the initial state.

        Returns:
          ``(state, history)`` (``(state, history, initial state)`` with ``return_init``)
          with leading axes ``[P, S]`` / ``[S]`` / none.
        """
        names = tuple(sorted(grid_hp))
        init, epochs, full = self.compiled(names, levels, hooks)
        # seeds (and grid points) split over every device where the sizes divide (lossatlas.devices)
        mesh = None
        if levels == 1:
            mesh = devices.mesh_for(keys.shape[0], "seed")
        elif levels == 2:
            mesh = devices.mesh_for((next(iter(grid_hp.values())).shape[0], keys.shape[0]), ("grid", "seed"))
            grid_hp = devices.shard_batch_axis(grid_hp, mesh, 0, ("grid",))
        keys = devices.shard_batch_axis(keys, mesh, 0, ("seed",))
        data = self.device_data(mesh)
        extra = (init(keys, grid_hp)[0],) if return_init else ()
        if not progress and checkpoint.active() is None:
            # estimated first: chunked over grid points, then seeds, if it would not fit
            out = memory.run_vmapped(full, (keys, grid_hp, data), {0: (), 1: (0,), 2: (1, 0)}[levels],
                                     what=f"sweep ({desc})" if levels else "make_train", lower=MEMORY_HINT)
            return tuple(out) + extra
        total = self.config.epochs
        group = hooks.probe_group if hooks.probes else 1
        chunk = epochs_per_chunk(total, self.config.chunk_epochs or math.ceil(total / 20), group)
        fingerprint = lambda: {  # noqa: E731 -- hashes the data: only when checkpoints are written
            "kind": "train", "config": repr(self.config), "levels": levels, "epochs": total, "chunk_epochs": chunk,
            "hooks": repr(hooks), "dataset": f"{self.dataset.name}:" + checkpoint.digest(
                self.dataset.x_train, self.dataset.y_train, self.dataset.x_test, self.dataset.y_test),
            "keys": checkpoint.digest(keys), "grid": {k: np.asarray(v).tolist() for k, v in sorted(grid_hp.items())}}

        def postfix(hist):
            return {"test_loss": f"{float(np.nanmean(jax.device_get(hist['test_loss']))):.4f}"}

        chunk_fn = self._chunk_program(names, levels, chunk, hooks)

        def step(carry):  # compiled once per shape, refused up front if XLA's estimate does not fit
            run = memory.compile_checked(chunk_fn, (carry, grid_hp, data), lower=MEMORY_HINT,
                                         what=f"sweep ({desc})" if levels else "make_train")
            return run(carry, grid_hp, data)

        carry, hist = checkpoint.run_chunks(
            fingerprint=fingerprint, init=lambda: devices.shard_batch_axis(init(keys, grid_hp), mesh),
            step=step, num_chunks=total // chunk,
            units_per_chunk=chunk, concat=functools.partial(checkpoint.concat_chunks, axis=levels),
            unit="epoch", desc=desc or self.config.model,
            postfix=postfix, progress=progress)
        return self.finish(carry, hist) + extra

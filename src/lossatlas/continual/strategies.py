"""Continual-learning strategies as pure functions with a NamedTuple state (optax style).

A :class:`Strategy` is an ``init`` / ``update`` pair plus three optional hooks; the stream
program (``lossatlas.continual.program``) calls them in the same places for every strategy,
so its training loop never branches on which strategy runs::

    state = init(params, ctx)                                      # once, before task 0
    per step:
      loss, grads = value_and_grad(loss)(state, params, batch, ctx)  # objective of this step
      grads, state = update(state, grads, params, batch, ctx)      # e.g. A-GEM projection
      params' = optimizer step with grads
      state = observe(state, raw_grads, params, params', batch, ctx)  # e.g. SI path integral,
                                                                    #      reservoir insertion
    after each task:
      state = consolidate(state, params, ctx)                      # EWC Fisher, SI omega,
                                                                    # LwF teacher, memory
The default hooks do nothing (``loss`` is the plain loss of the batch), so naive fine-tuning
is ``Strategy("naive")`` with every default.

The lambda convention (one for every strategy)
------------------------------------------------
``lam`` is a traced scalar of the program (``ctx.lam``), so a grid of values is a vmap axis.
Every quadratic penalty is

    loss = L_task + (lam / 2) * sum_k w_k (theta_k - theta*_k)^2

with ``w = 1`` (L2), ``w = F`` (EWC, the Fisher of the earlier tasks), ``w = Omega`` (SI).
This is Kirkpatrick et al.'s (2017) form, so their lambda is ``lam``. Zenke et al.'s (2017)
SI strength ``c`` (``L + c sum Omega (theta - theta*)^2``) is ``lam / 2``. Avalanche's
``EWCPlugin(ewc_lambda)`` adds ``ewc_lambda * sum F (theta - theta*)^2`` with no 1/2 (checked
in avalanche/training/plugins/ewc.py), so ``ewc_lambda = lam / 2``; note also that its
default importance is the ``"batch"`` estimator here (squared minibatch gradients, of order
``1/batch_size`` of the per-example Fisher), so to match an Avalanche run use
``ewc(fisher="batch", fisher_batch=train_mb_size)`` and ``lam = 2 * ewc_lambda``. For LwF,
``loss = L_task + lam * KD``.

Multi-task EWC (Kirkpatrick et al.'s sum of one penalty per earlier task) is stored as one
quadratic: ``sum_t F_t (theta - theta*_t)^2 = A (theta - m)^2 + const`` with ``A = sum_t F_t``
and ``m = sum_t F_t theta*_t / A``; the gradients are identical, the reported penalty omits
the constant (it does not depend on ``theta``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from lossatlas.continual import buffer as membuf
from lossatlas.continual.fisher import FISHER_METHODS, fisher_diag

NEG = -1e9  # logit given to masked-out output units (finite: keeps gradients finite)

tmap = jax.tree_util.tree_map


class Context(NamedTuple):
    """What a hook sees besides its state (built inside the program; not a jit argument).

    Attributes:
      task: int32 scalar, the task being trained (at ``consolidate``: the task just finished).
      step: int32 scalar, global optimiser step.
      key: PRNG key for this call (fresh per step / per consolidation).
      lam: float32 scalar, the regularisation strength (a vmap axis).
      data: the stream on the device: ``x_train [T, N, ...]``, ``y_train [T, N]``,
        ``x_test``, ``y_test``, ``masks [T, T, K]`` (bool).
      apply: ``apply(params, x) -> logits [B, K]`` (unmasked).
      loss: ``loss(params, batch) -> scalar``: weighted mean cross-entropy of a batch
        ``{"x", "y", "task", "weight"}`` at the current task, each example's logits masked
        with ``data["masks"][task, example_task]``.
      num_tasks, batch_size: static ints.
      member: int32 scalar, which member of a :func:`~lossatlas.continual.stack_strategies`
        stack runs (a vmap axis like ``lam``; 0 for a plain strategy).
    """
    task: Any
    step: Any
    key: Any
    lam: Any
    data: dict
    apply: Callable
    loss: Callable
    num_tasks: int
    batch_size: int
    member: Any = 0


def masked(logits, mask):
    """``logits`` with masked-out units set to a large negative number (mask broadcasts)."""
    return jnp.where(mask, logits, jnp.asarray(NEG, logits.dtype))


def _no_init(params, ctx):
    return ()


def _plain_loss(state, params, batch, ctx):
    return ctx.loss(params, batch)


def _no_update(state, grads, params, batch, ctx):
    return grads, state


def _no_observe(state, grads, old_params, new_params, batch, ctx):
    return state


def _no_consolidate(state, params, ctx):
    return state


class Strategy(NamedTuple):
    """One continual-learning strategy: pure functions and a hashable identity.

    Attributes:
      name: short name (``"ewc"``, ``"si"``, ...).
      init: ``init(params, ctx) -> state`` (a pytree, usually a NamedTuple).
      loss: ``loss(state, params, batch, ctx) -> scalar``, the objective of one step.
      update: ``update(state, grads, params, batch, ctx) -> (grads, state)``, applied to the
        gradient of ``loss`` before the optimiser.
      observe: ``observe(state, grads, old_params, new_params, batch, ctx) -> state`` after
        the optimiser step (``grads``: the gradient of ``loss`` before ``update``).
      consolidate: ``consolidate(state, params, ctx) -> state`` at the end of every task.
      lam: default regularisation strength (used when ``run_stream`` gets no ``lams``).
      spec: hashable identity ``(name, static hyperparameters...)``: two strategies with the
        same spec share compiled programs. ``None`` compares by the hook functions.
      uses_lam: whether the hooks read ``ctx.lam``. ``run_stream`` refuses a grid of several
        lambdas for a strategy that does not (its members would be identical runs).
        Default True, so a custom strategy is never refused.
      members: ``((label, Strategy), ...)`` for a stack of strategies
        (:func:`~lossatlas.continual.stack_strategies`), empty otherwise.
    """
    name: str
    init: Callable = _no_init
    loss: Callable = _plain_loss
    update: Callable = _no_update
    observe: Callable = _no_observe
    consolidate: Callable = _no_consolidate
    lam: float = 0.0
    spec: Any = None
    uses_lam: bool = True
    members: tuple = ()

    def _identity(self):
        return self.spec if self.spec is not None else tuple(self[:6])

    def __hash__(self):
        return hash(self._identity())

    def __eq__(self, other):
        return isinstance(other, Strategy) and self._identity() == other._identity()

    def __ne__(self, other):
        return not self == other


# ----------------------------------------------------------------------------- helpers

def _check_nonneg(fn, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value != value \
            or value == float("inf"):
        raise ValueError(f"{fn}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_posint(fn, name, value, optional=False):
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive integer{' or None' if optional else ''}, got {value!r}")
    return value


def quadratic_penalty(params, importance, anchor):
    """``0.5 * sum_k w_k (theta_k - anchor_k)^2`` over a pytree."""
    terms = tmap(lambda p, w, a: jnp.sum(w * jnp.square(p - a)), params, importance, anchor)
    return 0.5 * sum(jax.tree_util.tree_leaves(terms))


class Quadratic(NamedTuple):
    """State of the quadratic strategies: per-parameter weights and the anchor point."""
    importance: Any
    anchor: Any


def _quadratic_loss(state, params, batch, ctx):
    return ctx.loss(params, batch) + ctx.lam * quadratic_penalty(params, state.importance, state.anchor)


def _quadratic_init(params, ctx):
    return Quadratic(tmap(jnp.zeros_like, params), tmap(jnp.array, params))


# ----------------------------------------------------------------------------- strategies

def naive() -> Strategy:
    """Plain fine-tuning: train on each task in turn, no protection against forgetting."""
    return Strategy("naive", spec=("naive",), uses_lam=False)


def joint(all_tasks: bool = False) -> Strategy:
    """Joint training, the upper bound: every step draws its batch from earlier tasks too.

    Args:
      all_tasks: False: at task ``t`` each example of the batch is drawn uniformly from the
        training data of tasks ``0..t`` (cumulative joint training); True: from every task of
        the stream from the start (multitask training; the accuracy matrix then shows the
        multitask model throughout).

    The batch the program offers is replaced (same size), drawn with replacement; each drawn
    example is scored with the mask of its own task (``masks[t, s]``).
    """
    if not isinstance(all_tasks, bool):
        raise ValueError(f"joint: all_tasks must be True or False, got {all_tasks!r}")

    def loss(state, params, batch, ctx):
        b = batch["y"].shape[0]
        k_task, k_ex = jax.random.split(jax.random.fold_in(ctx.key, 11))
        hi = ctx.num_tasks if all_tasks else ctx.task + 1
        s = jax.random.randint(k_task, (b,), 0, hi)
        n = jax.random.randint(k_ex, (b,), 0, ctx.data["y_train"].shape[1])
        drawn = {"x": ctx.data["x_train"][s, n], "y": ctx.data["y_train"][s, n], "task": s,
                 "weight": jnp.ones((b,), jnp.float32)}
        return ctx.loss(params, drawn)

    return Strategy("joint", loss=loss, spec=("joint", all_tasks), uses_lam=False)


def l2(lam: float = 1.0) -> Strategy:
    """L2 to the previous solution: ``(lam/2) ||theta - theta*_{t-1}||^2`` (Kirkpatrick et al. 2017's baseline).

    Every parameter is pulled with the same stiffness towards the parameters at the end of
    the previous task (the anchor moves after every task).
    """
    lam = _check_nonneg("l2", "lam", lam)

    def consolidate(state, params, ctx):
        return Quadratic(tmap(jnp.ones_like, params), tmap(jnp.array, params))

    return Strategy("l2", init=_quadratic_init, loss=_quadratic_loss, consolidate=consolidate, lam=lam,
                    spec=("l2",))


def ewc(lam: float = 100.0, *, fisher: str = "exact", online: bool = False, gamma: float = 1.0,
        fisher_examples: int | None = None, fisher_batch: int | None = None, chunk_size: int = 64) -> Strategy:
    """Elastic weight consolidation (Kirkpatrick et al. 2017) and online EWC (Schwarz et al. 2018).

    After task ``t`` the diagonal Fisher ``F_t`` of the model on task ``t``'s training inputs
    (logits masked to ``masks[t, t]``) is computed with :func:`~lossatlas.continual.fisher.fisher_diag`.

    * ``online=False`` (Kirkpatrick et al.): one penalty per earlier task,
      ``(lam/2) sum_t sum_k F_t,k (theta_k - theta*_t,k)^2``.
    * ``online=True`` (Schwarz et al. 2018, "Progress & compress"): one running Fisher
      ``F* <- gamma F* + F_t`` anchored at the latest solution,
      ``(lam/2) sum_k F*_k (theta_k - theta*_t,k)^2``.

    Args:
      lam: default strength (see the module docstring for the convention).
      fisher: ``"exact"``, ``"sampled"``, ``"empirical"`` or ``"batch"`` (``FISHER_METHODS``).
      online: online EWC.
      gamma: decay of the running Fisher (online only), in [0, 1].
      fisher_examples: use the first this many training examples of the task (default all).
      fisher_batch: minibatch size of the ``"batch"`` estimator (default the training batch size).
      chunk_size: per-example gradients held at once (memory only).
    """
    fn = "ewc"
    lam = _check_nonneg(fn, "lam", lam)
    if fisher not in FISHER_METHODS:
        raise ValueError(f"ewc: fisher must be one of {FISHER_METHODS}, got {fisher!r}")
    if not isinstance(online, bool):
        raise ValueError(f"ewc: online must be True or False, got {online!r}")
    gamma = _check_nonneg(fn, "gamma", gamma)
    if gamma > 1:
        raise ValueError(f"ewc: gamma must be in [0, 1], got {gamma}")
    if not online and gamma != 1.0:
        raise ValueError("ewc: gamma is the decay of online EWC; pass online=True to use it")
    fisher_examples = _check_posint(fn, "fisher_examples", fisher_examples, optional=True)
    fisher_batch = _check_posint(fn, "fisher_batch", fisher_batch, optional=True)
    chunk_size = _check_posint(fn, "chunk_size", chunk_size)

    def consolidate(state, params, ctx):
        t = ctx.task
        x = ctx.data["x_train"][t][:fisher_examples]
        y = ctx.data["y_train"][t][:fisher_examples]
        mask = ctx.data["masks"][t, t]
        f = fisher_diag(lambda p, xs: masked(ctx.apply(p, xs), mask), params, x, y, method=fisher,
                        key=ctx.key, batch_size=min(fisher_batch or ctx.batch_size, x.shape[0]),
                        chunk_size=chunk_size)
        if online:
            return Quadratic(tmap(lambda a, fi: gamma * a + fi, state.importance, f), tmap(jnp.array, params))
        total = tmap(jnp.add, state.importance, f)
        anchor = tmap(lambda a, m, fi, p, tot: jnp.where(tot > 0, (a * m + fi * p) / jnp.where(tot > 0, tot, 1.0), p),
                      state.importance, state.anchor, f, params, total)
        return Quadratic(total, anchor)

    name = "online_ewc" if online else "ewc"
    return Strategy(name, init=_quadratic_init, loss=_quadratic_loss, consolidate=consolidate, lam=lam,
                    spec=(name, fisher, gamma, fisher_examples, fisher_batch, chunk_size))


class SIState(NamedTuple):
    """Synaptic Intelligence state: importance Omega, anchor, running path integral omega, task start."""
    importance: Any
    anchor: Any
    omega: Any
    start: Any


def si(lam: float = 1.0, *, xi: float = 0.1) -> Strategy:
    """Synaptic Intelligence (Zenke, Poole & Ganguli 2017).

    Each step adds ``-g_k * Delta theta_k`` to the path integral ``omega_k``, with ``g`` the
    gradient of the *task* loss (Zenke et al. use the unregularised gradient; the program
    hands ``observe`` the full gradient and SI subtracts its own penalty's gradient
    ``lam * Omega (theta - theta*)``) and ``Delta theta`` the optimiser's actual step. After
    task ``t``: ``Omega += omega / ((theta_t - theta_{t-1})^2 + xi)``, ``omega = 0``, and the
    anchor moves to ``theta_t``. Penalty ``(lam/2) sum Omega (theta - theta*)^2``, so Zenke's
    ``c = lam / 2``.

    Args:
      lam: default strength.
      xi: damping ``xi > 0`` of the importance (Zenke et al. used 1e-3 on permuted MNIST;
        van de Ven & Tolias 2019 used 0.1).
    """
    lam = _check_nonneg("si", "lam", lam)
    xi = _check_nonneg("si", "xi", xi)
    if xi == 0:
        raise ValueError("si: xi must be > 0 (it keeps Omega finite for parameters that did not move)")

    def init(params, ctx):
        z = tmap(jnp.zeros_like, params)
        return SIState(z, tmap(jnp.array, params), z, tmap(jnp.array, params))

    def loss(state, params, batch, ctx):
        return ctx.loss(params, batch) + ctx.lam * quadratic_penalty(params, state.importance, state.anchor)

    def observe(state, grads, old, new, batch, ctx):
        task_grad = tmap(lambda g, w, p, a: g - ctx.lam * w * (p - a), grads, state.importance, old, state.anchor)
        omega = tmap(lambda o, g, p1, p0: o - g * (p1 - p0), state.omega, task_grad, new, old)
        return state._replace(omega=omega)

    def consolidate(state, params, ctx):
        imp = tmap(lambda w, o, p, s: w + o / (jnp.square(p - s) + xi), state.importance, state.omega, params,
                   state.start)
        return SIState(imp, tmap(jnp.array, params), tmap(jnp.zeros_like, params), tmap(jnp.array, params))

    return Strategy("si", init=init, loss=loss, observe=observe, consolidate=consolidate, lam=lam,
                    spec=("si", xi))


MEMORIES = ("reservoir", "per_task")


def _memory_hooks(fn, capacity, memory):
    """(init, observe, consolidate) that keep a :class:`~lossatlas.continual.buffer.Buffer` filled."""
    capacity = _check_posint(fn, "capacity", capacity)
    if memory not in MEMORIES:
        raise ValueError(f"{fn}: memory must be one of {MEMORIES}, got {memory!r}")

    def init(params, ctx):
        if memory == "per_task" and capacity < ctx.num_tasks:
            raise ValueError(f"{fn}: memory='per_task' needs capacity >= num_tasks={ctx.num_tasks}, got {capacity}")
        x = ctx.data["x_train"]
        return membuf.buffer_init(capacity, x.shape[2:], x.dtype)

    def observe(state, grads, old, new, batch, ctx):
        if memory != "reservoir":
            return state
        return membuf.reservoir_add(state, batch["x"], batch["y"], batch["task"], jax.random.fold_in(ctx.key, 22))

    def consolidate(state, params, ctx):
        if memory != "per_task":
            return state
        t = ctx.task
        return membuf.add_task_examples(state, ctx.data["x_train"][t], ctx.data["y_train"][t], t, ctx.num_tasks,
                                        jax.random.fold_in(ctx.key, 33))

    return init, observe, consolidate


def replay(capacity: int = 200, *, replay_batch: int | None = None, memory: str = "reservoir") -> Strategy:
    """Experience replay with an episodic memory (Chaudhry et al. 2019, "On tiny episodic memories").

    Each step the batch is the current minibatch concatenated with ``replay_batch`` examples
    drawn from the memory (the loss is the mean over both; drawn examples are scored with
    their own task's mask). The memory is filled by reservoir sampling over the whole stream
    (``memory="reservoir"``, default) or with ``capacity // T`` random examples of each task
    at its end (``"per_task"``).

    Args:
      capacity: memory slots.
      replay_batch: memory examples per step (default: the training batch size).
      memory: ``"reservoir"`` or ``"per_task"``.
    """
    fn = "replay"
    replay_batch = _check_posint(fn, "replay_batch", replay_batch, optional=True)
    init, observe, consolidate = _memory_hooks(fn, capacity, memory)

    def loss(state, params, batch, ctx):
        mem = membuf.sample(state, jax.random.fold_in(ctx.key, 44), replay_batch or ctx.batch_size)
        both = {k: jnp.concatenate([batch[k], mem[k].astype(batch[k].dtype)]) for k in ("x", "y", "task", "weight")}
        return ctx.loss(params, both)

    return Strategy("replay", init=init, loss=loss, observe=observe, consolidate=consolidate,
                    spec=("replay", capacity, replay_batch, memory), uses_lam=False)


def agem_project(grads, ref_grads):
    """A-GEM's projection (Chaudhry et al. 2019): if ``g . g_ref < 0`` return
    ``g - (g . g_ref / g_ref . g_ref) g_ref``, else ``g`` (dot products over the whole pytree)."""
    leaves = lambda t: jax.tree_util.tree_leaves(t)  # noqa: E731
    dot = sum(jnp.vdot(a, b) for a, b in zip(leaves(grads), leaves(ref_grads)))
    ref_sq = sum(jnp.vdot(b, b) for b in leaves(ref_grads))
    coef = jnp.where(dot < 0, dot / jnp.where(ref_sq > 0, ref_sq, 1.0), 0.0)
    return tmap(lambda g, r: g - coef * r, grads, ref_grads)


def agem(capacity: int = 200, *, ref_batch: int = 256, memory: str = "per_task") -> Strategy:
    """Averaged gradient episodic memory, A-GEM (Chaudhry, Ranzato, Rohrbach & Elhoseiny 2019).

    Each step a reference gradient ``g_ref`` of the loss on ``ref_batch`` examples drawn from
    the memory constrains the update: if the step's gradient ``g`` has ``g . g_ref < 0`` it
    is projected to ``g - (g . g_ref / |g_ref|^2) g_ref`` (see :func:`agem_project`). The
    memory holds ``capacity // T`` random examples of each finished task (``"per_task"``,
    the paper's episodic memory) or a reservoir sample of everything seen (``"reservoir"``).
    """
    fn = "agem"
    ref_batch = _check_posint(fn, "ref_batch", ref_batch)
    init, observe, consolidate = _memory_hooks(fn, capacity, memory)

    def update(state, grads, params, batch, ctx):
        ref = membuf.sample(state, jax.random.fold_in(ctx.key, 55), ref_batch)
        ref_grads = jax.grad(ctx.loss)(params, ref)  # all-zero when the memory is empty
        return agem_project(grads, ref_grads), state

    return Strategy("agem", init=init, update=update, observe=observe, consolidate=consolidate,
                    spec=("agem", capacity, ref_batch, memory), uses_lam=False)


class LwFState(NamedTuple):
    """Learning without Forgetting state: the teacher (previous solution) and whether it exists."""
    teacher: Any
    active: Any


def distillation(student_logits, teacher_logits, head_masks, head_weights, temperature):
    """Mean over heads of ``T^2 KL(softmax(teacher/T) || softmax(student/T))`` per example.

    Args:
      student_logits, teacher_logits: ``[B, K]`` unmasked logits.
      head_masks: ``[H, K]`` bool, the output units of each head.
      head_weights: ``[H]`` non-negative weights (normalised here; all zero gives 0).
      temperature: softmax temperature ``T``.

    Returns:
      ``[B]`` distillation losses.
    """
    t = temperature
    ls = jax.nn.log_softmax(masked(student_logits[:, None, :] / t, head_masks[None]), axis=-1)
    lt = jax.nn.log_softmax(masked(jax.lax.stop_gradient(teacher_logits)[:, None, :] / t, head_masks[None]), axis=-1)
    kl = jnp.sum(jnp.where(head_masks[None], jnp.exp(lt) * (lt - ls), 0.0), axis=-1)  # [B, H]
    w = head_weights / jnp.maximum(jnp.sum(head_weights), 1e-12)
    return (t * t) * jnp.sum(kl * w[None, :], axis=-1)


def lwf(lam: float = 1.0, *, temperature: float = 2.0) -> Strategy:
    """Learning without Forgetting (Li & Hoiem 2016/2018): distil the previous model on new data.

    At task ``t > 0`` the loss adds ``lam * T^2 KL(teacher || student)`` on the current batch,
    at temperature ``T`` (Hinton et al.'s ``T^2`` keeps the gradient scale independent of
    ``T``), computed separately on every earlier task's head ``masks[t-1, s]``, ``s < t``,
    and averaged (van de Ven & Tolias 2019's per-head LwF; in domain- and class-IL all heads
    coincide). The teacher is the model at the end of the previous task.
    """
    lam = _check_nonneg("lwf", "lam", lam)
    temperature = _check_nonneg("lwf", "temperature", temperature)
    if temperature == 0:
        raise ValueError("lwf: temperature must be > 0")

    def init(params, ctx):
        return LwFState(tmap(jnp.array, params), jnp.zeros((), jnp.float32))

    def loss(state, params, batch, ctx):
        prev = jnp.maximum(ctx.task - 1, 0)
        heads = ctx.data["masks"][prev]  # [T, K]
        weights = (jnp.arange(ctx.num_tasks) < ctx.task).astype(jnp.float32)
        kd = distillation(ctx.apply(params, batch["x"]), ctx.apply(state.teacher, batch["x"]), heads, weights,
                          temperature)
        w = batch["weight"]
        kd = jnp.sum(w * kd) / jnp.maximum(jnp.sum(w), 1.0)
        return ctx.loss(params, batch) + ctx.lam * state.active * kd

    def consolidate(state, params, ctx):
        return LwFState(tmap(jnp.array, params), jnp.ones((), jnp.float32))

    return Strategy("lwf", init=init, loss=loss, consolidate=consolidate, lam=lam, spec=("lwf", temperature))


#: name -> constructor, for configs and the CLI.
STRATEGIES: dict[str, Callable[..., Strategy]] = {
    "naive": naive, "joint": joint, "l2": l2, "ewc": ewc,
    "online_ewc": lambda lam=100.0, **kw: ewc(lam, online=True, **kw),
    "si": si, "replay": replay, "agem": agem, "lwf": lwf,
}


def get_strategy(name: str, **kwargs) -> Strategy:
    """Build a strategy by name (``STRATEGIES``); unknown names raise a ValueError listing the known ones."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[name](**kwargs)


__all__ = ["Context", "LwFState", "MEMORIES", "NEG", "Quadratic", "SIState", "STRATEGIES", "Strategy", "agem",
           "agem_project", "distillation", "ewc", "get_strategy", "joint", "l2", "lwf", "masked", "naive",
           "quadratic_penalty", "replay", "si"]

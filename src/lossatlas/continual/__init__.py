"""Continual learning: task streams, strategies, one compiled stream program, metrics.

A whole stream (tasks x epochs x minibatches) is one ``lax.scan`` program; seeds and a grid
of regularisation strengths are ``vmap`` axes of it. Typical use::

    import jax
    from lossatlas import data, continual as cl

    ds = data.load("digits")
    stream = cl.permuted(ds, num_tasks=5, key=jax.random.PRNGKey(0), scenario="domain")
    cfg = cl.StreamConfig(model="mlp", model_cfg={"widths": (100,)}, optimizer="sgd",
                          learning_rate=0.1, batch_size=32, epochs=2, eval_every=10)  # a TrainConfig
    out = cl.run_stream(stream, cl.ewc(fisher="exact"), cfg, key=jax.random.PRNGKey(1),
                        seeds=5, lams=[0.0, 10.0, 100.0, 1000.0])
    out["R"]            # [L=4, S=5, T, T]: accuracy on task j after training task i
    out["curves"]       # [L, S, T * blocks, T]: accuracy on every task every 10 steps
    m = cl.summarize(out["R"], out["init_acc"])           # acc, bwt, fwt, forgetting, ... [L, S]
    mean, half = cl.mean_ci(m["acc"], axis=-1)            # over seeds

Streams (``streams``): :class:`Stream` holds stacked arrays ``x_train [T, N, ...]``,
``y_train [T, N]``, ``x_test [T, M, ...]``, ``y_test [T, M]`` (tasks truncated to the smallest)
and ``masks [T, T, K]``: the output units for an example of task ``j`` while at task ``i``.
Builders :func:`permuted`, :func:`split`, :func:`rotated` (images only; MNIST-1D has no
rotation) take a dataset, a key (task order / permutations / angles come from it) and a
``scenario`` of van de Ven & Tolias (2019): ``"task"`` (masked logits per task = multi-head),
``"domain"`` (shared units, within-task labels), ``"class"`` (one head over the classes seen
so far). ``Stream.subset(num_train, num_test)`` shrinks every task.

Strategies (``strategies``): a :class:`Strategy` is a NamedTuple of pure functions
``init(params, ctx) -> state``, ``loss(state, params, batch, ctx)``, ``update(state, grads,
params, batch, ctx) -> (grads, state)``, ``observe(state, grads, old, new, batch, ctx)``,
``consolidate(state, params, ctx)`` (defaults: nothing), a default ``lam`` and a hashable
``spec``. The :class:`Context` ``ctx`` gives the current task, step, key, ``lam`` (traced),
the device data, ``apply(params, x)`` and the masked batch ``loss(params, batch)``.
Constructors: :func:`naive`, :func:`joint`, :func:`l2`, :func:`ewc` (``fisher="exact" |
"sampled" | "empirical" | "batch"``, ``online=True, gamma`` for online EWC), :func:`si`,
:func:`replay`, :func:`agem`, :func:`lwf`; :func:`get_strategy` by name.

Lambda convention: every quadratic penalty is ``(lam/2) sum_k w_k (theta_k - theta*_k)^2``
(Kirkpatrick et al. 2017's lambda; Zenke et al.'s SI ``c = lam/2``; Avalanche's
``EWCPlugin(ewc_lambda)`` adds ``ewc_lambda * sum F (theta - theta*)^2`` with no 1/2, so
``ewc_lambda = lam/2``, and its importance is our ``fisher="batch"`` estimator). LwF adds
``lam * T^2 KL(teacher || student)``.

Program (``config``, ``program``, ``run``): :class:`StreamConfig` is a
:class:`lossatlas.train.TrainConfig` (model, optimizer, learning rate, schedule, clipping,
batch size, epochs per task, ...; checked once by ``TrainConfig.validate``) plus
``eval_every``, ``reset_optimizer`` and ``keep_params``. The stream program is built from
``lossatlas.train.program``'s pieces (init, optimiser, apply) with ``make_train``'s key
layout, so a one-task stream with :func:`naive` trains exactly as ``make_train`` on that task.
:func:`run_stream` ``(stream, strategy, config, key=, seeds=, lams=, validation=) -> dict of
numpy`` (``R [L, S, T, T]``, ``init_acc [L, S, T]``, ``loss [L, S, steps]``, ``curves``,
``curve_steps``, ``lams``, ``diverged_at [L, S]``: a member whose loss, gradient or parameters
became NaN/Inf is frozen there and its later losses and accuracies are NaN); the key is
required. A list of same-shaped streams adds a leading stream axis, ``validation`` streams
add ``val_R``. Its memory is estimated before it runs (``lossatlas.memory``). :func:`model_apply`
and :func:`init_params` give the model function and initial parameters of a (stream, config).

Methods as data (``stack``): :func:`stack_strategies` puts several strategies (e.g. L2, EWC
with each Fisher estimator, SI) on one vmap axis of one compiled program, optax
``inject_hyperparams`` / ``multi_transform`` style: member ``i`` follows strategy ``i`` alone
(up to floating-point rounding: the stacked program is a different compiled program; accuracy
matrices within 0.004 were measured); ``run_stream`` gives it a member axis (a shared lambda grid: ``[M, L, S]``; one
grid per member: a flat ``[P]`` axis)::

    quad = cl.stack_strategies({"l2": cl.l2(), "ewc": cl.ewc(), "si": cl.si()})
    out = cl.run_stream(stream, quad, cfg, key=key, seeds=5, lams=[1.0, 10.0, 100.0])

Building blocks: :func:`fisher_diag` (four diagonal-Fisher estimators), the episodic memory
(:mod:`lossatlas.continual.buffer`: reservoir sampling, per-task memory), :func:`agem_project`,
:func:`distillation`, :func:`quadratic_penalty`.

Metrics (``metrics``) from ``R`` and ``init_acc``: :func:`average_accuracy`,
:func:`backward_transfer`, :func:`forward_transfer` (Lopez-Paz & Ranzato 2017),
:func:`forgetting`, :func:`intransigence` (Chaudhry et al. 2018), :func:`learning_accuracy`,
:func:`summarize` (with ``diverged`` per member; its metrics are NaN), :func:`mean_ci` (over the
surviving, non-NaN members).
"""
from lossatlas.continual import buffer
from lossatlas.continual.fisher import FISHER_METHODS, fisher_diag
from lossatlas.continual.metrics import (average_accuracy, backward_transfer, forgetting, forgetting_per_task,
                                         forward_transfer, intransigence, learning_accuracy, mean_ci, summarize)
from lossatlas.continual.config import StreamConfig
from lossatlas.continual.program import StreamProgram, init_params, model_apply, program
from lossatlas.continual.run import run_stream
from lossatlas.continual.stack import member_labels, stack_strategies
from lossatlas.continual.streams import SCENARIOS, Stream, describe, num_steps, permuted, rotated, split
from lossatlas.continual.strategies import (STRATEGIES, Context, Strategy, agem, agem_project, distillation, ewc,
                                            get_strategy, joint, l2, lwf, masked, naive, quadratic_penalty,
                                            replay, si)

__all__ = [
    "FISHER_METHODS", "SCENARIOS", "STRATEGIES", "Context", "Stream", "StreamConfig", "StreamProgram", "Strategy",
    "agem", "agem_project", "average_accuracy", "backward_transfer", "buffer", "describe", "distillation", "ewc",
    "fisher_diag", "forgetting", "init_params", "member_labels", "model_apply", "stack_strategies", "forgetting_per_task", "forward_transfer", "get_strategy", "intransigence",
    "joint", "l2", "learning_accuracy", "lwf", "masked", "mean_ci", "naive", "num_steps", "permuted", "program",
    "quadratic_penalty", "replay", "rotated", "run_stream", "si", "split", "summarize",
]

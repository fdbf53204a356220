"""Gradient flow through depth: per-layer gradient norms and activation statistics.

One forward and one backward pass of a flax model gives, per layer, the norm of
the parameter gradient, the statistics of the hidden state (mean, std, fraction
saturated, fraction of dead units) and of the back-propagated gradient dL/dh
(Glorot & Bengio 2010, "Understanding the difficulty of training deep
feedforward neural networks", Figs. 3-7). Hidden states come from the models'
``record`` points (``intermediates`` / ``perturbations`` collections), so it works
for every model in the registry. Models whose layers are one ``nn.scan`` over a stacked
block (an MLP with ``scan_layers=True``) are reported layer by layer under the unrolled
model's names, through the model's ``unscan`` method (see :func:`param_names`).
"""
from __future__ import annotations

import functools
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lossatlas import losses
from lossatlas.treeutil import global_norm

# Where a unit counts as saturated, per activation (Glorot & Bengio 2010 use the
# flat tails of the sigmoid / tanh).
SATURATION = {"sigmoid": (0.02, 0.98), "tanh": (-0.98, 0.98)}


class Flow(NamedTuple):
    """Per-layer statistics of one forward/backward pass.

    Parameter statistics follow the order of the top-level parameter modules
    (``param_names``, input to output by the number in their names, see
    :func:`layer_order`; a scanned stack counts as its layers, see :func:`param_names`);
    hidden-state statistics
    follow the recorded layers (``layer_names``: ``layer_0`` ... ``layer_{L-1}``).

    Attributes:
      loss: the batch loss.
      param_names: names of the parameter modules (e.g. dense_0, norm_0, ..., readout).
      grad_norm: [P] Frobenius norm of each module's gradient (all its leaves).
      weight_norm: [P] norm of each module's parameters.
      layer_names: names of the recorded hidden layers.
      act_mean, act_std: [L] mean and std of each hidden state over batch and units.
      act_saturated: [L] fraction of entries in the activation's saturated tails
        (NaN for activations without tails, e.g. relu).
      act_zero: [L] fraction of exactly-zero entries (relu's inactive side).
      dead_units: [L] fraction of units that are zero for every example of the batch.
      backprop_std: [L] std of the back-propagated gradient B * dL/dh (scaled by the
        batch size B so it is the per-example gradient of that example's loss).
      backprop_norm: [L] mean over examples of ||B * dL/dh_example||.
      activations: {layer: [B, ...]} the hidden states (for histograms).
      backprop: {layer: [B, ...]} the per-example back-propagated gradients.
    """

    loss: jax.Array
    param_names: tuple
    grad_norm: jax.Array
    weight_norm: jax.Array
    layer_names: tuple
    act_mean: jax.Array
    act_std: jax.Array
    act_saturated: jax.Array
    act_zero: jax.Array
    dead_units: jax.Array
    backprop_std: jax.Array
    backprop_norm: jax.Array
    activations: dict
    backprop: dict


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def layer_order(name: str):
    """Sort key putting ``dense_3``/``norm_3`` after ``*_2`` and unnumbered modules (readout) last.

    Pytree flattening sorts dict keys as strings (``dense_10`` before ``dense_2``), so
    creation order is lost through ``jit``; layer order is recovered from the names.
    """
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else float("inf"), name)


def _unscan(model):
    """The model's map from scanned-stack trees to per-layer names (identity if it has none)."""
    fn = getattr(model, "unscan", None)
    return fn if callable(fn) else (lambda tree: tree)


def param_names(model, params) -> tuple:
    """Names of the parameter modules in the order of :class:`Flow`'s ``grad_norm`` / ``weight_norm``.

    The top-level modules of ``params`` sorted by :func:`layer_order`, with a scanned stack
    (``layers`` with a leading layer axis) replaced by its layers' names as the unscanned model
    would have them (``dense_1``, ``norm_1``, ...). Use it to index the arrays of :func:`flow_fn`.
    """
    return tuple(sorted(_unscan(model)(dict(params)), key=layer_order))


def flow(model, params, batch, *, loss: str = "cross_entropy", model_state=None, train: bool = False,
         activation: str | None = None) -> Flow:
    """Per-layer gradient norms and activation statistics of ``model`` on ``batch``.

    Args:
      model: a flax module from ``lossatlas.models`` (or any module that records
        hidden states with ``lossatlas.models.common.record``).
      params: its parameters.
      batch: ``(x, y)``.
      loss: name in ``lossatlas.losses.LOSSES`` applied as ``loss(model(x), y)``.
      model_state: extra variable collections, e.g. ``{"batch_stats": ...}``.
      train: run batch norm in training mode (batch statistics), as during a step.
      activation: activation name for the saturation statistic (default: the
        model's ``activation`` field if it has one).

    Returns:
      A :class:`Flow`.
    """
    x, y = batch
    act = activation or getattr(model, "activation", None)
    out = _flow_fn(model, loss, bool(train), act)(params, dict(model_state or {}), x, y)
    layers = tuple(sorted(out["activations"], key=_natural))
    return Flow(param_names=param_names(model, params), layer_names=layers, **out)


@functools.lru_cache(maxsize=64)
def _flow_fn(model, loss_name: str, train: bool, activation):
    loss_fn = losses.get_loss(loss_name)
    bounds = SATURATION.get(activation)
    unscan = _unscan(model)

    @jax.jit
    def run(params, model_state, x, y):
        variables = {"params": params, **model_state}
        _, probe = model.apply(variables, x, train=False, mutable=["perturbations"])
        zeros = jax.tree_util.tree_map(jnp.zeros_like, probe["perturbations"])
        mutable = ["intermediates"] + (["batch_stats"] if train and "batch_stats" in model_state else [])

        def objective(p, pert):
            out, st = model.apply({"params": p, **model_state, "perturbations": pert}, x, train=train,
                                  mutable=mutable)
            return loss_fn(out, y), st["intermediates"]

        (value, inter), (g_params, g_acts) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            params, zeros)
        # a scanned stack's parameters, states and gradients carry a leading layer axis: one entry per layer
        params, g_params, inter, g_acts = (unscan(dict(t)) for t in (params, g_params, inter, g_acts))
        names = tuple(sorted(params, key=layer_order))
        layers = tuple(sorted(inter, key=_natural))
        acts = {k: inter[k][0] for k in layers}
        batch_size = x.shape[0]
        back = {k: g_acts[k] * batch_size for k in layers}

        def per_layer(fn, d):
            return jnp.stack([fn(d[k]) for k in layers]) if layers else jnp.zeros((0,))

        if bounds is None:
            saturated = lambda h: jnp.full((), jnp.nan)  # noqa: E731
        else:
            saturated = lambda h: jnp.mean((h <= bounds[0]) | (h >= bounds[1]))  # noqa: E731
        dead = lambda h: jnp.mean(jnp.all(h.reshape(h.shape[0], -1) == 0, axis=0))  # noqa: E731
        ex_norm = lambda g: jnp.mean(jnp.sqrt(jnp.sum(jnp.square(g.reshape(g.shape[0], -1)), axis=1)))  # noqa: E731
        return dict(
            loss=value,
            grad_norm=jnp.stack([global_norm(g_params[n]) for n in names]),
            weight_norm=jnp.stack([global_norm(params[n]) for n in names]),
            act_mean=per_layer(jnp.mean, acts),
            act_std=per_layer(jnp.std, acts),
            act_saturated=per_layer(saturated, acts),
            act_zero=per_layer(lambda h: jnp.mean(h == 0), acts),
            dead_units=per_layer(dead, acts),
            backprop_std=per_layer(jnp.std, back),
            backprop_norm=per_layer(ex_norm, back),
            activations=acts,
            backprop=back,
        )

    return run


def flow_fn(model, *, loss: str = "cross_entropy", train: bool = False, activation: str | None = None):
    """The pure, jitted function behind :func:`flow`, for vmapping over seeds.

    Returns:
      ``f(params, model_state, x, y) -> dict`` with the array fields of :class:`Flow`;
      ``jax.vmap(f, in_axes=(0, 0, None, None))`` gives them per seed. ``grad_norm`` /
      ``weight_norm`` follow :func:`param_names`.
    """
    return _flow_fn(model, loss, bool(train), activation or getattr(model, "activation", None))


def kernel_grad_norms(result: Flow, prefix: str = "dense_") -> jax.Array:
    """The gradient norms of the modules named ``prefix<i>``, in layer order (e.g. an MLP's hidden layers)."""
    idx = [i for i, n in enumerate(result.param_names) if n.startswith(prefix)]
    return result.grad_norm[..., jnp.asarray(idx)]

"""Shared building blocks for :mod:`lossatlas.models`.

Activations, kernel initialisers, normalisation layers, input casting and the
:class:`ModelEntry` registry record. Config fields are checked with
:mod:`lossatlas.validate` in each model's ``validate`` (messages ``mlp: widths must be ...``).

All helpers here are plain Python run *before* tracing (validation) or inside a
parent module's ``@nn.compact`` method (``make_norm``), and only use long-stable
``flax.linen`` / ``jax.nn.initializers`` APIs.
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp
from jax.nn import initializers as jinit

from lossatlas import linalg, validate


def _identity(x):
    return x


#: name -> elementwise nonlinearity.
ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": nn.sigmoid,
    "gelu": nn.gelu,
    "elu": nn.elu,
    "swish": nn.swish,
    "linear": _identity,
}

_SQRT2 = math.sqrt(2.0)
#: Gain used by the ``orthogonal`` init for each activation: sqrt(2) for the
#: rectifier-like units (relu, gelu, elu, swish), 1 for tanh, sigmoid, linear
#: (tanh ~ identity near 0; sigmoid is left at 1 by convention).
ACTIVATION_GAINS: dict[str, float] = {
    "relu": _SQRT2, "gelu": _SQRT2, "elu": _SQRT2, "swish": _SQRT2,
    "tanh": 1.0, "sigmoid": 1.0, "linear": 1.0,
}

#: Kernel-initialiser families understood by :func:`kernel_init`.
INITS = ("naive", "lecun", "glorot", "he", "orthogonal")
NORMS = ("none", "batch", "layer")


def kernel_init(init: str, activation: str = "linear", init_gain: float = 1.0,
                naive_std: float = 0.01) -> Callable:
    """Return a ``jax.nn.initializers`` kernel initialiser.

    Args:
      init: ``"naive"``: N(0, (naive_std * init_gain)^2), the "small random
        normal" init discussed by Glorot & Bengio (2010).
        ``"lecun"`` / ``"glorot"`` / ``"he"``: *plain* (untruncated) normal
        variance-scaling inits with std ``init_gain * sqrt(1/fan_in)``,
        ``init_gain * sqrt(2/(fan_in+fan_out))`` and ``init_gain *
        sqrt(2/fan_in)`` (LeCun 1998; Glorot & Bengio 2010; He et al. 2015).
        ``"orthogonal"``: (semi-)orthogonal matrix times
        ``ACTIVATION_GAINS[activation] * init_gain`` (Saxe et al. 2014).
      activation: activation that follows the layer (only used by orthogonal).
      init_gain: multiplies the std of the kernel (the sigma_w of
        mean-field / order-to-chaos analyses).
      naive_std: base std of the naive init.

    Returns:
      ``init(key, shape, dtype) -> array``.
    """
    g = float(init_gain)
    if init == "naive":
        return jinit.normal(stddev=float(naive_std) * g)
    if init == "lecun":
        return jinit.variance_scaling(g * g, "fan_in", "normal")
    if init == "glorot":
        return jinit.variance_scaling(g * g, "fan_avg", "normal")
    if init == "he":
        return jinit.variance_scaling(2.0 * g * g, "fan_in", "normal")
    if init == "orthogonal":
        return linalg.orthogonal(scale=ACTIVATION_GAINS[activation] * g)
    validate.fail("kernel_init", "init", init, "one of " + ", ".join(repr(i) for i in INITS))


def default_kernel_init() -> Callable:
    """LeCun *plain* normal, std sqrt(1/fan_in): the kernel init used by the
    conv, rnn and transformer models (instead of flax's truncated-normal
    ``lecun_normal``, so every model shares one untruncated Gaussian family)."""
    return jinit.variance_scaling(1.0, "fan_in", "normal")


def make_norm(kind: str, train: bool, name: str) -> Callable:
    """Normalisation layer to call inside a parent's ``@nn.compact`` method.

    Args:
      kind: ``"none"`` (identity), ``"batch"`` (``nn.BatchNorm``, momentum 0.9,
        batch statistics when ``train`` else running averages; the caller must
        pass ``mutable=["batch_stats"]`` when ``train=True``) or ``"layer"``.
      train: training mode flag of the parent call.
      name: submodule name.

    Returns:
      A callable ``h -> h``.
    """
    if kind == "none":
        return _identity
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                            epsilon=1e-5, name=name)
    if kind == "layer":
        return nn.LayerNorm(name=name)
    validate.fail("make_norm", "kind", kind, "one of " + ", ".join(repr(n) for n in NORMS))


def as_float(x: Any) -> jnp.ndarray:
    """Cast integer/bool inputs to float32; keep floating dtypes."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return x


class InputSpec(NamedTuple):
    """What one example fed to a model may look like (checked against a dataset before tracing).

    Attributes:
      shapes: accepted example shapes without the batch axis, each a tuple of
        dimension names (any size) or ints (that exact size), e.g. ``(("L",), ("L", 1))``;
        None accepts any shape.
      tokens: the inputs must be integer token ids.
      per_token: the output has one prediction per position ``[B, T, V]`` (language
        modelling) rather than one per example.
    """
    shapes: tuple | None = None
    tokens: bool = False
    per_token: bool = False

    def accepts_shape(self, shape: tuple) -> bool:
        if self.shapes is None:
            return True
        return any(len(p) == len(shape) and all(not isinstance(d, int) or d == n for d, n in zip(p, shape))
                   for p in self.shapes)

    def describe_shapes(self) -> str:
        if self.shapes is None:
            return "any shape"
        return " or ".join("[" + ", ".join(str(d) for d in p) + "]" for p in self.shapes)


class ModelEntry(NamedTuple):
    """Registry record for one model family.

    Attributes:
      cls: the ``flax.linen.Module`` subclass.
      tiny: a tiny config (kwargs for ``get_model``) used by tests.
      tiny_input_shape: input shape for the tiny config, without batch axis.
      input_dtype: ``jnp.float32`` (features) or ``jnp.int32`` (tokens).
      doc: one-line description.
      input_spec: the inputs the model accepts (:class:`InputSpec`; default: any).
    """
    cls: type
    tiny: dict
    tiny_input_shape: tuple
    input_dtype: Any
    doc: str
    input_spec: InputSpec = InputSpec()


def record(module: nn.Module, name: str, h):
    """Expose a hidden state to the analysis tools and return it.

    Sows ``h`` into the ``"intermediates"`` collection (read with
    ``mutable=["intermediates"]``) and passes it through ``Module.perturb`` under
    the same name, so ``jax.grad`` with respect to a zero ``"perturbations"``
    entry gives the back-propagated gradient dL/dh (Glorot & Bengio 2010's
    per-layer gradient statistics). Both are no-ops unless those collections are
    requested / passed. ``init`` creates no perturbation variables (they would
    carry the init batch's shape); get zeros of the right shape with
    ``model.apply(variables, x, mutable=["perturbations"])``.
    """
    module.sow("intermediates", name, h)
    if module.is_initializing():
        return h
    return module.perturb(name, h)


"""Multi-layer perceptron with configurable activation, init, norm and skips."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lossatlas import validate

from .common import record
from .common import ACTIVATIONS, INITS, NORMS, as_float, kernel_init, make_norm


class MLP(nn.Module):
    """Fully connected classifier/regressor ``[B, ...] -> [B, num_outputs]``.

    Hidden layer ``i`` computes ``f_i(h) = act(norm(Dense(h)))`` (the norm, if
    any, sits between the affine map and the activation). With
    ``residual=True`` every hidden layer ``i > 0`` whose width equals the
    previous one becomes ``h <- h + f_i(h)`` (identity skip around the whole
    Dense -> norm -> activation branch; nothing is applied after the sum).
    Layer 0 and width-changing layers are never residual. The readout is a
    plain ``Dense(num_outputs)`` with the same init family (for
    ``orthogonal`` the readout gain is ``init_gain`` since no activation
    follows it). Inputs are flattened to ``[B, -1]``.

    Each hidden state (after activation and skip) is sown as
    ``intermediates/layer_{i}``.

    With ``scan_layers=True`` the equal-width hidden layers ``1 .. L-1`` are one
    ``nn.scan`` over a stacked block (parameters under ``layers`` with a leading
    layer axis), so compile time no longer grows with depth; the same function
    family, but only ``layer_0`` is recorded for the analysis tools (use the
    unscanned model for per-layer statistics).

    Attributes:
      widths: hidden widths.
      num_outputs: output width.
      activation: one of ``common.ACTIVATIONS``.
      weight_init: one of ``common.INITS`` (see :func:`common.kernel_init`);
        ``get_model`` also accepts it as ``init=`` (a module field cannot be
        called ``init``: it would shadow ``Module.init``).
      init_gain: multiplies the std of every kernel init (sigma_w).
      naive_std: std of the ``naive`` init before ``init_gain``.
      residual: add identity skips on equal-width hidden layers ``i > 0``.
      norm: ``"none"``, ``"batch"`` or ``"layer"``.
      use_bias: biases (zero-initialised) in every Dense.
    """
    widths: Sequence[int] = (100, 100)
    num_outputs: int = 10
    activation: str = "relu"
    weight_init: str = "lecun"
    init_gain: float = 1.0
    naive_std: float = 0.01
    residual: bool = False
    norm: str = "none"
    use_bias: bool = True
    scan_layers: bool = False

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "mlp"
        validate.int_tuple(m, "widths", self.widths, 1, nonempty=False)
        validate.integer(m, "num_outputs", self.num_outputs, 1)
        validate.one_of(m, "activation", self.activation, ACTIVATIONS)
        validate.one_of(m, "weight_init", self.weight_init, INITS)
        validate.number(m, "init_gain", self.init_gain, 0, lo_open=True)
        validate.number(m, "naive_std", self.naive_std, 0, lo_open=True)
        validate.boolean(m, "residual", self.residual)
        validate.one_of(m, "norm", self.norm, NORMS)
        validate.boolean(m, "use_bias", self.use_bias)
        validate.boolean(m, "scan_layers", self.scan_layers)
        if self.scan_layers and len(set(tuple(self.widths)[1:])) > 1:
            validate.fail(m, "widths", tuple(self.widths), "equal hidden widths after the first when scan_layers=True")

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, ...]``; train: batch-norm mode. Returns ``[B, num_outputs]``."""
        x = as_float(x)
        h = jnp.reshape(x, (x.shape[0], -1))
        act = ACTIVATIONS[self.activation]
        kinit = kernel_init(self.weight_init, self.activation, self.init_gain,
                            self.naive_std)
        widths = tuple(self.widths)
        if self.scan_layers and len(widths) > 2:
            h = self._layer(h, 0, widths[0], act, kinit, train, skip=False)
            Stack = nn.scan(_Block, variable_axes={"params": 0, "batch_stats": 0},
                            split_rngs={"params": True}, length=len(widths) - 1)
            h, _ = Stack(widths[1], self.activation, kinit, self.norm, self.residual, self.use_bias,
                         train, name="layers")(h, None)
            widths = ()
        for i, w in enumerate(widths):
            z = nn.Dense(w, use_bias=self.use_bias, kernel_init=kinit,
                         name=f"dense_{i}")(h)
            z = act(make_norm(self.norm, train, name=f"norm_{i}")(z))
            if self.residual and i > 0 and w == widths[i - 1]:
                h = h + z
            else:
                h = z
            h = record(self, f"layer_{i}", h)
        rinit = kernel_init(self.weight_init, "linear", self.init_gain,
                            self.naive_std)
        return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=rinit,
                        name="readout")(h)

    def _layer(self, h, i, w, act, kinit, train, skip):
        z = nn.Dense(w, use_bias=self.use_bias, kernel_init=kinit, name=f"dense_{i}")(h)
        z = act(make_norm(self.norm, train, name=f"norm_{i}")(z))
        return record(self, f"layer_{i}", h + z if skip else z)


class _Block(nn.Module):
    """One scanned hidden layer of :class:`MLP` (``scan_layers=True``): carry -> carry."""

    width: int
    activation: str
    kinit: object
    norm: str
    residual: bool
    use_bias: bool
    train: bool

    @nn.compact
    def __call__(self, h, _):
        z = nn.Dense(self.width, use_bias=self.use_bias, kernel_init=self.kinit, name="dense")(h)
        z = ACTIVATIONS[self.activation](make_norm(self.norm, self.train, name="norm")(z))
        return (h + z if self.residual else z), None

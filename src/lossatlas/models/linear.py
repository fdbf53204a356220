"""Deep linear network (Saxe, McClelland & Ganguli, ICLR 2014)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lossatlas import validate

from .common import record
from .common import as_float, kernel_init

LINEAR_INITS = ("naive", "lecun", "glorot", "orthogonal")


class DeepLinear(nn.Module):
    """Product of bias-free linear maps ``y = W_L ... W_1 x``.

    "Exact solutions to the nonlinear dynamics of learning in deep linear
    neural networks" (Saxe et al., 2014): the function is linear but the
    learning dynamics are not. Inputs are flattened to ``[B, -1]``; each hidden
    state ``W_i ... W_1 x`` is sown as ``intermediates/layer_{i}``.

    Attributes:
      widths: hidden widths.
      num_outputs: output width.
      weight_init: ``naive`` / ``lecun`` / ``glorot`` / ``orthogonal`` (gain
        ``init_gain``; see :func:`common.kernel_init`); alias ``init=`` in
        ``get_model``.
      init_gain: multiplies the std of every kernel init.
      naive_std: std of the ``naive`` init before ``init_gain``.
    """
    widths: Sequence[int] = (32, 32, 32)
    num_outputs: int = 10
    weight_init: str = "orthogonal"
    init_gain: float = 1.0
    naive_std: float = 0.01

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "deep_linear"
        validate.int_tuple(m, "widths", self.widths, 1, nonempty=False)
        validate.integer(m, "num_outputs", self.num_outputs, 1)
        validate.one_of(m, "weight_init", self.weight_init, LINEAR_INITS)
        validate.number(m, "init_gain", self.init_gain, 0, lo_open=True)
        validate.number(m, "naive_std", self.naive_std, 0, lo_open=True)

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, ...]``; train: unused. Returns ``[B, num_outputs]``."""
        x = as_float(x)
        h = jnp.reshape(x, (x.shape[0], -1))
        kinit = kernel_init(self.weight_init, "linear", self.init_gain,
                            self.naive_std)
        for i, w in enumerate(self.widths):
            h = nn.Dense(w, use_bias=False, kernel_init=kinit, name=f"dense_{i}")(h)
            h = record(self, f"layer_{i}", h)
        return nn.Dense(self.num_outputs, use_bias=False, kernel_init=kinit,
                        name="readout")(h)

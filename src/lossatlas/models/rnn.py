"""Recurrent sequence classifiers (vanilla tanh RNN and GRU)."""
from __future__ import annotations

import math

import flax.linen as nn
import jax.numpy as jnp
from jax.nn import initializers as jinit

from lossatlas import linalg, validate

from .common import record
from .common import as_float, default_kernel_init

CELLS = ("tanh", "gru")
READOUTS = ("last", "flatten", "mean")
RECURRENT_INITS = ("orthogonal", "normal")


def recurrent_kernel_init(kind: str, scale: float, hidden: int):
    """Init for hidden-to-hidden matrices.

    Args:
      kind: ``"orthogonal"``: ``scale * Q`` with Q orthogonal, so every
        eigenvalue has modulus ``scale`` (spectral radius == scale exactly);
        ``"normal"``: i.i.d. N(0, scale^2 / hidden), whose spectral radius is
        ~scale for large ``hidden`` (circular law).
      scale: recurrent gain; > 1 makes exploding gradients likely.
      hidden: hidden size.

    Returns:
      A ``jax.nn.initializers`` initialiser.
    """
    if kind == "orthogonal":
        return linalg.orthogonal(scale=float(scale))
    return jinit.normal(stddev=float(scale) / math.sqrt(hidden))


class TanhCell(nn.Module):
    """Elman RNN cell ``h' = tanh(W_x x + W_h h + b)`` (Elman, 1990).

    ``W_x``: ``Dense`` named ``input`` (LeCun plain normal, zero bias); ``W_h``:
    bias-free ``Dense`` named ``recurrent`` initialised by
    :func:`recurrent_kernel_init`. ``__call__(h, x) -> (h', h')``.
    """
    features: int
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0

    @nn.compact
    def __call__(self, h, x):
        rinit = recurrent_kernel_init(self.recurrent_init, self.recurrent_scale,
                                      self.features)
        wx = nn.Dense(self.features, kernel_init=default_kernel_init(), name="input")
        wh = nn.Dense(self.features, use_bias=False, kernel_init=rinit, name="recurrent")
        z = wx(x) + wh(h)
        h = jnp.tanh(z)
        return h, h


class RNN(nn.Module):
    """Recurrent classifier ``[B, T] | [B, T, F] -> [B, num_outputs]``.

    The cell is scanned over time with ``nn.scan`` (one ``lax.scan``; params
    shared over steps), starting from a zero state. With
    ``bidirectional=True`` a second cell reads the time-reversed sequence and
    its outputs are re-reversed, so both directions' states at index t are
    concatenated (``[B, T, 2*hidden]``). Readouts: ``"last"`` = final state
    (forward final state ++ backward final state, i.e. the state after reading
    x_0); ``"mean"`` = time average; ``"flatten"`` = all states concatenated
    (``T * hidden * dirs`` features; the MNIST-1D paper's GRU, Greydanus 2020,
    is ``cell="gru", hidden=6, bidirectional=True, readout="flatten"`` ->
    Dense(480 -> 10) for T=40). The GRU is ``nn.GRUCell`` (Cho et al., 2014),
    whose three hidden-to-hidden matrices each get the recurrent init
    (input kernels and readout: LeCun plain normal). The
    state sequence is sown as ``intermediates/layer_0``.

    Attributes:
      cell: ``"tanh"`` or ``"gru"``.
      hidden: state size per direction.
      num_outputs: output width.
      bidirectional: add a backward-in-time cell.
      readout: ``"last"``, ``"flatten"`` or ``"mean"``.
      recurrent_init: ``"orthogonal"`` or ``"normal"``.
      recurrent_scale: recurrent gain (see :func:`recurrent_kernel_init`).
    """
    cell: str = "tanh"
    hidden: int = 64
    num_outputs: int = 10
    bidirectional: bool = False
    readout: str = "last"
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "rnn"
        validate.one_of(m, "cell", self.cell, CELLS)
        validate.integer(m, "hidden", self.hidden, 1)
        validate.integer(m, "num_outputs", self.num_outputs, 1)
        validate.boolean(m, "bidirectional", self.bidirectional)
        validate.one_of(m, "readout", self.readout, READOUTS)
        validate.one_of(m, "recurrent_init", self.recurrent_init, RECURRENT_INITS)
        validate.number(m, "recurrent_scale", self.recurrent_scale, 0, lo_open=True)

    @nn.nowrap
    def _scan(self, x, name):
        if self.cell == "gru":
            cell_cls = nn.GRUCell
            kw = dict(kernel_init=default_kernel_init(),
                      recurrent_kernel_init=recurrent_kernel_init(
                          self.recurrent_init, self.recurrent_scale, self.hidden))
        else:
            cell_cls = TanhCell
            kw = dict(recurrent_init=self.recurrent_init,
                      recurrent_scale=self.recurrent_scale)
        scan = nn.scan(cell_cls, variable_broadcast="params",
                       split_rngs={"params": False}, in_axes=1, out_axes=1)
        h0 = jnp.zeros((x.shape[0], self.hidden), x.dtype)
        return scan(features=self.hidden, name=name, **kw)(h0, x)

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, T]`` or ``[B, T, F]``. Returns ``[B, num_outputs]``."""
        x = as_float(x)
        if x.ndim == 2:
            x = x[:, :, None]
        last, ys = self._scan(x, "fwd")
        if self.bidirectional:
            last_b, ys_b = self._scan(jnp.flip(x, axis=1), "bwd")
            ys = jnp.concatenate([ys, jnp.flip(ys_b, axis=1)], axis=-1)
            last = jnp.concatenate([last, last_b], axis=-1)
        ys = record(self, "layer_0", ys)
        if self.readout == "last":
            h = last
        elif self.readout == "mean":
            h = jnp.mean(ys, axis=1)
        else:
            h = jnp.reshape(ys, (ys.shape[0], -1))
        return nn.Dense(self.num_outputs, kernel_init=default_kernel_init(),
                        name="readout")(h)

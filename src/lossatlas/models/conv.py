"""Convolutional classifiers: the MNIST-1D CNN and a small 2-D image CNN."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from lossatlas import validate

from .common import record
from .common import as_float, default_kernel_init, make_norm

CONV_NORMS = ("none", "batch")


class CNN1D(nn.Module):
    """The MNIST-1D convolutional baseline (Greydanus, 2020; ``ConvBase`` in
    github.com/greydanus/mnist1d).

    Three ``Conv1D(channels, kernel_sizes[i], stride, padding=1) -> ReLU``
    layers, flatten, ``Dense(num_outputs)``. For length-40 inputs the lengths
    go 40 -> 19 -> 10 -> 5, so the readout sees 5 * 25 = 125 features and the
    model has 5210 parameters, as in the paper. (Flattening is length-major
    here and channel-major in PyTorch; the function class is identical.)
    Kernels: LeCun plain normal; biases: zero. Each post-ReLU feature map
    ``[B, L_i, channels]`` is sown as ``intermediates/layer_{i}``.

    Attributes:
      channels: channels of every conv layer.
      num_outputs: output width.
      kernel_sizes: one kernel size per conv layer.
      stride: stride of every conv layer.
      norm: ``"none"`` or ``"batch"`` (BatchNorm before each ReLU).
    """
    channels: int = 25
    num_outputs: int = 10
    kernel_sizes: Sequence[int] = (5, 3, 3)
    stride: int = 2
    norm: str = "none"

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "cnn1d"
        validate.integer(m, "channels", self.channels, 1)
        validate.integer(m, "num_outputs", self.num_outputs, 1)
        validate.int_tuple(m, "kernel_sizes", self.kernel_sizes, 1)
        validate.integer(m, "stride", self.stride, 1)
        validate.one_of(m, "norm", self.norm, CONV_NORMS)

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, L]`` or ``[B, L, 1]``. Returns ``[B, num_outputs]``."""
        h = as_float(x)
        kinit = default_kernel_init()
        if h.ndim == 2:
            h = h[:, :, None]
        for i, k in enumerate(self.kernel_sizes):
            h = nn.Conv(self.channels, kernel_size=(k,), strides=(self.stride,),
                        padding=((1, 1),), kernel_init=kinit,
                        name=f"conv_{i}")(h)
            h = nn.relu(make_norm(self.norm, train, name=f"norm_{i}")(h))
            h = record(self, f"layer_{i}", h)
        h = jnp.reshape(h, (h.shape[0], -1))
        return nn.Dense(self.num_outputs, kernel_init=kinit, name="readout")(h)


class CNN2D(nn.Module):
    """Small LeNet-style image classifier for NHWC images.

    ``conv3x3(channels[0]) -> ReLU -> maxpool2 -> conv3x3(channels[1]) -> ReLU
    -> maxpool2 -> flatten -> Dense(hidden) -> ReLU -> Dense(num_outputs)``
    (SAME padding, so 28x28 -> 7x7, 32x32 -> 8x8, 8x8 -> 2x2; in the spirit of
    LeCun et al., 1998; LeCun plain-normal kernels). ``[B, H, W]`` inputs get
    a channel axis. Post-ReLU activations (after pooling for conv layers) are
    sown as ``intermediates/layer_{i}``.

    Attributes:
      channels: channels of the conv layers (any length >= 1 works).
      hidden: width of the dense hidden layer.
      num_outputs: output width.
      norm: ``"none"`` or ``"batch"`` (BatchNorm before each conv ReLU).
    """
    channels: Sequence[int] = (32, 64)
    hidden: int = 128
    num_outputs: int = 10
    norm: str = "none"

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "cnn2d"
        validate.int_tuple(m, "channels", self.channels, 1)
        validate.integer(m, "hidden", self.hidden, 1)
        validate.integer(m, "num_outputs", self.num_outputs, 1)
        validate.one_of(m, "norm", self.norm, CONV_NORMS)

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, H, W, C]`` or ``[B, H, W]``. Returns ``[B, num_outputs]``."""
        h = as_float(x)
        kinit = default_kernel_init()
        if h.ndim == 3:
            h = h[..., None]
        i = 0
        for i, c in enumerate(self.channels):
            h = nn.Conv(c, kernel_size=(3, 3), padding="SAME", kernel_init=kinit,
                        name=f"conv_{i}")(h)
            h = nn.relu(make_norm(self.norm, train, name=f"norm_{i}")(h))
            h = nn.max_pool(h, window_shape=(2, 2), strides=(2, 2), padding="SAME")
            h = record(self, f"layer_{i}", h)
        h = jnp.reshape(h, (h.shape[0], -1))
        h = nn.relu(nn.Dense(self.hidden, kernel_init=kinit, name="dense")(h))
        h = record(self, f"layer_{i + 1}", h)
        return nn.Dense(self.num_outputs, kernel_init=kinit, name="readout")(h)

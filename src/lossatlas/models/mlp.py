"""Multi-layer perceptron with configurable activation, init, norm and skips."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from lossatlas import validate

from .common import record
from .common import ACTIVATIONS, INITS, NORMS, as_float, kernel_init, make_norm

#: Name of the scanned stack of hidden layers (``scan_layers=True``).
SCAN_NAME = "layers"


def hidden_layer(h, *, width: int, activation: str, kinit: Callable, norm: str, use_bias: bool,
                 train: bool, skip: bool, dense_name: str, norm_name: str):
    """The MLP's hidden layer ``act(norm(Dense(h)))``, plus ``h`` when ``skip``.

    The one definition behind both the unrolled loop and the scanned block; call it inside a
    parent's ``@nn.compact`` method (its ``Dense`` and norm become that parent's submodules,
    named ``dense_name`` / ``norm_name``).
    """
    z = nn.Dense(width, use_bias=use_bias, kernel_init=kinit, name=dense_name)(h)
    z = ACTIVATIONS[activation](make_norm(norm, train, name=norm_name)(z))
    return h + z if skip else z


class MLP(nn.Module):
    """Fully connected classifier/regressor ``[B, ...] -> [B, num_outputs]``.

    Hidden layer ``i`` computes ``f_i(h) = act(norm(Dense(h)))`` (the norm, if
    any, sits between the affine map and the activation; :func:`hidden_layer`).
    With ``residual=True`` every hidden layer ``i > 0`` whose width equals the
    previous one becomes ``h <- h + f_i(h)`` (identity skip around the whole
    Dense -> norm -> activation branch). Layer 0 and width-changing layers are
    never residual. When at least one skip exists and ``norm != "none"``, the
    residual stream is normalised once more before the readout,
    ``h <- act(norm_final(h))`` (He et al. 2016b, "Identity mappings in deep
    residual networks": the pre-activation design ends in BN + ReLU before the
    classifier; without it the readout sees a sum whose scale grows with
    depth, and a depth-50 residual + BN net stalls under SGD-momentum);
    ``final_norm=False`` leaves it out (the residual stream straight into the
    readout, as before this option existed). The readout is a plain ``Dense(num_outputs)`` with the same init
    family (for ``orthogonal`` the readout gain is ``init_gain`` since no
    activation follows it). Inputs are flattened to ``[B, -1]``.

    Each hidden state (after activation and skip) is sown as
    ``intermediates/layer_{i}`` and passed through ``perturb`` under that name.

    With ``scan_layers=True`` the equal-width hidden layers ``s .. L-1`` are
    one ``nn.scan`` (``s = scan_start()``: 1, or 2 when layer 1 changes the
    width; at least two layers, else the model is unrolled) over a stacked block (parameters,
    batch statistics, sown states and perturbations under ``layers`` with a
    leading layer axis), so compile time no longer grows with depth; the same
    function. :meth:`unscan` maps any of those trees to the unrolled model's
    names (``dense_i``, ``norm_i``, ``layer_i``), which is how
    :func:`lossatlas.grads.flow` reports every layer of a scanned net.

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
      scan_layers: hidden layers ``scan_start() .. L-1`` as one ``nn.scan``.
      final_norm: end residual nets that use a norm with ``act(norm_final(h))``
        before the readout (see :meth:`has_final_norm`).
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
    final_norm: bool = True

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
        validate.boolean(m, "final_norm", self.final_norm)
        if self.scan_layers and len(set(tuple(self.widths)[1:])) > 1:
            validate.fail(m, "widths", tuple(self.widths), "equal hidden widths after the first when scan_layers=True")

    @nn.nowrap
    def skips(self) -> tuple:
        """``skips()[i]``: hidden layer ``i`` adds its input (residual, ``i > 0``, width unchanged)."""
        w = tuple(self.widths)
        return tuple(bool(self.residual) and i > 0 and w[i] == w[i - 1] for i in range(len(w)))

    @nn.nowrap
    def has_final_norm(self) -> bool:
        """Whether the residual stream is normalised (+activation) before the readout:
        ``final_norm``, a norm, and at least one skip."""
        return bool(self.final_norm) and self.norm != "none" and any(self.skips())

    @nn.nowrap
    def scan_start(self) -> int:
        """First hidden layer of the scanned stack: 1, or 2 when layer 1 changes the width."""
        w = tuple(self.widths)
        return 1 if len(w) < 2 or w[1] == w[0] else 2

    @nn.nowrap
    def scanned(self) -> bool:
        """Whether hidden layers ``scan_start() .. L-1`` (at least two) run as one ``nn.scan``."""
        return bool(self.scan_layers) and len(tuple(self.widths)) - self.scan_start() >= 2

    @nn.nowrap
    def unscan(self, tree: Any) -> Any:
        """A variables-like dict of this model with the scanned stack unrolled.

        Every entry ``layers/<name>`` (leading layer axis) becomes ``<name>_{i}`` for the
        hidden layers ``i = scan_start() .. L-1`` (``dense_i``, ``norm_i``, the sown ``layer_i``), as in
        the unscanned model; other entries are kept. Works on one collection (params, batch
        statistics, intermediates, perturbations, their gradients) or on a full variables dict
        (collections as top-level keys). Unscanned models return ``tree`` unchanged.
        """
        if not self.scanned() or not isinstance(tree, dict):
            return tree
        if SCAN_NAME not in tree:  # a variables dict: unscan each collection
            return {k: self.unscan(v) for k, v in tree.items()}
        out = {k: v for k, v in tree.items() if k != SCAN_NAME}
        for name, sub in tree[SCAN_NAME].items():
            for j in range(len(tuple(self.widths)) - self.scan_start()):
                out[f"{name}_{j + self.scan_start()}"] = jax.tree_util.tree_map(lambda a: a[j], sub)
        return out

    @nn.compact
    def __call__(self, x, train: bool = False):
        """Args: x ``[B, ...]``; train: batch-norm mode. Returns ``[B, num_outputs]``."""
        x = as_float(x)
        h = jnp.reshape(x, (x.shape[0], -1))
        kinit = kernel_init(self.weight_init, self.activation, self.init_gain, self.naive_std)
        widths, skips = tuple(self.widths), self.skips()
        layer = dict(activation=self.activation, kinit=kinit, norm=self.norm, use_bias=self.use_bias,
                     train=train)
        start = self.scan_start() if self.scanned() else len(widths)
        for i in range(start):
            h = hidden_layer(h, width=widths[i], skip=skips[i], dense_name=f"dense_{i}",
                             norm_name=f"norm_{i}", **layer)
            h = record(self, f"layer_{i}", h)
        if self.scanned():
            # one width from `start` on, so every scanned layer has the same skip
            stack = nn.scan(_Block, variable_axes={c: 0 for c in ("params", "batch_stats", "intermediates",
                                                                 "perturbations")},
                            split_rngs={"params": True}, length=len(widths) - start)
            h, _ = stack(width=widths[start], skip=skips[start], name=SCAN_NAME, **layer)(h, None)
        if self.has_final_norm():
            h = ACTIVATIONS[self.activation](make_norm(self.norm, train, name="norm_final")(h))
        rinit = kernel_init(self.weight_init, "linear", self.init_gain, self.naive_std)
        return nn.Dense(self.num_outputs, use_bias=self.use_bias, kernel_init=rinit,
                        name="readout")(h)


class _Block(nn.Module):
    """One scanned hidden layer of :class:`MLP` (``scan_layers=True``): carry -> carry.

    Its state is recorded as ``layer`` (stacked over the scan; :meth:`MLP.unscan` names it
    ``layer_i``)."""

    width: int
    activation: str
    kinit: Any
    norm: str
    use_bias: bool
    train: bool
    skip: bool

    @nn.compact
    def __call__(self, h, _):
        h = hidden_layer(h, width=self.width, activation=self.activation, kinit=self.kinit, norm=self.norm,
                         use_bias=self.use_bias, train=self.train, skip=self.skip, dense_name="dense",
                         norm_name="norm")
        return record(self, "layer", h), None

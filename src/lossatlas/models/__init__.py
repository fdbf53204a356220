"""Model zoo: ``flax.linen`` modules used through pure ``init`` / ``apply``.

Calling convention (every model)::

    model = get_model("mlp", widths=(64, 64), num_outputs=10)
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    logits = model.apply(variables, x, train=False)

* ``variables`` holds ``"params"`` and, for ``norm="batch"`` models, also
  ``"batch_stats"``. Training with batch norm::

      logits, updates = model.apply(variables, x, train=True,
                                    mutable=["batch_stats"])
      variables = {**variables, "batch_stats": updates["batch_stats"]}

  With ``train=False`` BatchNorm uses the running averages.
* Per-layer post-activation hidden states are sown into ``"intermediates"``
  as ``layer_{i}`` (a 1-tuple per key, flax's ``sow`` convention)::

      logits, state = model.apply(variables, x, mutable=["intermediates"])
      h0 = state["intermediates"]["layer_0"][0]

  Sowing is a no-op (free) unless ``"intermediates"`` is mutable.
* Outputs: ``[B, num_outputs]`` logits; ``transformer_lm``: ``[B, T, vocab_size]``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from lossatlas import keys, validate

from .common import ACTIVATIONS, INITS, InputSpec, ModelEntry, kernel_init
from .conv import CNN1D, CNN2D
from .linear import DeepLinear
from .mlp import MLP
from .rnn import RNN, TanhCell
from .transformer import TransformerLM

__all__ = [
    "MODELS", "InputSpec", "ModelEntry", "get_model", "list_models", "tiny_config",
    "example_input", "model_fields", "MLP", "CNN1D", "CNN2D", "RNN", "TanhCell",
    "TransformerLM", "DeepLinear", "ACTIVATIONS", "INITS", "kernel_init",
]

#: name -> :class:`ModelEntry`.
MODELS: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLP, {"widths": (16, 16), "num_outputs": 3}, (8,), jnp.float32,
                      "fully connected net (activation/init/norm/residual options)", InputSpec()),
    "cnn1d": ModelEntry(CNN1D, {"channels": 4, "num_outputs": 3}, (40,), jnp.float32,
                        "MNIST-1D paper CNN (Greydanus 2020): 3 strided Conv1D + Dense",
                        InputSpec(shapes=(("L",), ("L", 1)))),
    "cnn2d": ModelEntry(CNN2D, {"channels": (4, 8), "hidden": 16, "num_outputs": 3},
                        (8, 8, 1), jnp.float32,
                        "small 2-conv + maxpool image CNN (NHWC)",
                        InputSpec(shapes=(("H", "W"), ("H", "W", "C")))),
    "rnn": ModelEntry(RNN, {"hidden": 8, "num_outputs": 3}, (12,), jnp.float32,
                      "tanh-RNN / GRU sequence classifier (nn.scan over time)",
                      InputSpec(shapes=(("T",), ("T", "F")))),
    "transformer_lm": ModelEntry(
        TransformerLM,
        {"vocab_size": 8, "d_model": 16, "num_heads": 2, "num_layers": 1,
         "max_len": 32},
        (12,), jnp.int32, "tiny pre-LN causal character transformer",
        InputSpec(shapes=(("T",),), tokens=True, per_token=True)),
    "deep_linear": ModelEntry(DeepLinear, {"widths": (8, 8), "num_outputs": 3}, (8,),
                              jnp.float32, "deep linear network (Saxe et al. 2014)", InputSpec()),
}


def list_models() -> list[str]:
    """Sorted model names."""
    return sorted(MODELS)


def _entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {list_models()}")
    return MODELS[name]


def model_fields(name: str) -> list[str]:
    """Sorted config fields accepted by ``get_model(name, **cfg)``."""
    cls = _entry(name).cls
    return sorted(f.name for f in dataclasses.fields(cls)
                  if f.init and f.name not in ("parent", "name"))


def get_model(name: str, **cfg: Any) -> nn.Module:
    """Build a validated model.

    Args:
      name: one of :func:`list_models`.
      **cfg: module fields (e.g. ``widths``, ``num_outputs``, ``activation``).
        Lists are converted to tuples so the module is hashable. ``init=`` is
        accepted as an alias of ``weight_init`` (mlp, deep_linear).

    Returns:
      An unbound ``flax.linen.Module``.

    Raises:
      ValueError: unknown name, unknown field, or invalid field value.
    """
    entry = _entry(name)
    accepted = model_fields(name)
    if "init" in cfg and "weight_init" in accepted:
        if "weight_init" in cfg:
            raise ValueError(f"{name}: give only one of 'init' and 'weight_init'")
        cfg["weight_init"] = cfg.pop("init")
    for key in cfg:
        if key not in accepted:
            raise ValueError(f"{name}: unknown config field {key!r}; accepted "
                             f"fields: {accepted}")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}
    try:
        model = entry.cls(**cfg)
    except TypeError as e:  # pragma: no cover - guarded by the field check above
        raise ValueError(f"{name}: bad config ({e}); accepted fields: {accepted}") from e
    model.validate()
    return model


def tiny_config(name: str) -> dict:
    """A copy of the tiny config of ``name`` (fast to init and train)."""
    return dict(_entry(name).tiny)


def example_input(name: str, batch: int = 4, key: jax.Array | None = None) -> jax.Array:
    """Random input for the tiny config of ``name``.

    Args:
      name: model name.
      batch: leading batch size.
      key: PRNG key (required: lossatlas never picks a default key).

    Returns:
      float32 standard normal ``[batch, *tiny_input_shape]``, or int32 tokens
      in ``[0, vocab_size)`` for ``transformer_lm``.

    Raises:
      ValueError: unknown model, ``batch < 1``, or no ``key``.
    """
    entry = _entry(name)
    batch = validate.integer("example_input", "batch", batch, 1)
    key = keys.require_key("example_input", key)
    shape = (batch,) + tuple(entry.tiny_input_shape)
    if jnp.issubdtype(entry.input_dtype, jnp.integer):
        vocab = entry.tiny.get("vocab_size", 16)
        return jax.random.randint(key, shape, 0, vocab, dtype=entry.input_dtype)
    return jax.random.normal(key, shape, dtype=entry.input_dtype)

"""Tiny causal (decoder-only) transformer language model."""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from lossatlas import validate

from .common import record
from .common import default_kernel_init


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))``.

    Attributes:
      d_model: residual width.
      num_heads: attention heads (must divide ``d_model``).
      mlp_ratio: MLP hidden width = ``mlp_ratio * d_model`` (GELU).
    """
    d_model: int
    num_heads: int
    mlp_ratio: int = 4

    @nn.compact
    def __call__(self, x, mask):
        kinit = default_kernel_init()
        y = nn.LayerNorm(name="ln_attn")(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, qkv_features=self.d_model,
            out_features=self.d_model, kernel_init=kinit,
            name="attn")(y, y, mask=mask)
        x = x + y
        y = nn.LayerNorm(name="ln_mlp")(x)
        y = nn.gelu(nn.Dense(self.mlp_ratio * self.d_model, kernel_init=kinit,
                             name="mlp_in")(y))
        return x + nn.Dense(self.d_model, kernel_init=kinit, name="mlp_out")(y)


class TransformerLM(nn.Module):
    """GPT-style character model ``tokens int [B, T] -> logits [B, T, vocab]``.

    Token embedding + learned positional embedding (``max_len`` positions),
    ``num_layers`` pre-LN blocks with causal self-attention
    (``nn.make_causal_mask``; Vaswani et al., 2017; Radford et al., 2019), a
    final LayerNorm and an untied ``Dense(vocab_size)`` head. No dropout.
    Dense/attention kernels: LeCun plain normal; embeddings: flax default.
    Each block's output ``[B, T, d_model]`` is sown as
    ``intermediates/layer_{i}``.

    Attributes:
      vocab_size: number of token ids (output width).
      d_model: residual width.
      num_heads: attention heads (must divide ``d_model``).
      num_layers: number of blocks.
      mlp_ratio: MLP expansion factor.
      max_len: longest sequence; longer inputs raise ``ValueError``.
    """
    vocab_size: int = 16
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_ratio: int = 4
    max_len: int = 256

    @nn.nowrap
    def validate(self) -> None:
        """Raise ``ValueError`` on an invalid field (called by ``get_model``)."""
        m = "transformer_lm"
        for f in ("vocab_size", "d_model", "num_heads", "num_layers", "mlp_ratio",
                  "max_len"):
            validate.integer(m, f, getattr(self, f), 1)
        if self.d_model % self.num_heads:
            validate.fail(m, "num_heads", self.num_heads, f"a divisor of d_model={self.d_model}")

    @nn.compact
    def __call__(self, tokens, train: bool = False):
        """Args: tokens int ``[B, T]``, T <= max_len. Returns ``[B, T, vocab_size]``."""
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2:
            raise ValueError(f"transformer_lm expects int tokens [B, T], got shape "
                             f"{tokens.shape}")
        T = tokens.shape[1]
        if T > self.max_len:
            raise ValueError(f"transformer_lm: sequence length T={T} exceeds "
                             f"max_len={self.max_len}")
        tokens = tokens.astype(jnp.int32)
        h = nn.Embed(self.vocab_size, self.d_model, name="tok_embed")(tokens)
        pos = nn.Embed(self.max_len, self.d_model, name="pos_embed")(
            jnp.arange(T, dtype=jnp.int32))
        h = h + pos[None, :, :]
        mask = nn.make_causal_mask(tokens)
        for i in range(self.num_layers):
            h = Block(self.d_model, self.num_heads, self.mlp_ratio, name=f"block_{i}")(
                h, mask)
            h = record(self, f"layer_{i}", h)
        h = nn.LayerNorm(name="ln_f")(h)
        return nn.Dense(self.vocab_size, kernel_init=default_kernel_init(),
                        name="head")(h)

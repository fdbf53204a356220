"""Pytree helpers shared by the engine and the analysis tools."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def global_norm(tree):
    """sqrt(sum of squares) over every leaf of a pytree (0 for an empty tree)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))

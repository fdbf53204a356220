"""Pytree helpers shared by the engine and the analysis tools."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def global_norm(tree):
    """sqrt(sum of squares) over every leaf of a pytree (0 for an empty tree)."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)))


def tree_where(cond, new, old):
    """``new`` where ``cond`` else ``old``, leaf by leaf (how a diverged run keeps its last finite state)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(cond, a, b), new, old)

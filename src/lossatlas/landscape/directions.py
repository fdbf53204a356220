"""Random directions in parameter space, filter-normalised as in Li et al. 2018."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lossatlas import validate

__all__ = ["random_direction", "normalize_direction", "NORMALIZATIONS"]

NORMALIZATIONS = ("filter", "layer", "none")


def _check(normalization, where):
    validate.one_of(where, "normalization", normalization, NORMALIZATIONS)


def normalize_direction(direction, params, normalization: str = "filter", ignore_1d: bool = True):
    """Rescale ``direction`` leaf by leaf to the scale of ``params``.

    * ``"filter"`` (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the
      Loss Landscape of Neural Nets", sec. 4): every filter ``d_f`` of a leaf with
      ``ndim >= 2`` becomes ``d_f / ||d_f|| * ||theta_f||``. A filter is a slice
      along the LAST axis, which is the output axis of flax kernels (Dense
      ``[in, out]``, Conv ``[..., in, out]``): filter ``j`` is ``leaf[..., j]``.
      1-D and 0-D leaves count as one filter.
    * ``"layer"``: every leaf is rescaled as a whole, ``d / ||d|| * ||theta||``.
    * ``"none"``: unchanged.

    ``ignore_1d=True`` (Li et al.'s choice) zeroes every leaf with ``ndim <= 1``
    (biases, norm scales and offsets), whatever the normalisation.

    Args:
      direction: pytree like ``params``.
      params: parameter pytree.
      normalization: ``"filter"``, ``"layer"`` or ``"none"``.
      ignore_1d: zero the 1-D (and 0-D) leaves.

    Returns:
      The normalised direction (a pytree like ``params``, dtypes of ``params``).
    """
    _check(normalization, "normalize_direction")

    def one(d, p):
        d = jnp.asarray(d).astype(p.dtype)
        if d.shape != p.shape:
            raise ValueError(f"direction leaf shape {d.shape} does not match params leaf {p.shape}")
        if ignore_1d and p.ndim <= 1:
            return jnp.zeros_like(p)
        if normalization == "none":
            return d
        axes = tuple(range(p.ndim - 1)) if (normalization == "filter" and p.ndim >= 2) else None
        keep = axes is not None
        d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=keep))
        p_norm = jnp.sqrt(jnp.sum(jnp.square(p), axis=axes, keepdims=keep))
        return d * (p_norm / jnp.maximum(d_norm, jnp.finfo(p.dtype).tiny))

    return jax.tree_util.tree_map(one, direction, params)


def random_direction(key, params, normalization: str = "filter", ignore_1d: bool = True):
    """A Gaussian direction like ``params``, normalised by :func:`normalize_direction`.

    Args:
      key: PRNG key.
      params: parameter pytree (floating leaves).
      normalization: ``"filter"`` (default, Li et al. 2018), ``"layer"`` or ``"none"``.
      ignore_1d: zero biases and normalisation parameters (leaves with ``ndim <= 1``).

    Returns:
      A pytree like ``params``.
    """
    _check(normalization, "random_direction")
    flat, unravel = ravel_pytree(params)          # one draw for all leaves (one RNG call to compile)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ValueError(f"params must be floating point, got {flat.dtype}")
    noise = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return normalize_direction(noise, params, normalization, ignore_1d)

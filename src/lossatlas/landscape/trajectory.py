"""Project an optimisation trajectory onto its top-2 PCA directions (Li et al. 2018, sec. 7)."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["trajectory_projection", "TrajectoryProjection"]


class TrajectoryProjection(NamedTuple):
    """``coords [T, 2]``, ``directions`` (params pytree with leading axis 2, unit
    norm, orthogonal), ``explained_variance_ratio [2]``."""
    coords: jax.Array
    directions: object
    explained_variance_ratio: jax.Array


def trajectory_projection(checkpoints, final=None, center: bool = False) -> TrajectoryProjection:
    """2-D coordinates of a training path in the plane of its two principal directions.

    Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets", sec. 7): random
    directions are nearly orthogonal to an optimisation path, so they instead take
    the matrix ``M = [theta_t - theta_final]_t`` and its top-2 principal
    directions ``d1, d2`` (right singular vectors, ``M = U S V^T``). Each
    checkpoint's coordinates are ``((theta_t - theta_final) . d1, (theta_t -
    theta_final) . d2)``, so the path can be drawn over
    ``plane(loss_fn, final, d1, d2, xs, ys)``, whose origin is the final point.

    Args:
      checkpoints: params pytree whose leaves have a leading time axis ``T >= 2``.
      final: params pytree (no time axis); default: the last checkpoint.
      center: subtract the mean row of ``M`` before the SVD (classical PCA, as
        sklearn's ``PCA`` does); coordinates are still relative to ``final``.

    Returns:
      :class:`TrajectoryProjection` ``(coords [T, 2], directions, ratios [2])``:
      directions as a pytree with a leading axis 2 (unit norm over all leaves,
      signs fixed so the largest-magnitude component is positive), and the
      fraction of the total squared singular values (the variance, when
      centred) that each direction explains.
    """
    leaves = jax.tree_util.tree_leaves(checkpoints)
    if not leaves:
        raise ValueError("checkpoints has no arrays")
    lengths = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
    if len(lengths) != 1 or None in lengths:
        raise ValueError(f"every checkpoint leaf needs the same leading time axis, got {sorted(map(str, lengths))}")
    T = lengths.pop()
    if T < 2:
        raise ValueError(f"trajectory_projection needs at least 2 checkpoints, got {T}")
    if final is None:
        final = jax.tree_util.tree_map(lambda x: x[-1], checkpoints)
    flat_final, unravel = ravel_pytree(final)
    flat = jax.vmap(lambda c: ravel_pytree(c)[0])(checkpoints)                      # [T, n]
    if flat.shape[1] != flat_final.shape[0]:
        raise ValueError("final must have the structure of one checkpoint")
    if flat.shape[1] < 2:
        raise ValueError("trajectory_projection needs at least 2 parameters")
    diffs = flat - flat_final[None]
    mat = diffs - jnp.mean(diffs, axis=0, keepdims=True) if center else diffs
    _, s, vt = jnp.linalg.svd(mat, full_matrices=False)
    dirs = vt[:2]                                                                   # [2, n]
    biggest = jnp.take_along_axis(dirs, jnp.argmax(jnp.abs(dirs), axis=1)[:, None], axis=1)
    dirs = dirs * jnp.where(biggest < 0, -1.0, 1.0).astype(dirs.dtype)
    coords = jnp.matmul(diffs, dirs.T, precision=jax.lax.Precision.HIGHEST)          # [T, 2]
    power = jnp.square(s)
    ratios = power[:2] / jnp.maximum(jnp.sum(power), jnp.finfo(power.dtype).tiny)
    return TrajectoryProjection(coords, jax.vmap(unravel)(dirs), ratios)

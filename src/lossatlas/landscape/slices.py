"""Loss along lines and planes through parameter space, all points in one program.

* :func:`line` / :func:`plane`: ``L(theta + a d)`` and ``L(theta + x d1 + y d2)``
  (Li et al. 2018, with directions from :func:`random_direction`).
* :func:`interpolate`: ``L((1 - a) theta_a + a theta_b)`` (Goodfellow, Vinyals &
  Saxe 2015, "Qualitatively characterizing neural network optimization problems").

Points are vmapped and split over the devices (``lossatlas.devices``); ``point_batch`` bounds
memory by evaluating them in batches (``lax.map`` over vmapped batches, each split). Each
evaluation averages over ``data`` in chunks (:mod:`lossatlas.batching`).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from lossatlas import devices, validate
from lossatlas.batching import dataset_loss

__all__ = ["line", "plane", "interpolate", "Interpolation", "map_points"]


def map_points(f: Callable, points, point_batch: int | None = None):
    """``f`` over the leading axis of ``points``: vmap (None) or batches of ``point_batch``.

    The points (or each batch of them) are split over the devices when their number divides
    (:func:`lossatlas.devices.shard_batch`); the batches run as ``jax.lax.map(f, points,
    batch_size=point_batch)`` does: full batches in a scan, the remainder vmapped after them.

    Args:
      f: function of one point (a pytree slice of ``points``).
      points: pytree of arrays with a leading points axis ``[N]``.
      point_batch: points per vmapped batch (None: all at once).

    Returns:
      ``f``'s outputs stacked along a leading ``[N]`` axis.
    """
    batched = lambda xs: jax.vmap(f)(devices.shard_batch(xs))  # noqa: E731
    if point_batch is None:
        return batched(points)
    point_batch = validate.integer("map_points", "point_batch", point_batch, 1, optional=True)
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    full = n // point_batch * point_batch
    parts = []
    if full:
        rows = jax.tree_util.tree_map(lambda x: x[:full].reshape((n // point_batch, point_batch) + x.shape[1:]), points)
        out = jax.lax.map(batched, rows)
        parts.append(jax.tree_util.tree_map(lambda y: y.reshape((full,) + y.shape[2:]), out))
    if full < n:
        parts.append(batched(jax.tree_util.tree_map(lambda x: x[full:], points)))
    return jax.tree_util.tree_map(lambda *ys: jnp.concatenate(ys), *parts) if len(parts) > 1 else parts[0]


def _axpy(params, terms):
    """params + sum_i a_i * d_i, in each leaf's dtype."""
    def leaf(p, *ds):
        out = p
        for (a, _), d in zip(terms, ds):
            out = out + a.astype(p.dtype) * d.astype(p.dtype)
        return out
    return jax.tree_util.tree_map(leaf, params, *[d for _, d in terms])


def _vector(name, x):
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of coordinates, got shape {x.shape}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def line(loss_fn: Callable, params, direction, alphas, data=None, chunk_size: int | None = None,
         point_batch: int | None = None):
    """Loss at ``params + alpha * direction`` for every ``alpha`` (one program).

    Args:
      loss_fn: ``loss_fn(params)`` or ``loss_fn(params, batch)`` (a batch mean).
      params: parameter pytree (the origin).
      direction: pytree like ``params``.
      alphas: 1-D array of step sizes ``[A]``.
      data, chunk_size: dataset and chunking (see :mod:`lossatlas.batching`).
      point_batch: points per vmapped batch (None: all at once).

    Returns:
      losses ``[A]``.
    """
    alphas = _vector("alphas", alphas)
    objective = dataset_loss(loss_fn, data, chunk_size)
    return map_points(lambda a: objective(_axpy(params, [(a, direction)])), alphas, point_batch)


def plane(loss_fn: Callable, params, d1, d2, xs, ys, data=None, chunk_size: int | None = None,
          point_batch: int | None = None):
    """Loss on the grid ``params + x * d1 + y * d2`` (one program).

    Args:
      loss_fn, params, data, chunk_size, point_batch: as in :func:`line`.
      d1, d2: directions (pytrees like ``params``).
      xs: 1-D coordinates along ``d1`` ``[X]``; ys: along ``d2`` ``[Y]``.

    Returns:
      losses ``[X, Y]`` with ``losses[i, j] = L(params + xs[i] d1 + ys[j] d2)``
      ("ij" indexing: pass ``losses.T`` to ``matplotlib.contour(xs, ys, .)``).
    """
    xs, ys = _vector("xs", xs), _vector("ys", ys)
    gx, gy = jnp.meshgrid(xs, ys, indexing="ij")
    objective = dataset_loss(loss_fn, data, chunk_size)
    pts = (gx.reshape(-1), gy.reshape(-1))
    out = map_points(lambda xy: objective(_axpy(params, [(xy[0], d1), (xy[1], d2)])), pts, point_batch)
    return out.reshape(gx.shape)


class Interpolation(NamedTuple):
    """Result of :func:`interpolate`: ``alphas [A]``, ``losses [A]``, ``metrics [A]`` or None."""
    alphas: jax.Array
    losses: jax.Array
    metrics: Optional[jax.Array]


def interpolate(loss_fn: Callable, params_a, params_b, num: int = 25, data=None,
                chunk_size: int | None = None, metric_fn: Callable | None = None,
                extent: tuple = (0.0, 1.0), point_batch: int | None = None) -> Interpolation:
    """Loss on the straight path ``(1 - alpha) theta_a + alpha theta_b``.

    Goodfellow et al. 2015 use it (with ``extent`` beyond [0, 1]) to show that
    the path from initialisation to solution is often monotone.

    Args:
      loss_fn: ``loss_fn(params)`` or ``loss_fn(params, batch)`` (a batch mean).
      params_a, params_b: the two endpoints (same pytree structure).
      num: number of evenly spaced ``alpha`` values (static int >= 2).
      data, chunk_size, point_batch: as in :func:`line`.
      metric_fn: optional second function with ``loss_fn``'s signature (e.g.
        accuracy, a batch mean), averaged over ``data`` the same way.
      extent: ``(alpha_start, alpha_stop)``; the default hits both endpoints.

    Returns:
      :class:`Interpolation` ``(alphas, losses, metrics)``; ``metrics`` is None
      without ``metric_fn``.
    """
    num = validate.integer("interpolate", "num", num, 2)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params_a))
    alphas = jnp.linspace(extent[0], extent[1], num, dtype=dtype)
    fns = [dataset_loss(loss_fn, data, chunk_size)]
    if metric_fn is not None:
        fns.append(dataset_loss(metric_fn, data, chunk_size))

    def at(a):
        p = jax.tree_util.tree_map(lambda x, y: (1 - a).astype(x.dtype) * x + a.astype(x.dtype) * y,
                                   params_a, params_b)
        return tuple(f(p) for f in fns)

    out = map_points(at, alphas, point_batch)
    return Interpolation(alphas, out[0], out[1] if metric_fn is not None else None)

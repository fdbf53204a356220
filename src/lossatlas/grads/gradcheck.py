"""Gradient check: ``jax.grad`` against central finite differences, leaf by leaf."""
from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from lossatlas import validate
from lossatlas.grads._util import check_params, path_name

#: Leaves whose gradient norm is below ``FLOOR * ||total gradient||`` are compared on that
#: scale instead of their own (see :func:`check`).
FLOOR = 1e-3


def check(f, params, *args, eps=None, num_coords=None, key=None, dtype=jnp.float64, chunk_size=256):
    """Compare ``jax.grad(f)`` with central finite differences, per params leaf.

    For each sampled coordinate ``j`` the finite difference is
    ``(f(p + h e_j) - f(p - h e_j)) / (2h)`` (with the step actually representable
    in ``dtype``). All finite differences run in one jitted program, vmapped over
    coordinates in chunks of ``chunk_size`` (``lax.map``), never in a Python loop.

    Precision: params and floating-point ``args`` are cast to ``dtype``. The default
    float64 needs 64-bit JAX: run inside ``with jax.enable_x64(True): ...`` or set
    ``jax.config.update("jax_enable_x64", True)`` before creating arrays. Without it
    ``check`` warns and falls back to float32, where errors of ~1e-3 are normal
    (float64 gives ~1e-9 for smooth functions).

    Error per leaf (robust, scale-free): over the leaf's checked coordinates,
    ``||g - fd|| / max(||g||, ||fd||, FLOOR * ||g_all||, tiny)`` where ``g_all`` is the
    checked part of the whole gradient and ``FLOOR = 1e-3``. The floor keeps leaves
    whose gradient is analytically zero (e.g. attention key biases, invariant under
    softmax) from reporting pure rounding noise as a relative error of 1; a leaf
    whose gradient is exactly zero in both gives 0.

    Args:
      f: ``f(params, *args) -> scalar``, differentiable in ``params``.
      params: pytree of floating-point arrays.
      *args: further arguments of ``f`` (e.g. a batch), passed unchanged except
        for the cast of floating-point arrays to ``dtype``.
      eps: step ``h``; default ``finfo(dtype).eps ** (1/3)`` (6e-6 in float64,
        5e-3 in float32), the step that balances truncation and rounding error.
      num_coords: check only this many random coordinates per leaf (all of a
        smaller leaf); ``None`` checks every coordinate.
      key: PRNG key for the coordinate sample; required with ``num_coords``.
      dtype: ``jnp.float64`` (default) or ``jnp.float32``.
      chunk_size: coordinates evaluated per vmapped chunk (memory vs speed).

    Returns:
      ``{leaf_path: relative error, ..., "max": largest error}`` as Python floats;
      paths are ``"/"``-joined keys, e.g. ``"params/Dense_0/kernel"``.

    Raises:
      ValueError: non-scalar ``f``, non-float params or dtype, bad eps /
        num_coords / chunk_size, or ``num_coords`` without ``key``.
    """
    fn = "grads.check"
    check_params(fn, params)
    dtype = jnp.dtype(dtype)
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"{fn}: dtype must be float32 or float64, got {dtype}")
    eps = validate.number(fn, "eps", eps, 0, lo_open=True, optional=True)
    chunk_size = validate.integer(fn, "chunk_size", chunk_size, 1)
    if num_coords is not None:
        num_coords = validate.integer(fn, "num_coords", num_coords, 1)
        if key is None:
            raise ValueError(f"{fn}: key is required when num_coords is given (coordinates are sampled)")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        warnings.warn(f"{fn}: float64 is not enabled (wrap the call in `with jax.enable_x64(True):` or set "
                      "jax_enable_x64); checking in float32, where relative errors ~1e-3 are normal",
                      stacklevel=2)
        dtype = jnp.dtype(jnp.float32)
    if eps is None:
        eps = float(np.finfo(dtype).eps) ** (1.0 / 3.0)

    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    params = jax.tree_util.tree_map(cast, params)
    args = jax.tree_util.tree_map(cast, args)
    out = jax.eval_shape(f, params, *args)
    if getattr(out, "shape", None) != ():
        raise ValueError(f"{fn}: f must return a scalar, got {out!r}")

    named = jax.tree_util.tree_leaves_with_path(params)
    total = sum(int(np.prod(leaf.shape)) for _, leaf in named)
    # One uniform draw per coordinate; a leaf's sample is its num_coords smallest draws
    # (uniform without replacement), so sampling costs one device call.
    u = None if num_coords is None else np.asarray(jax.random.uniform(key, (total,)))
    names, segments, offset = [], [], 0
    for path, leaf in named:
        size = int(np.prod(leaf.shape))
        if num_coords is None or num_coords >= size:
            idx = np.arange(size)
        else:
            idx = np.sort(np.argsort(u[offset:offset + size], kind="stable")[:num_coords])
        names.append(path_name(path))
        segments.append(idx + offset)
        offset += size
    coords = jnp.asarray(np.concatenate(segments), jnp.int32)

    g, fd = _run(f, chunk_size, params, args, coords, jnp.asarray(eps, dtype))
    g, fd = np.asarray(g, np.float64), np.asarray(fd, np.float64)
    floor = max(FLOOR * float(np.linalg.norm(g)), np.finfo(np.float64).tiny)
    result, start = {}, 0
    for name, seg in zip(names, segments):
        gs, fs = g[start:start + len(seg)], fd[start:start + len(seg)]
        start += len(seg)
        denom = max(np.linalg.norm(gs), np.linalg.norm(fs), floor)
        result[name] = float(np.linalg.norm(gs - fs) / denom)
    result["max"] = max(result.values())
    return result


@functools.partial(jax.jit, static_argnums=(0, 1))
def _run(f, chunk_size, params, args, coords, eps):
    """(jax.grad at coords, central differences at coords), one program per f and shapes."""
    flat, unravel = ravel_pytree(params)

    def fv(v):
        return f(unravel(v), *args)

    g = jax.grad(fv)(flat)[coords]

    def fd_one(j):
        up, down = flat.at[j].add(eps), flat.at[j].add(-eps)
        return (fv(up) - fv(down)) / (up[j] - down[j])

    # Pad the coordinates to whole chunks (repeats of the first; sliced off below) so
    # the function is compiled once, for the chunk body only.
    k = coords.shape[0]
    size = min(chunk_size, k)
    num = -(-k // size)
    padded = jnp.concatenate([coords, jnp.broadcast_to(coords[:1], (num * size - k,))])
    return g, jax.lax.map(jax.vmap(fd_one), padded.reshape(num, size)).reshape(-1)[:k]

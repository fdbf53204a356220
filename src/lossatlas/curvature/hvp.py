"""Hessian- and Gauss-Newton-vector products without forming a matrix.

* :func:`hvp`: forward-over-reverse, ``H v = d/de grad L(theta + e v)|_{e=0}``
  (``jax.jvp`` of ``jax.grad``; Pearlmutter 1994, the cheapest exact HVP).
* :func:`ggn_vp`: the generalised Gauss-Newton ``G v = J^T H_L J v``
  (Schraudolph 2002; Martens 2010).
* :func:`flat_operator`: either product as a function of flat vectors, which is
  what the Krylov methods (Lanczos, power iteration, Hutchinson) consume.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lossatlas.batching import mean_over_data, per_batch

__all__ = ["hvp", "ggn_vp", "flat_operator"]


def hvp(loss_fn: Callable, params, v, data=None, chunk_size: int | None = None):
    """Hessian-vector product ``H v`` of the (dataset-mean) loss at ``params``.

    Forward-over-reverse differentiation (``jvp`` of ``grad``), exact up to
    rounding, at the cost of about two gradient evaluations. With ``data`` the
    product is accumulated chunk by chunk (``H = sum_c (n_c/n) H_c``), see
    :mod:`lossatlas.batching`.

    Args:
      loss_fn: ``loss_fn(params) -> scalar`` or ``loss_fn(params, batch) -> scalar``
        (a batch mean) when ``data`` is given.
      params: parameter pytree.
      v: tangent pytree with the structure, shapes and dtypes of ``params``.
      data: optional pytree of arrays with a leading example axis.
      chunk_size: examples per chunk (static int) or None for one pass.

    Returns:
      ``H v`` as a pytree like ``params``.
    """
    def one(batch):
        return jax.jvp(jax.grad(per_batch(loss_fn, batch)), (params,), (v,))[1]

    return mean_over_data(one, data, chunk_size)


def ggn_vp(model_fn: Callable, loss_of_output: Callable, params, v, data=None,
           chunk_size: int | None = None):
    """Generalised Gauss-Newton-vector product ``G v = J^T H_L J v``.

    Convention: for outputs ``z = model_fn(params, x)`` and a loss
    ``loss_of_output(z, y)``, ``J = dz/dparams`` (the model's Jacobian at
    ``params``) and ``H_L = d^2 loss / dz^2`` (the loss's Hessian in output space),
    so ``G = J^T H_L J`` is the Hessian with the term ``sum_k (dL/dz_k) d^2 z_k /
    dparams^2`` dropped. ``G`` is positive semi-definite whenever the loss is convex
    in ``z`` (MSE, softmax cross-entropy), and for cross-entropy with
    softmax outputs it equals the Fisher information (Martens 2014). With ``data``
    the product is the example-weighted mean over chunks, which equals the
    full-batch ``G v`` whenever ``loss_of_output`` is a mean over examples (then
    ``H_L`` is block-diagonal per example).

    Computed as ``jvp`` of the model (``J v``), ``jvp`` of the output gradient
    (``H_L J v``), then ``vjp`` of the model (``J^T .``): one forward pass, one
    forward-mode and one reverse-mode pass per chunk.

    Args:
      model_fn: ``model_fn(params, x) -> outputs`` (``model_fn(params)`` when
        ``data`` is None).
      loss_of_output: ``loss_of_output(outputs, y) -> scalar`` (a batch mean;
        ``loss_of_output(outputs)`` when ``data`` is None).
      params: parameter pytree.
      v: tangent pytree like ``params``.
      data: None, or ``(x, y)``: inputs and targets with a leading example axis.
      chunk_size: examples per chunk (static int) or None.

    Returns:
      ``G v`` as a pytree like ``params``.
    """
    if data is not None and not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError("ggn_vp: data must be a pair (inputs, targets) with a leading example axis, or None")

    def one(batch):
        if batch is None:
            f, ell = (lambda p: model_fn(p)), (lambda z: loss_of_output(z))
        else:
            x, y = batch
            f, ell = (lambda p: model_fn(p, x)), (lambda z: loss_of_output(z, y))
        z, vjp_fn = jax.vjp(f, params)
        _, jv = jax.jvp(f, (params,), (v,))
        _, hjv = jax.jvp(jax.grad(ell), (z,), (jv,))
        return vjp_fn(hjv)[0]

    return mean_over_data(one, None if data is None else tuple(data), chunk_size)


def flat_operator(loss_fn: Callable, params, data=None, chunk_size: int | None = None, *,
                  product: Callable | None = None):
    """The Hessian (or another curvature product) as a map on flat vectors.

    Args:
      loss_fn, params, data, chunk_size: as in :func:`hvp`.
      product: ``(params, v) -> pytree``, default ``hvp`` of ``loss_fn``; pass e.g.
        ``lambda p, v: ggn_vp(model_fn, loss_of_output, p, v, data)`` to use the
        Gauss-Newton matrix in the Krylov methods (``loss_fn``, ``data`` and
        ``chunk_size`` are then unused: the product handles its own data).

    Returns:
      ``(matvec, flat_params, unravel)``: ``matvec(u_n) -> (H u)_n`` on vectors of
      dimension ``n = flat_params.size`` (the dtype of ``flat_params``) and the
      ``unravel`` that maps a flat vector back to a params pytree.
    """
    flat, unravel = ravel_pytree(params)
    if product is None:
        product = lambda p, t: hvp(loss_fn, p, t, data, chunk_size)  # noqa: E731

    def matvec(u):
        return ravel_pytree(product(params, unravel(u.astype(flat.dtype))))[0].astype(flat.dtype)

    return matvec, flat, unravel


def _check_dim(flat) -> int:
    if flat.ndim != 1 or flat.size == 0:
        raise ValueError("params must contain at least one array element")
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise ValueError(f"params must be floating point, got {flat.dtype}")
    return int(flat.size)

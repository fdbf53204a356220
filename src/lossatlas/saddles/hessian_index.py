"""The Hessian index: the fraction of negative Hessian eigenvalues at a point.

At a critical point the index says what kind it is: 0 for a minimum, 1 for a maximum,
in between for a saddle with that share of descending directions. Dauphin et al. 2014
("Identifying and attacking the saddle point problem in high-dimensional non-convex
optimization") and Pennington & Bahri 2017 ("Geometry of neural network loss surfaces
via random matrix theory") relate a critical point's index to its loss: the higher the
loss, the larger the index.

Three ways to compute it, from exact to scalable:

* ``"dense"``: all eigenvalues of the dense Hessian (``n`` Hessian-vector products and
  one ``eigvalsh``; small models only). Exact.
* ``"lanczos"``: the Ritz values of one Lanczos run of ``m`` steps. By Cauchy's
  interlacing theorem the ``i``-th smallest Ritz value is ``>=`` the ``i``-th smallest
  eigenvalue, so the count of negative Ritz values is a *lower bound* on the count of
  negative eigenvalues when ``m < n`` (exact when ``m = n``). Deterministic given the key.
* ``"slq"``: stochastic Lanczos quadrature (Golub & Meurant 1994; Ubaru, Chen & Saad
  2017): for each random probe, the quadrature weight on Ritz nodes below ``-tol``
  estimates the spectral measure of the negative half-line, ``#{lambda < -tol} / n``;
  the mean over probes is unbiased up to the quadrature error, with a standard error.

An eigenvalue counts as negative when it is below ``-tol``. ``tol=None`` means
``rel_tol * scale``, with ``scale`` the largest magnitude among the computed eigenvalues
(dense) or Ritz values (lanczos, slq over all probes), and ``rel_tol`` by default
``1000 * eps(dtype)``: zero eigenvalues (symmetries, over-parameterisation) come out as
rounding noise of that relative size and must not count.

SLQ's resolution near zero. The SLQ estimate is the quadrature weight of Ritz nodes below
``-tol``; a node near zero stands for a cluster of eigenvalues that may straddle zero, so
when much of the spectrum sits in a bulk at zero (trained networks) a rounding-level
``tol`` can count half that bulk as negative (or none of it), far outside the standard
error (which measures probe sampling only). A larger ``rel_tol`` (e.g. ``1e-2``: the mass
below -1% of the spectral scale) moves the threshold out of the bulk, where ``m`` Lanczos
steps resolve the measure; compare with ``"dense"`` on a small model to choose it.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from lossatlas import keys, linalg, validate
from lossatlas.curvature import flat_operator, lanczos_quadrature

__all__ = ["HessianIndex", "INDEX_METHODS", "index", "negative_spectral_mass"]

INDEX_METHODS = ("dense", "lanczos", "slq")
_RTOL = 1000  # default tol = _RTOL * eps * spectral scale


class HessianIndex(NamedTuple):
    """Result of :func:`index` (scalars; add a leading axis by vmapping).

    Attributes:
      index: fraction of eigenvalues below ``-tol``, in ``[0, 1]``.
      stderr: standard error of ``index`` (``"slq"``); 0 for ``"dense"`` and
        ``"lanczos"`` (exact, respectively a deterministic lower bound).
      num_negative: number of eigenvalues below ``-tol`` (float): the exact count
        (dense), a lower bound (lanczos) or ``n * index`` (slq).
    """

    index: jax.Array
    stderr: jax.Array
    num_negative: jax.Array


def _tol(tol, values, rel_tol=None):
    if tol is not None:
        return jnp.asarray(tol, values.dtype)
    rel = _RTOL * jnp.finfo(values.dtype).eps if rel_tol is None else rel_tol
    return jnp.asarray(rel, values.dtype) * jnp.max(jnp.abs(values))


def _tols(where, tol, rel_tol):
    tol = validate.number(where, "tol", tol, lo=0, optional=True)
    rel_tol = validate.number(where, "rel_tol", rel_tol, lo=0, hi=1, hi_open=True, optional=True)
    if tol is not None and rel_tol is not None:
        validate.fail(where, "rel_tol", rel_tol, f"None when tol is given (tol={tol})")
    return tol, rel_tol


def negative_spectral_mass(nodes, weights, tol: float | None = None, rel_tol: float | None = None):
    """Share of the spectral measure below ``-tol`` from Lanczos quadrature nodes and weights.

    Args:
      nodes, weights: ``[P, m]`` as returned by
        :func:`lossatlas.curvature.lanczos_quadrature` (each row of weights sums to 1).
      tol: absolute threshold (``>= 0``); None means ``rel_tol * max|nodes|``.
      rel_tol: relative threshold in ``[0, 1)`` (only with ``tol=None``); None means
        ``1000 * eps``.

    Returns:
      ``(mass, stderr)``: the mean over probes of ``sum_j weights[p, j] [nodes[p, j] < -tol]``
      and its standard error ``std(ddof=1) / sqrt(P)`` (NaN for ``P = 1``).
    """
    tol, rel_tol = _tols("negative_spectral_mass", tol, rel_tol)
    per_probe = jnp.sum(jnp.where(nodes < -_tol(tol, nodes, rel_tol), weights, 0), axis=-1)
    num_probes = per_probe.shape[0]
    return jnp.mean(per_probe), jnp.std(per_probe, ddof=1) / jnp.sqrt(num_probes)


def index(loss_fn: Callable, params, key=None, method: str = "dense", *, data=None, chunk_size: int | None = None,
          num_steps: int | None = None, num_probes: int = 20, tol: float | None = None,
          rel_tol: float | None = None) -> HessianIndex:
    """The Hessian index (fraction of negative eigenvalues) of the loss at ``params``.

    Jittable and vmappable (``method``, ``num_steps``, ``num_probes`` are static)::

        jax.vmap(lambda p, k: index(loss, p, k, "slq"))(params_S, keys_S)

    Args:
      loss_fn: ``loss_fn(params)``, or ``loss_fn(params, batch)`` (a batch mean) with ``data``.
      params: parameter pytree (one point).
      key: PRNG key for ``"lanczos"`` (start vector) and ``"slq"`` (probes); unused by
        ``"dense"`` (may be None there).
      method: ``"dense"``, ``"lanczos"`` or ``"slq"`` (see the module docstring).
      data, chunk_size: dataset and chunking (exact means, :mod:`lossatlas.batching`).
      num_steps: Lanczos steps (static int ``>= 1``, capped at ``n``); default ``min(n, 90)``.
      num_probes: ``"slq"`` probes (static int ``>= 2``).
      tol: eigenvalues below ``-tol`` count as negative (absolute, ``>= 0``); None is
        ``rel_tol`` times the spectral scale (module docstring).
      rel_tol: the threshold relative to the spectral scale, in ``[0, 1)``, when ``tol`` is
        None; None means ``1000 * eps`` (rounding level). See the module docstring on SLQ's
        resolution near zero.

    Returns:
      :class:`HessianIndex`.
    """
    where = "index"
    validate.one_of(where, "method", method, INDEX_METHODS)
    num_steps = validate.integer(where, "num_steps", num_steps, 1, optional=True)
    num_probes = validate.integer(where, "num_probes", num_probes, 2)
    tol, rel_tol = _tols(where, tol, rel_tol)
    if method != "dense":
        keys.require_key(where, key)
    matvec, flat, _ = flat_operator(loss_fn, params, data, chunk_size)
    if flat.ndim != 1 or flat.size == 0 or not jnp.issubdtype(flat.dtype, jnp.floating):
        validate.fail(where, "params", f"{flat.size} values of dtype {flat.dtype}", "a non-empty floating-point pytree")
    n = flat.shape[0]
    m = min(n, num_steps if num_steps is not None else 90)
    zero = jnp.zeros((), flat.dtype)
    if method == "slq":
        nodes, weights = lanczos_quadrature(loss_fn, params, key, m, num_probes, data, chunk_size)
        mass, stderr = negative_spectral_mass(nodes, weights, tol, rel_tol)
        return HessianIndex(mass, stderr, n * mass)
    if method == "dense":
        values = linalg.eigvalsh(linalg.dense_symmetric(matvec, n, flat.dtype))
    else:
        alphas, betas, _ = linalg.lanczos_from_key(matvec, key, n, m, flat.dtype)
        values = linalg.tridiagonal_eigh(alphas, betas)[0]
    count = jnp.sum(values < -_tol(tol, values, rel_tol)).astype(flat.dtype)
    return HessianIndex(count / n, zero, count)

"""Critical points of a loss by Newton-MR or gradient-norm minimisation, many starts at once.

Both methods look for zeros of the gradient ``g(theta)``, including saddles (unlike
training, which runs away from them), by driving ``phi(theta) = ||g||^2 / 2`` down:

* ``"newton_mr"`` (Roosta, Liu, Xu & Mahoney 2018, "Newton-MR: Inexact Newton method
  with minimum residual sub-problem solver"; used for neural-network critical points by
  Frye, Simon, Wadia, Ligeralde, DeWeese & Bouchard 2021, "Critical point-finding methods
  reveal gradient-flat regions of deep network losses"): the step ``p`` approximately
  solves ``min_p ||H p + g||`` by MINRES (:func:`lossatlas.linalg.minres`, Hessian-vector
  products from :func:`lossatlas.curvature.flat_operator`), then a backtracking line
  search halves the step until Armijo's condition on ``phi`` holds,
  ``phi(theta + a p) <= phi(theta) + rho a <p, H g>``.
* ``"gradnorm"`` (Pennington & Bahri 2017, "Geometry of neural network loss surfaces via
  random matrix theory"): first-order descent on ``phi``, whose gradient is ``H g``
  (one Hessian-vector product). By default steepest descent with the same backtracking
  line search (the first trial step doubles the last accepted one); ``optimizer=`` any
  optax transformation (e.g. ``optax.adam(1e-3)``) instead.

Both can stop where ``phi`` is stationary but ``g != 0``: ``H g = 0``, the gradient lies
in the Hessian's kernel. Frye et al. call these points *gradient-flat*; they are not
critical points, and this module never calls one a saddle. :class:`CriticalPoints`
reports both flags and the ratio ``||H g|| / ||g||`` they are read from.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from lossatlas import devices, keys, linalg, validate
from lossatlas.batching import dataset_loss, mean_over_data, per_batch
from lossatlas.curvature import flat_operator

__all__ = ["CriticalPoints", "METHODS", "find_critical_points"]

METHODS = ("newton_mr", "gradnorm")
_HI = jax.lax.Precision.HIGHEST


class CriticalPoints(NamedTuple):
    """Result of :func:`find_critical_points`; every field has a leading starts axis ``S``.

    Attributes:
      params: the final points (params pytree, leaves ``[S, ...]``).
      loss: ``[S]`` loss there.
      grad_norm: ``[S]`` ``||g||`` there.
      is_critical: ``[S]`` bool, ``grad_norm <= grad_tol``.
      is_gradient_flat: ``[S]`` bool, not critical and ``flatness <= flat_tol``: ``||g||^2``
        is stationary with ``g`` (approximately) in the Hessian's kernel. Not a saddle,
        not a critical point (Frye et al. 2021).
      flatness: ``[S]`` ``||H g|| / ||g||`` (eigenvalue units; 0 where ``g = 0``).
      grad_norms: ``[S, num_steps + 1]`` ``||g||`` at the start and after every step.
      converged_at: ``[S]`` int, the first step whose ``||g|| <= grad_tol`` (0 = the
        start), -1 if never.
    """

    params: object
    loss: jax.Array
    grad_norm: jax.Array
    is_critical: jax.Array
    is_gradient_flat: jax.Array
    flatness: jax.Array
    grad_norms: jax.Array
    converged_at: jax.Array


def _starts(params0, where: str):
    """``(S, unravel)`` for params with a shared leading starts axis, checked."""
    leaves = jax.tree_util.tree_leaves(params0)
    sizes = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
    if not leaves or None in sizes or len(sizes) != 1 or 0 in sizes:
        validate.fail(where, "params0", f"leading sizes {sorted(sizes, key=str)}",
                      "a params pytree whose leaves share a leading starts axis S >= 1")
    if not all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for leaf in leaves):
        validate.fail(where, "params0", [str(jnp.result_type(leaf)) for leaf in leaves], "floating point")
    _, unravel = ravel_pytree(jax.tree_util.tree_map(lambda a: a[0], params0))
    return sizes.pop(), unravel


def _backtrack(phi: Callable, x, d, phi0, slope, alpha0, max_halvings: int, rho: float):
    """Largest ``a = alpha0 / 2^k`` (``k <= max_halvings``) with ``phi(x + a d) <= phi0 +
    rho a slope`` (Armijo 1966), or 0 if none (the point then stays where it is)."""
    def trial(alpha):
        val = phi(x + alpha * d)
        return jnp.isfinite(val) & (val <= phi0 + rho * alpha * slope)

    def body(c):
        k, alpha, _ = c
        return k + 1, alpha / 2, trial(alpha / 2)

    _, alpha, ok = jax.lax.while_loop(lambda c: (~c[2]) & (c[0] < max_halvings), body,
                                      (0, alpha0, trial(alpha0)))
    return jnp.where(ok, alpha, 0)


def find_critical_points(loss_fn: Callable, params0, key, method: str = "newton_mr", num_steps: int = 50, *,
                         grad_tol: float = 1e-5, flat_tol: float = 1e-3, data=None,
                         chunk_size: int | None = None, minres_iters: int = 20, max_halvings: int = 30,
                         armijo: float = 1e-4, optimizer=None, jitter: float = 0.0) -> CriticalPoints:
    """Search for critical points (minima, saddles, maxima) from ``S`` starts at once.

    Every start runs ``num_steps`` steps of ``method`` inside one ``lax.scan``; the
    starts are a ``vmap`` axis of the same program, so under ``jax.jit`` the whole
    search compiles once. A start whose step would leave the finite numbers keeps its
    last finite point. Runs in the dtype of ``params0`` (float32, or float64 under x64).
    The starts are split over the devices when their number divides
    (:func:`lossatlas.devices.shard_batch`); ``params0`` may already be sharded along the
    starts axis (a sweep's seed-sharded outputs). The line search's data-dependent
    ``while_loop`` then all-reduces its condition across devices (it finishes, with the
    host copy's numbers; ``tests/test_devices.py``).

    Args:
      loss_fn: ``loss_fn(params)``, or ``loss_fn(params, batch)`` (a batch mean) with ``data``.
      params0: params pytree whose leaves have a leading starts axis ``S``.
      key: PRNG key. Neither method draws random numbers; the key seeds the Gaussian
        ``jitter`` added to the starts (none by default, key then unused but required,
        so that turning jitter on never picks a hidden seed).
      method: ``"newton_mr"`` or ``"gradnorm"`` (see the module docstring).
      num_steps: steps per start (static int ``>= 1``).
      grad_tol: ``is_critical`` threshold on ``||g||`` (absolute, ``> 0``).
      flat_tol: ``is_gradient_flat`` threshold on ``||H g|| / ||g||``, in eigenvalue units
        (compare it with the Hessian's scale, e.g. its top eigenvalue); ``>= 0``.
      data, chunk_size: dataset and chunking (exact means, :mod:`lossatlas.batching`).
      minres_iters: MINRES iterations per Newton-MR step (static int ``>= 1``).
      max_halvings: line-search halvings per step (static int ``>= 0``).
      armijo: sufficient-decrease constant ``rho`` in ``(0, 0.5)``.
      optimizer: ``"gradnorm"`` only: an optax ``GradientTransformation`` applied to
        ``H g`` (the gradient of ``||g||^2 / 2``) on the params pytree; None uses the
        backtracking steepest descent.
      jitter: standard deviation of the Gaussian perturbation of the starts (``>= 0``).

    Returns:
      :class:`CriticalPoints` (leading axis ``S`` on every field).

    Raises:
      ValueError: bad ``method``, counts, tolerances, ``params0`` without a shared
        starts axis, a missing key, or ``optimizer`` given for ``"newton_mr"``.
    """
    where = "find_critical_points"
    keys.require_key(where, key)
    validate.one_of(where, "method", method, METHODS)
    num_steps = validate.integer(where, "num_steps", num_steps, 1)
    grad_tol = validate.number(where, "grad_tol", grad_tol, lo=0, lo_open=True)
    flat_tol = validate.number(where, "flat_tol", flat_tol, lo=0)
    minres_iters = validate.integer(where, "minres_iters", minres_iters, 1)
    max_halvings = validate.integer(where, "max_halvings", max_halvings, 0)
    armijo = validate.number(where, "armijo", armijo, 0, 0.5, lo_open=True, hi_open=True)
    jitter = validate.number(where, "jitter", jitter, lo=0)
    if optimizer is not None and (method != "gradnorm" or not hasattr(optimizer, "update")):
        validate.fail(where, "optimizer", optimizer, "None, or an optax GradientTransformation with method='gradnorm'")
    _, unravel = _starts(params0, where)
    x0 = jax.vmap(lambda p: ravel_pytree(p)[0])(params0)                        # [S, n]
    if jitter > 0:
        x0 = x0 + jitter * jax.random.normal(key, x0.shape, x0.dtype)
    x0 = devices.shard_batch(x0)  # the starts split over the devices where their number divides

    value = dataset_loss(loss_fn, data, chunk_size)

    def grad(x):
        p = unravel(x)
        return ravel_pytree(mean_over_data(lambda b: jax.grad(per_batch(loss_fn, b))(p), data, chunk_size))[0]

    def hessian_at(x):  # H at x as a map on flat vectors, built once per point and reused
        return flat_operator(loss_fn, unravel(x), data, chunk_size)[0]

    def phi(x):
        return 0.5 * jnp.sum(jnp.square(grad(x)))

    def newton_mr(x, g, aux):
        hess = hessian_at(x)
        p = linalg.minres(hess, -g, minres_iters)
        slope = jnp.dot(p, hess(g), precision=_HI)                             # <p, H g> < 0
        alpha = _backtrack(phi, x, p, 0.5 * jnp.sum(jnp.square(g)), slope, jnp.ones((), x.dtype), max_halvings,
                           armijo)
        return x + alpha * p, aux

    def gradnorm(x, g, aux):
        hg = hessian_at(x)(g)
        if optimizer is not None:
            updates, aux = optimizer.update(unravel(hg), aux, unravel(x))
            return x + ravel_pytree(updates)[0].astype(x.dtype), aux
        alpha0 = jnp.minimum(2 * aux, jnp.finfo(x.dtype).max ** 0.25)   # doubling, never to inf
        alpha = _backtrack(phi, x, -hg, 0.5 * jnp.sum(jnp.square(g)), -jnp.sum(jnp.square(hg)), alpha0,
                           max_halvings, armijo)
        return x - alpha * hg, jnp.where(alpha > 0, alpha, aux)

    step = newton_mr if method == "newton_mr" else gradnorm

    def one(x):
        aux = optimizer.init(unravel(x)) if optimizer is not None else jnp.ones((), x.dtype) / 2

        def body(carry, _):
            x, aux = carry
            g = grad(x)
            x_new, aux_new = step(x, g, aux)
            ok = jnp.all(jnp.isfinite(x_new))
            carry = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, b, a), (x, aux), (x_new, aux_new))
            return carry, jnp.linalg.norm(g)

        (x, _), norms = jax.lax.scan(body, (x, aux), None, length=num_steps)
        g = grad(x)
        gn = jnp.linalg.norm(g)
        flatness = jnp.linalg.norm(hessian_at(x)(g)) / jnp.where(gn > 0, gn, 1)
        return x, value(unravel(x)), gn, flatness, jnp.concatenate([norms, gn[None]])

    x, loss, gn, flatness, norms = jax.vmap(one)(x0)
    hit = norms <= grad_tol
    is_critical = gn <= grad_tol
    return CriticalPoints(
        params=jax.vmap(unravel)(x), loss=loss, grad_norm=gn, is_critical=is_critical,
        is_gradient_flat=(~is_critical) & (flatness <= flat_tol), flatness=flatness, grad_norms=norms,
        converged_at=jnp.where(jnp.any(hit, axis=1), jnp.argmax(hit, axis=1), -1).astype(jnp.int32))

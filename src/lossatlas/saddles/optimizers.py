"""Saddle-escaping optimizers (and one that is attracted to saddles) as optax transformations.

Each is an ``optax.GradientTransformationExtraArgs``: ``init(params) -> state`` (a
NamedTuple) and ``update(grads, state, params, **extra_args) -> (updates, state)``, whose
updates already carry the step's sign and size (``params + updates``, as ``optax.sgd``).
The second-order ones need the loss: like ``optax.lbfgs``'s line search they read it
from the extra argument ``value_fn`` (a function ``params -> scalar``), which
``optax.chain`` forwards::

    tx = saddle_free_newton(1.0, damping=1e-3)
    updates, state = tx.update(jax.grad(loss)(params), state, params, value_fn=loss)

Hyperparameters may be traced scalars (a vmap grid) or injected, with the integer and string
arguments static: ``optax.inject_hyperparams(saddle_free_newton, static_args=("method",
"krylov_dim"))(learning_rate=0.5, damping=1e-3)``.

* :func:`saddle_free_newton` (Dauphin et al. 2014, "Identifying and attacking the saddle
  point problem in high-dimensional non-convex optimization"): ``-lr (|H| + damping I)^-1 g``,
  Newton's step with the Hessian's eigenvalues replaced by their absolute values, so
  negative-curvature directions are descended instead of climbed.
* :func:`damped_newton`: ``-lr (H + damping I)^-1 g``, for contrast: on a saddle's
  negative directions it steps *towards* the saddle (Newton's method seeks any zero of g).
* :func:`perturbed_gd` (Jin, Ge, Netrapalli, Kakade & Jordan 2017, "How to escape saddle
  points efficiently"): gradient descent plus a random kick from a ball when the gradient
  is small; no ``value_fn`` needed.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from lossatlas import keys, linalg, validate
from lossatlas.curvature import flat_operator

__all__ = ["NEWTON_METHODS", "NewtonState", "PerturbedGDState", "damped_newton", "perturbed_gd",
           "saddle_free_newton"]

NEWTON_METHODS = ("dense", "krylov")
_HI = jax.lax.Precision.HIGHEST


class NewtonState(NamedTuple):
    """State of :func:`saddle_free_newton` and :func:`damped_newton`.

    Attributes:
      count: steps taken (int32).
      min_eigenvalue: the smallest Hessian eigenvalue (dense) or Ritz value (krylov) seen
        at the last step (negative near a saddle); 0 before the first step.
    """

    count: jax.Array
    min_eigenvalue: jax.Array


class PerturbedGDState(NamedTuple):
    """State of :func:`perturbed_gd`.

    Attributes:
      key: the PRNG key given at construction; step ``t`` draws from ``fold_in(key, t)``.
      count: steps taken (int32).
      last_perturbation: step of the last perturbation (``-wait_steps - 1`` before any).
      num_perturbations: perturbations so far (int32).
    """

    key: jax.Array
    count: jax.Array
    last_perturbation: jax.Array
    num_perturbations: jax.Array


def _hyper(where: str, field: str, value, lo: float = 0):
    """A Python number is checked (``>= lo``); a traced or array scalar passes (vmap grids)."""
    if isinstance(value, numbers.Number) or value is None:
        return validate.number(where, field, value, lo=lo)
    return value


def _need(where: str, params, value_fn):
    if params is None or value_fn is None:
        raise ValueError(f"{where}: update needs params and value_fn (a function params -> scalar loss), "
                         f"e.g. tx.update(grads, state, params, value_fn=loss)")


def _newton(where: str, learning_rate, damping, transfer, method: str, krylov_dim: int | None):
    """Shared body: ``-lr * f(H) g`` with ``f(lam) = transfer(lam)`` applied to the dense
    eigendecomposition of ``H`` or of its Lanczos projection on the Krylov space of ``g``."""
    def init(params):
        del params
        return NewtonState(jnp.zeros((), jnp.int32), jnp.zeros(()))

    def update(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        _need(where, params, value_fn)
        g, unravel = ravel_pytree(updates)
        matvec, flat, _ = flat_operator(value_fn, params)
        g = g.astype(flat.dtype)
        n = g.shape[0]
        if method == "dense":
            lam, vecs = linalg.eigh(linalg.dense_symmetric(matvec, n, g.dtype))       # columns are eigenvectors
            basis = vecs.T                                             # rows: orthonormal eigenvectors
        else:
            # The Krylov space of g holds g, so the step lies in it: nothing of g is left in the
            # orthogonal complement that a 1/damping scaling would act on.
            restart = jnp.sin(jnp.arange(1, n + 1, dtype=g.dtype))     # only used if the space is invariant
            alphas, betas, q = linalg.lanczos(matvec, g, min(krylov_dim, n), restart)
            lam, s = linalg.tridiagonal_eigh(alphas, betas)
            basis = jnp.matmul(s.T, q, precision=_HI)                  # Ritz vectors [k, n]
        coef = transfer(lam, jnp.asarray(damping, g.dtype))
        step = jnp.matmul(basis.T, coef * jnp.matmul(basis, g, precision=_HI), precision=_HI)
        out = jax.tree_util.tree_map(lambda u, s: (-learning_rate * s).astype(u.dtype), updates, unravel(step))
        return out, NewtonState(state.count + 1, lam[0].astype(state.min_eigenvalue.dtype))

    return optax.GradientTransformationExtraArgs(init, update)


def saddle_free_newton(learning_rate=1.0, damping=1e-3, method: str = "dense",
                       krylov_dim: int = 20) -> optax.GradientTransformationExtraArgs:
    """Saddle-free Newton (Dauphin et al. 2014): ``updates = -lr (|H| + damping I)^-1 g``.

    ``|H| = V |Lambda| V^T``: every negative-curvature direction is followed downhill with
    a step ``|g_i| / (|lambda_i| + damping)``, so a saddle repels instead of attracting.

    * ``"dense"``: the full eigendecomposition of ``H`` (``n`` Hessian-vector products and
      one ``eigh``; small models).
    * ``"krylov"``: Dauphin et al.'s approximation: ``k = krylov_dim`` Lanczos steps from
      ``g`` (full reorthogonalisation, :func:`lossatlas.linalg.lanczos`), ``|H|`` replaced
      by ``Q^T |T| Q`` with ``T = Q H Q^T`` the ``k x k`` tridiagonal. Since the Krylov
      space contains ``g``, the step lies in it (the orthogonal-complement part that a
      ``1/damping`` scaling would act on is zero, and is not computed: it would only
      amplify rounding). With ``k = n`` it equals the dense method.

    Args:
      learning_rate: step size (a number ``>= 0`` or a traced scalar).
      damping: added to ``|lambda|`` (``>= 0``; ``> 0`` unless ``H`` is non-singular).
      method: ``"dense"`` or ``"krylov"``.
      krylov_dim: Lanczos steps for ``"krylov"`` (static int ``>= 1``, capped at ``n``).

    Returns:
      ``optax.GradientTransformationExtraArgs`` with :class:`NewtonState`; ``update``
      needs ``params`` and ``value_fn`` (``params -> scalar``).
    """
    where = "saddle_free_newton"
    learning_rate = _hyper(where, "learning_rate", learning_rate)
    damping = _hyper(where, "damping", damping)
    validate.one_of(where, "method", method, NEWTON_METHODS)
    krylov_dim = validate.integer(where, "krylov_dim", krylov_dim, 1)
    return _newton(where, learning_rate, damping, lambda lam, d: 1 / (jnp.abs(lam) + d), method, krylov_dim)


def damped_newton(learning_rate=1.0, damping=1e-3) -> optax.GradientTransformationExtraArgs:
    """Damped Newton: ``updates = -lr (H + damping I)^-1 g`` from the dense eigendecomposition.

    Newton's method solves ``g = 0`` and does not care which kind of critical point it
    finds: on a quadratic saddle with ``lr = 1`` it jumps onto the saddle in one step.
    ``H + damping I`` must be non-singular.

    Args:
      learning_rate: step size (a number ``>= 0`` or a traced scalar).
      damping: Levenberg-Marquardt shift (``>= 0``).

    Returns:
      ``optax.GradientTransformationExtraArgs`` with :class:`NewtonState`; ``update``
      needs ``params`` and ``value_fn``.
    """
    where = "damped_newton"
    learning_rate = _hyper(where, "learning_rate", learning_rate)
    damping = _hyper(where, "damping", damping)
    return _newton(where, learning_rate, damping, lambda lam, d: 1 / (lam + d), "dense", None)


def perturbed_gd(learning_rate, key, radius: float = 0.1, grad_threshold: float = 1e-3,
                 wait_steps: int = 10) -> optax.GradientTransformationExtraArgs:
    """Perturbed gradient descent (Jin et al. 2017, Algorithm 2).

    ``updates = -lr g + xi``, where ``xi`` is drawn uniformly from the ball of radius
    ``radius`` (over all parameters together) when ``||g|| <= grad_threshold`` and no
    perturbation happened in the last ``wait_steps`` steps, else ``xi = 0``. Near a strict
    saddle the kick has a component along a negative-curvature direction with
    probability 1, which gradient descent then amplifies; plain GD started on a saddle's
    stable manifold never leaves it. Differences from the paper: the gradient of the
    kicked step is taken before the kick (the optax update sees only ``g`` at the current
    point; the difference is ``O(lr * L * radius)``), and the paper's stopping rule is
    left to the caller.

    Args:
      learning_rate: step size (a number ``>= 0`` or a traced scalar).
      key: a JAX PRNG key, or an int seed (``jax.random.PRNGKey(seed)``); step ``t`` draws
        from ``fold_in(key, t)``, so the same key gives the same run.
      radius: radius of the perturbation ball (``>= 0``).
      grad_threshold: gradient norm at or below which a perturbation may happen (``>= 0``).
      wait_steps: steps without a perturbation before the next one (int ``>= 0``).

    Returns:
      ``optax.GradientTransformationExtraArgs`` with :class:`PerturbedGDState` (extra
      arguments, such as ``value_fn``, are accepted and ignored).
    """
    where = "perturbed_gd"
    learning_rate = _hyper(where, "learning_rate", learning_rate)
    radius = _hyper(where, "radius", radius)
    grad_threshold = _hyper(where, "grad_threshold", grad_threshold)
    wait_steps = validate.integer(where, "wait_steps", wait_steps, 0)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        key = jax.random.PRNGKey(key)
    key = keys.require_key(where, key)

    def init(params):
        del params
        zero = jnp.zeros((), jnp.int32)
        return PerturbedGDState(key, zero, zero - wait_steps - 1, zero)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        g, unravel = ravel_pytree(updates)
        n = g.shape[0]
        kick = (jnp.linalg.norm(g) <= grad_threshold) & (state.count - state.last_perturbation > wait_steps)
        k_dir, k_rad = jax.random.split(jax.random.fold_in(state.key, state.count))
        direction = jax.random.normal(k_dir, (n,), g.dtype)
        direction = direction / jnp.maximum(jnp.linalg.norm(direction), jnp.finfo(g.dtype).tiny)
        xi = radius * jax.random.uniform(k_rad, (), g.dtype) ** (1.0 / n) * direction
        step = -learning_rate * g + jnp.where(kick, xi, jnp.zeros_like(xi))
        out = jax.tree_util.tree_map(lambda u, s: s.astype(u.dtype), updates, unravel(step))
        return out, PerturbedGDState(state.key, state.count + 1,
                                     jnp.where(kick, state.count, state.last_perturbation),
                                     state.num_perturbations + kick.astype(jnp.int32))

    return optax.GradientTransformationExtraArgs(init, update)

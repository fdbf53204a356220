"""Saddle points: test surfaces, critical-point search, the Hessian index, saddle-escaping optimizers.

* :mod:`.surfaces`: toy functions with hand-written gradients and Hessians and their
  known critical points (``saddle_2d``, ``monkey_saddle``, ``six_hump_camel``, ...),
  by name through :func:`get_surface`.
* :func:`find_critical_points`: Newton-MR (Roosta et al. 2018; Frye et al. 2021) or
  gradient-norm minimisation (Pennington & Bahri 2017) from many starts in one compiled
  program; flags critical and gradient-flat points (a gradient-flat point is never
  called a saddle).
* :func:`index`: the fraction of negative Hessian eigenvalues (dense, Lanczos, SLQ).
* :func:`saddle_free_newton`, :func:`damped_newton`, :func:`perturbed_gd`: optax
  transformations (Dauphin et al. 2014; Jin et al. 2017).

Like :mod:`lossatlas.curvature`, the analysis functions take ``loss_fn(params)`` or
``loss_fn(params, batch)`` plus ``data`` and ``chunk_size``, and params pytrees; they
jit and vmap.
"""
from .critical import METHODS, CriticalPoints, find_critical_points
from .hessian_index import INDEX_METHODS, HessianIndex, index, negative_spectral_mass
from .optimizers import (NEWTON_METHODS, NewtonState, PerturbedGDState, damped_newton, perturbed_gd,
                         saddle_free_newton)
from .surfaces import (SURFACES, Surface, get_surface, ill_conditioned_quadratic, monkey_saddle, rosenbrock,
                       saddle_2d, scaled_saddle, six_hump_camel, strict_saddle)

__all__ = [
    "CriticalPoints", "HessianIndex", "INDEX_METHODS", "METHODS", "NEWTON_METHODS", "NewtonState",
    "PerturbedGDState", "SURFACES", "Surface", "damped_newton", "find_critical_points", "get_surface",
    "ill_conditioned_quadratic", "index", "monkey_saddle", "negative_spectral_mass", "perturbed_gd",
    "rosenbrock", "saddle_2d", "saddle_free_newton", "scaled_saddle", "six_hump_camel", "strict_saddle",
]

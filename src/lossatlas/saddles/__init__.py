"""Saddle points: test surfaces and the Hessian index.

* :mod:`.surfaces`: toy functions with hand-written gradients and Hessians and their
  known critical points (``saddle_2d``, ``monkey_saddle``, ``six_hump_camel``, ...),
  by name through :func:`get_surface`.
* :func:`index`: the fraction of negative Hessian eigenvalues (dense, Lanczos, SLQ).

Like :mod:`lossatlas.curvature`, the analysis functions take ``loss_fn(params)`` or
``loss_fn(params, batch)`` plus ``data`` and ``chunk_size``, and params pytrees; they
jit and vmap.
"""
from .hessian_index import INDEX_METHODS, HessianIndex, index, negative_spectral_mass
from .surfaces import (SURFACES, Surface, get_surface, ill_conditioned_quadratic, monkey_saddle, rosenbrock,
                       saddle_2d, scaled_saddle, six_hump_camel, strict_saddle)

__all__ = [
    "HessianIndex", "INDEX_METHODS", "SURFACES", "Surface", "get_surface", "ill_conditioned_quadratic", "index",
    "monkey_saddle", "negative_spectral_mass", "rosenbrock", "saddle_2d", "scaled_saddle", "six_hump_camel",
    "strict_saddle",
]

"""Saddle points: test surfaces with known critical points.

* :mod:`.surfaces`: toy functions with hand-written gradients and Hessians and their
  known critical points (``saddle_2d``, ``monkey_saddle``, ``six_hump_camel``, ...),
  by name through :func:`get_surface`.
"""
from .surfaces import (SURFACES, Surface, get_surface, ill_conditioned_quadratic, monkey_saddle, rosenbrock,
                       saddle_2d, scaled_saddle, six_hump_camel, strict_saddle)

__all__ = [
    "SURFACES", "Surface", "get_surface", "ill_conditioned_quadratic", "monkey_saddle", "rosenbrock",
    "saddle_2d", "scaled_saddle", "six_hump_camel", "strict_saddle",
]

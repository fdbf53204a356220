"""Test surfaces with known critical points and hand-written derivatives.

Each :class:`Surface` carries ``loss``, ``grad`` and ``hessian`` written out
analytically (no autodiff), so a test can hold them against ``jax.grad`` /
``jax.hessian``, and its critical points with their Hessian index (the number of
negative Hessian eigenvalues). The functions take points ``x [..., dim]``: one point
``[dim]``, or any leading batch axes (a grid for a contour plot, starts for a
critical-point search); they follow the dtype of ``x`` (float32 in, float32 out).

Surfaces are plain values; build one by name with :func:`get_surface`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax.numpy as jnp
import numpy as np

from lossatlas import validate

__all__ = ["SURFACES", "Surface", "get_surface", "ill_conditioned_quadratic", "monkey_saddle", "rosenbrock",
           "saddle_2d", "scaled_saddle", "six_hump_camel", "strict_saddle"]


@dataclasses.dataclass(frozen=True, eq=False)
class Surface:
    """A test function with analytic derivatives and its known critical points.

    Attributes:
      name: registry name.
      dim: input dimension.
      loss: ``x [..., dim] -> [...]``.
      grad: ``x [..., dim] -> [..., dim]`` (analytic).
      hessian: ``x [..., dim] -> [..., dim, dim]`` (analytic).
      critical_points: ``[K, dim]`` float64 numpy array.
      indices: ``[K]`` int numpy array, the number of negative Hessian eigenvalues at each.
      kinds: ``K`` strings: ``"minimum"``, ``"saddle"``, ``"maximum"``, or
        ``"degenerate"`` (a zero Hessian eigenvalue: the index alone does not classify it).
    """

    name: str
    dim: int
    loss: Callable
    grad: Callable
    hessian: Callable
    critical_points: np.ndarray
    indices: np.ndarray
    kinds: tuple


def _kind(eigenvalues) -> str:
    ev = np.asarray(eigenvalues)
    if np.any(ev == 0):
        return "degenerate"
    return "minimum" if np.all(ev > 0) else "maximum" if np.all(ev < 0) else "saddle"


def _surface(name, dim, loss, grad, hessian, points, eigenvalues=None, indices=None, kinds=None) -> Surface:
    """A :class:`Surface` whose critical points' indices and kinds come from their Hessian
    ``eigenvalues [K, dim]`` or are given. Plain numpy: building a surface runs no JAX
    computation (experiments build them at import, before the backend is configured)."""
    points = np.asarray(points, np.float64).reshape(-1, dim)
    if eigenvalues is not None:
        eigenvalues = np.asarray(eigenvalues, np.float64).reshape(-1, dim)
        indices = np.sum(eigenvalues < 0, axis=-1)
        kinds = tuple(_kind(ev) for ev in eigenvalues) if kinds is None else kinds
    return Surface(name, dim, loss, grad, hessian, points, np.asarray(indices, np.int64), tuple(kinds))


def _xy(x):
    return x[..., 0], x[..., 1]


def _mat2(a, b, c):
    """``[[a, b], [b, c]]`` over broadcast leading axes."""
    a, b, c = jnp.broadcast_arrays(a, b, c)
    return jnp.stack([jnp.stack([a, b], -1), jnp.stack([b, c], -1)], -2)


def _diagonal_quadratic(name: str, eigenvalues, kinds=None) -> Surface:
    """``f(x) = sum_i lam_i x_i^2 / 2``: Hessian ``diag(lam)``, critical point 0."""
    lam = np.asarray(eigenvalues, np.float64)
    n = lam.shape[0]

    def coef(x):  # [1, ..., 1, n]: explicit broadcasting against x [..., n]
        return jnp.asarray(lam, x.dtype).reshape((1,) * (x.ndim - 1) + (n,))

    def loss(x):
        return 0.5 * jnp.sum(coef(x) * jnp.square(x), axis=-1)

    def grad(x):
        return coef(x) * x

    def hessian(x):
        return jnp.broadcast_to(jnp.diag(jnp.asarray(lam, x.dtype)), x.shape[:-1] + (n, n))

    return _surface(name, n, loss, grad, hessian, np.zeros((1, n)), lam[None], kinds)


def saddle_2d() -> Surface:
    """``f(x, y) = x^2 - y^2``: one saddle of index 1 at the origin."""
    return scaled_saddle(1.0, name="saddle_2d")


def scaled_saddle(a: float = 1.0, *, name: str = "scaled_saddle") -> Surface:
    """``f(x, y) = a x^2 - y^2`` (``a > 0``): a saddle of index 1 at the origin whose
    Hessian ``diag(2a, -2)`` has condition number ``max(a, 1/a)``.

    Args:
      a: curvature along ``x`` (``> 0``).

    Returns:
      The :class:`Surface`.
    """
    a = validate.number("scaled_saddle", "a", a, lo=0, lo_open=True)

    def loss(x):
        u, v = _xy(x)
        return a * u ** 2 - v ** 2

    def grad(x):
        u, v = _xy(x)
        return jnp.stack([2 * a * u, -2 * v], -1)

    def hessian(x):
        u, _ = _xy(x)
        return _mat2(jnp.full_like(u, 2 * a), jnp.zeros_like(u), jnp.full_like(u, -2.0))

    return _surface(name, 2, loss, grad, hessian, [[0.0, 0.0]], [[-2.0, 2 * a]])


def monkey_saddle() -> Surface:
    """``f(x, y) = x^3 - 3 x y^2``: a degenerate saddle at the origin (zero Hessian, so its
    Hessian index is 0, yet every neighbourhood holds lower points: three descending valleys).
    """
    def loss(x):
        u, v = _xy(x)
        return u ** 3 - 3 * u * v ** 2

    def grad(x):
        u, v = _xy(x)
        return jnp.stack([3 * u ** 2 - 3 * v ** 2, -6 * u * v], -1)

    def hessian(x):
        u, v = _xy(x)
        return _mat2(6 * u, -6 * v, -6 * u)

    return _surface("monkey_saddle", 2, loss, grad, hessian, [[0.0, 0.0]], [[0.0, 0.0]])


def strict_saddle(n: int = 10, lambda_min: float = 0.1, kappa: float = 10.0) -> Surface:
    """An ``n``-D strict saddle: ``f(x) = x^T diag(lam) x / 2`` with ``lam = (-lambda_min,
    linspace(1, kappa, n - 1))``: one small negative eigenvalue (the escape direction,
    ``x_0``), the rest positive with condition number ``kappa``. Saddle of index 1 at 0.

    Args:
      n: dimension (``>= 2``).
      lambda_min: magnitude of the negative eigenvalue (``> 0``).
      kappa: largest positive eigenvalue (``>= 1``; the smallest is 1).

    Returns:
      The :class:`Surface`.
    """
    n = validate.integer("strict_saddle", "n", n, 2)
    lambda_min = validate.number("strict_saddle", "lambda_min", lambda_min, lo=0, lo_open=True)
    kappa = validate.number("strict_saddle", "kappa", kappa, lo=1)
    return _diagonal_quadratic("strict_saddle", np.concatenate([[-lambda_min], np.linspace(1.0, kappa, n - 1)]))


def ill_conditioned_quadratic(eigenvalues=(1.0, 100.0)) -> Surface:
    """``f(x) = x^T diag(eigenvalues) x / 2``: one critical point, the origin, of index
    ``#{eigenvalues < 0}``; a minimum with condition number ``max/min`` when all are positive.
    With a zero eigenvalue every point of the null space is critical (only the origin is
    listed, kind ``"degenerate"``).

    Args:
      eigenvalues: 1-D sequence of finite numbers (the Hessian's diagonal).

    Returns:
      The :class:`Surface`.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64) if np.ndim(eigenvalues) == 1 else None
    if lam is None or lam.size == 0 or not np.all(np.isfinite(lam)):
        validate.fail("ill_conditioned_quadratic", "eigenvalues", eigenvalues,
                      "a non-empty 1-D sequence of finite numbers")
    return _diagonal_quadratic("ill_conditioned_quadratic", lam)


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """Rosenbrock's valley ``f(x, y) = (a - x)^2 + b (y - x^2)^2`` (Rosenbrock 1960): one
    critical point, the minimum ``(a, a^2)``, at the end of a curved flat-bottomed valley.

    Args:
      a: position of the minimum (any finite number).
      b: valley steepness (``> 0``).

    Returns:
      The :class:`Surface`.
    """
    a = validate.number("rosenbrock", "a", a)
    b = validate.number("rosenbrock", "b", b, lo=0, lo_open=True)

    def loss(x):
        u, v = _xy(x)
        return (a - u) ** 2 + b * (v - u ** 2) ** 2

    def grad(x):
        u, v = _xy(x)
        return jnp.stack([-2 * (a - u) - 4 * b * u * (v - u ** 2), 2 * b * (v - u ** 2)], -1)

    def hessian(x):
        u, v = _xy(x)
        return _mat2(2 - 4 * b * v + 12 * b * u ** 2, -4 * b * u, jnp.full_like(u, 2 * b))

    # Hessian at (a, a^2): [[2 + 8 b a^2, -4 a b], [-4 a b, 2 b]], determinant 4 b > 0, trace > 0
    return _surface("rosenbrock", 2, loss, grad, hessian, [[a, a * a]], indices=[0], kinds=["minimum"])


# The 15 critical points of the six-hump camel, computed once in float64: with
# y = -(8x - 8.4x^3 + 2x^5) from df/dx = 0, df/dy = 0 becomes a degree-15 polynomial in x
# whose 15 roots are all real (numpy.polynomial.polynomial.polyroots); each point was then
# polished by Newton's method to |grad| < 1e-14. f(-p) = f(p), so the list is the origin and
# seven points with x > 0 and their mirror images. tests/test_saddles.py checks grad = 0 and
# the indices.
_CAMEL_HALF = np.array([
    [0.08984201310031807, -0.7126564030207396],   # global minimum, f = -1.0316284534898774
    [1.7036067149699805, -0.7960835686726251],    # minimum, f = -0.2154638243837
    [1.6071047529201976, 0.5686514548841313],     # minimum, f = 2.1042503103113
    [1.1092053368047863, -0.7682680925095399],    # saddle
    [1.2960702671671092, 0.6050843880386585],     # saddle
    [1.6380679841897785, 0.22867406904439408],    # saddle
    [1.2302298765166524, 0.16233458445899493],    # maximum
])
_CAMEL_HALF_INDICES = (0, 0, 0, 1, 1, 1, 2)


def six_hump_camel() -> Surface:
    """The six-hump camel ``f(x, y) = (4 - 2.1 x^2 + x^4/3) x^2 + x y + (4 y^2 - 4) y^2``
    (Dixon & Szego 1978): 15 critical points, 6 minima (the two global ones at
    ``+-(0.0898, -0.7127)``, ``f = -1.0316``), 7 saddles of index 1 (one at the origin)
    and 2 maxima. The points are numerical (float64, see the note above ``_CAMEL_HALF``).
    """
    def loss(x):
        u, v = _xy(x)
        return (4 - 2.1 * u ** 2 + u ** 4 / 3) * u ** 2 + u * v + (4 * v ** 2 - 4) * v ** 2

    def grad(x):
        u, v = _xy(x)
        return jnp.stack([8 * u - 8.4 * u ** 3 + 2 * u ** 5 + v, u - 8 * v + 16 * v ** 3], -1)

    def hessian(x):
        u, v = _xy(x)
        return _mat2(8 - 25.2 * u ** 2 + 10 * u ** 4, jnp.ones_like(u), -8 + 48 * v ** 2)

    points = np.concatenate([np.zeros((1, 2)), _CAMEL_HALF, -_CAMEL_HALF])
    indices = (1,) + _CAMEL_HALF_INDICES * 2
    kinds = [("minimum", "saddle", "maximum")[i] for i in indices]
    return _surface("six_hump_camel", 2, loss, grad, hessian, points, indices=indices, kinds=kinds)


#: name -> constructor; every constructor has defaults, so ``get_surface(name)`` always works.
SURFACES = {
    "saddle_2d": saddle_2d, "scaled_saddle": scaled_saddle, "monkey_saddle": monkey_saddle,
    "strict_saddle": strict_saddle, "six_hump_camel": six_hump_camel, "rosenbrock": rosenbrock,
    "ill_conditioned_quadratic": ill_conditioned_quadratic,
}


def get_surface(name: str, **kwargs) -> Surface:
    """The surface ``name`` built with ``kwargs`` (e.g. ``get_surface("rosenbrock", b=10)``).

    Raises:
      ValueError: unknown name (the message lists the known ones) or a bad parameter.
    """
    validate.one_of("get_surface", "name", name, SURFACES)
    return SURFACES[name](**kwargs)

"""Closed forms of saddle_escape (see its docstring): escape steps of GD, saddle-free Newton, heavy
ball and Nesterov on a quadratic saddle's negative-curvature coordinate, and the distribution-free
confidence interval of a median.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["gd_escape_steps", "median_ci", "momentum_escape_steps", "momentum_roots", "sfn_escape_steps"]


def gd_escape_steps(y0, eta, h, radius):
    """First t with |y0| (1 + eta h)^t > R: floor(ln(R/|y0|) / ln(1 + eta h)) + 1 (inf for y0 = 0)."""
    y0 = np.abs(np.asarray(y0, float))
    with np.errstate(divide="ignore"):
        return np.floor(np.log(radius / y0) / np.log1p(eta * h)) + 1


def sfn_escape_steps(y0, lr, h, damping, radius):
    """Saddle-free Newton on y: factor 1 + lr h/(h + d) per step; first t past R."""
    return gd_escape_steps(y0, 1.0, lr * h / (h + damping), radius)


def momentum_roots(eta, h, beta, nesterov: bool = False):
    """The two roots (r1 > r2) of the y-recurrence's characteristic polynomial (see the docstring)."""
    b, c = ((1 + beta) * (1 + eta * h), beta * (1 + eta * h)) if nesterov else (1 + beta + eta * h, beta)
    d = math.sqrt(b * b - 4 * c)
    return (b + d) / 2, (b - d) / 2


def momentum_escape_steps(y0, eta, h, beta, radius, steps: int, nesterov: bool = False):
    """First t <= steps with |y_t| > R for heavy ball / Nesterov from (y0, v0 = 0), by the closed
    form y_t = y0 (A r1^t + B r2^t); inf where it is not reached within ``steps``."""
    r1, r2 = momentum_roots(eta, h, beta, nesterov)
    y1 = 1 + (1 + beta) * eta * h if nesterov else 1 + eta * h
    a, b = (y1 - r2) / (r1 - r2), (r1 - y1) / (r1 - r2)
    t = np.arange(steps + 1, dtype=float)
    growth = np.abs(a * r1 ** t + b * r2 ** t)                        # |y_t / y0|
    above = np.abs(np.asarray(y0, float))[..., None] * growth > radius
    return np.where(above.any(-1), np.argmax(above, -1), np.inf)


def median_ci(x, confidence: float = 0.95):
    """(median, lo, hi): the distribution-free order-statistic interval of the median (binomial)."""
    x = np.sort(np.asarray(x, float))
    n = len(x)
    lo = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))
    hi = min(int(stats.binom.isf((1 - confidence) / 2, n, 0.5)), n - 1)
    return float(np.median(x)), float(x[max(lo - 1, 0)]), float(x[hi])

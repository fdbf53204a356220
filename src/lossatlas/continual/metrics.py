"""Continual-learning metrics from the accuracy matrix.

``R[i, j]`` is the test accuracy on task ``j`` after training tasks ``0..i`` (``T x T``);
``b[j]`` the accuracy on task ``j`` at initialisation. Every function takes arrays with any
leading axes (``[..., T, T]`` and ``[..., T]``, e.g. ``[lambdas, seeds, T, T]``) and returns
one value per leading index.

* average accuracy ``ACC = 1/T sum_j R[T-1, j]`` (Lopez-Paz & Ranzato 2017)
* backward transfer ``BWT = 1/(T-1) sum_{j<T-1} R[T-1, j] - R[j, j]`` (ibid.; negative =
  forgetting)
* forward transfer ``FWT = 1/(T-1) sum_{j>0} R[j-1, j] - b[j]`` (ibid.)
* forgetting ``F = 1/(T-1) sum_{j<T-1} max_{l<T-1} R[l, j] - R[T-1, j]`` (Chaudhry et al.
  2018, their literal definition: the max runs over every earlier row, as in Mammoth)
* intransigence ``I = 1/T sum_j a*_j - R[j, j]``, with ``a*`` the accuracy of a reference
  model (Chaudhry et al. use joint training on all data seen so far) (Chaudhry et al. 2018)
* learning accuracy ``LA = 1/T sum_j R[j, j]`` (Riemer et al. 2019)

:func:`mean_ci` gives the mean over seeds and a Student-t confidence half-width.

Diverged runs: ``run_stream`` freezes a member whose loss, gradient or parameters became
NaN/Inf and makes its later rows of ``R`` NaN, so every metric of that member is NaN rather
than a chance-level accuracy. :func:`summarize` flags it (``diverged``) and :func:`mean_ci`
averages over the surviving members only (it skips NaN entries and reports how many it used).
"""
from __future__ import annotations

import numpy as np


def _r(r, fn: str, min_tasks: int = 1) -> np.ndarray:
    r = np.asarray(r, np.float64)
    if r.ndim < 2 or r.shape[-1] != r.shape[-2]:
        raise ValueError(f"{fn}: R must be [..., T, T], got shape {r.shape}")
    if r.shape[-1] < min_tasks:
        raise ValueError(f"{fn}: needs at least {min_tasks} tasks, R has {r.shape[-1]}")
    return r


def _diag(r):
    return np.diagonal(r, axis1=-2, axis2=-1)


def average_accuracy(r) -> np.ndarray:
    """Mean accuracy over all tasks after the last task: ``mean_j R[T-1, j]``."""
    r = _r(r, "average_accuracy")
    return r[..., -1, :].mean(-1)


def learning_accuracy(r) -> np.ndarray:
    """Mean accuracy on each task right after learning it: ``mean_j R[j, j]``."""
    return _diag(_r(r, "learning_accuracy")).mean(-1)


def backward_transfer(r) -> np.ndarray:
    """``mean_{j<T-1} R[T-1, j] - R[j, j]`` (Lopez-Paz & Ranzato 2017); needs T >= 2."""
    r = _r(r, "backward_transfer", 2)
    return (r[..., -1, :-1] - _diag(r)[..., :-1]).mean(-1)


def forward_transfer(r, init_acc) -> np.ndarray:
    """``mean_{j>0} R[j-1, j] - b[j]`` with ``b`` the accuracy at initialisation; needs T >= 2."""
    r = _r(r, "forward_transfer", 2)
    b = np.asarray(init_acc, np.float64)
    if b.shape != r.shape[:-1]:
        raise ValueError(f"forward_transfer: init_acc must be [..., T] = {r.shape[:-1]}, got {b.shape}")
    t = r.shape[-1]
    before = r[..., np.arange(t - 1), np.arange(1, t)]  # R[j-1, j]
    return (before - b[..., 1:]).mean(-1)


def forgetting_per_task(r) -> np.ndarray:
    """``max_{l<T-1} R[l, j] - R[T-1, j]`` for every ``j < T-1``: ``[..., T-1]``; needs T >= 2."""
    r = _r(r, "forgetting", 2)
    return r[..., :-1, :-1].max(-2) - r[..., -1, :-1]


def forgetting(r) -> np.ndarray:
    """Average forgetting (Chaudhry et al. 2018), the mean of :func:`forgetting_per_task`."""
    return forgetting_per_task(r).mean(-1)


def intransigence(r, reference) -> np.ndarray:
    """``mean_j a*_j - R[j, j]`` (Chaudhry et al. 2018).

    Args:
      r: ``[..., T, T]``.
      reference: the reference accuracy ``a*`` per task, ``[T]`` or ``[..., T]`` broadcasting
        against ``r``'s leading axes (e.g. the diagonal of joint training's R, or its mean
        over seeds), or a scalar.
    """
    r = _r(r, "intransigence")
    ref = np.asarray(reference, np.float64)
    d = _diag(r)
    if ref.ndim and ref.shape[-1] != d.shape[-1]:
        raise ValueError(f"intransigence: reference must have T={d.shape[-1]} entries on its last axis, "
                         f"got shape {ref.shape}")
    return (np.broadcast_to(ref, d.shape) - d).mean(-1)


def summarize(r, init_acc=None, reference=None, diverged_at=None) -> dict[str, np.ndarray]:
    """Every metric that the inputs allow, as ``{name: [...]}`` over the leading axes.

    Args:
      r: ``[..., T, T]`` accuracy matrices (NaN rows: the run had diverged by then).
      init_acc: ``[..., T]`` accuracy at initialisation (for ``fwt``).
      reference: ``a*`` for ``intransigence`` (see :func:`intransigence`).
      diverged_at: optional ``[...]`` step of divergence from ``run_stream`` (-1: never); a
        member with any NaN in ``r`` counts as diverged either way.

    Returns:
      Keys ``acc``, ``learning_acc`` always; ``bwt``, ``forgetting`` when T >= 2; ``fwt`` when
      ``init_acc`` is given and T >= 2; ``intransigence`` when ``reference`` is given; and
      ``diverged`` (bool ``[...]``). Every metric of a diverged member is NaN (not a
      chance-level accuracy), so :func:`mean_ci` averages over the surviving members;
      ``diverged.sum(-1)`` counts the excluded seeds.
    """
    r = _r(r, "summarize")
    diverged = np.isnan(r).any((-2, -1))
    if diverged_at is not None:
        d = np.asarray(diverged_at)
        if d.shape != r.shape[:-2]:
            raise ValueError(f"summarize: diverged_at must be [...] = {r.shape[:-2]}, got {d.shape}")
        diverged = diverged | (d >= 0)
        r = np.where(diverged[..., None, None], np.nan, r)
    out = {"acc": average_accuracy(r), "learning_acc": learning_accuracy(r)}
    if r.shape[-1] >= 2:
        out["bwt"] = backward_transfer(r)
        out["forgetting"] = forgetting(r)
        if init_acc is not None:
            out["fwt"] = forward_transfer(r, init_acc)
    if reference is not None:
        out["intransigence"] = intransigence(r, reference)
    out = {k: np.where(diverged, np.nan, v) for k, v in out.items()}
    out["diverged"] = diverged
    return out


def mean_ci(values, axis: int = -1, level: float = 0.95, *, return_count: bool = False):
    """Mean and confidence-interval half-width (Student t, ``n - 1`` dof) along ``axis``.

    NaN entries (diverged runs, see :func:`summarize`) are left out: ``n`` counts the finite
    seeds of each entry, and an entry with none is NaN.

    Args:
      values: array with the seed axis at ``axis``.
      axis: the seed axis.
      level: confidence level in (0, 1).
      return_count: also return ``n``, the number of seeds used per entry.

    Returns:
      ``(mean, half_width)`` (plus ``n`` with ``return_count``); the half-width is 0 for a
      single seed (no spread to estimate; it is not an interval).
    """
    if not (isinstance(level, float) and 0 < level < 1):
        raise ValueError(f"mean_ci: level must be a float in (0, 1), got {level!r}")
    v = np.asarray(values, np.float64)
    ok = ~np.isnan(v)
    n = ok.sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, v, 0.0).sum(axis) / n
        dev = np.where(ok, v - np.expand_dims(mean, axis), 0.0)
        std = np.sqrt((dev ** 2).sum(axis) / (n - 1))
    half = np.zeros_like(mean)
    if (n >= 2).any():
        from scipy import stats

        dof = np.maximum(n - 1, 1)
        half = np.where(n >= 2, stats.t.ppf(0.5 + level / 2, dof) * std / np.sqrt(np.maximum(n, 1)), half)
    half = np.where(n == 0, np.nan, half)
    mean, half, n = (np.asarray(x)[()] for x in (mean, half, n))  # 0-d results as numpy scalars
    return (mean, half, n) if return_count else (mean, half)


__all__ = ["average_accuracy", "backward_transfer", "forgetting", "forgetting_per_task", "forward_transfer",
           "intransigence", "learning_accuracy", "mean_ci", "summarize"]

"""learning_curve's curve analysis: power-law and exponential fits, AIC, per-step improvement,
token-mass terciles and half-times (pure numpy/scipy functions of a loss curve)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit


def power_law(t, a, b, c):
    return a * np.power(t, -b) + c


def log_bins(loss: np.ndarray, skip: int, num: int = 40):
    """Mean step and mean loss in ~``num`` log-spaced bins of steps t > skip (t = 1, 2, ...)."""
    T = loss.shape[0]
    edges = np.unique(np.round(np.geomspace(skip + 1, T + 1, num + 1)).astype(int))
    t = np.arange(1, T + 1, dtype=float)
    tb = np.asarray([t[lo - 1:hi - 1].mean() for lo, hi in zip(edges[:-1], edges[1:])])
    yb = np.asarray([np.nanmean(loss[lo - 1:hi - 1]) for lo, hi in zip(edges[:-1], edges[1:])])
    return tb, yb


def fit_power_law(loss: np.ndarray, skip: int = 5, num_bins: int = 40) -> dict:
    """Fit L(t) = a t^-b + c (a, b, c >= 0) to a per-step loss (t = 1, 2, ...).

    The per-step loss (steps t > ``skip``) is first averaged in log-spaced bins, so every decade of
    steps weighs the same and minibatch noise does not dominate; R^2 is over those bin means.
    """
    tt, yy = log_bins(loss, skip, num_bins)
    ok = np.isfinite(yy)
    tt, yy = tt[ok], yy[ok]
    c0 = 0.5 * float(yy.min())
    p0 = (max(float(yy[0] - c0), 1e-3) * tt[0] ** 0.5, 0.5, c0)
    try:
        (a, b, c), _ = curve_fit(power_law, tt, yy, p0=p0, bounds=([0.0, 0.0, 0.0], [np.inf, 5.0, np.inf]),
                                 maxfev=20000)
    except RuntimeError:
        return {"a": np.nan, "b": np.nan, "c": np.nan, "r2": np.nan, "t_bins": tt, "loss_bins": yy}
    pred = power_law(tt, a, b, c)
    r2 = 1.0 - np.sum((yy - pred) ** 2) / np.sum((yy - yy.mean()) ** 2)
    return {"a": float(a), "b": float(b), "c": float(c), "r2": float(r2), "t_bins": tt, "loss_bins": yy}


def exponential(t, a, tau, c):
    return a * np.exp(-t / tau) + c


def fit_exponential(t_bins: np.ndarray, loss_bins: np.ndarray) -> dict:
    """Fit L(t) = a exp(-t / tau) + c (a, c >= 0) to binned losses; the best of several starting tau."""
    tt, yy = np.asarray(t_bins, float), np.asarray(loss_bins, float)
    best = {"a": np.nan, "tau": np.nan, "c": np.nan, "rss": np.inf}
    for tau0 in np.geomspace(max(tt[0], 1.0), tt[-1], 8):
        c0 = float(yy.min()) * 0.9
        p0 = (max(float(yy[0] - c0), 1e-3) * np.exp(tt[0] / tau0), tau0, c0)
        try:
            (a, tau, c), _ = curve_fit(exponential, tt, yy, p0=p0, bounds=([0.0, 1e-3, 0.0], [np.inf, 1e3 * tt[-1], np.inf]),
                                       maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        rss = float(np.sum((yy - exponential(tt, a, tau, c)) ** 2))
        if rss < best["rss"]:
            best = {"a": float(a), "tau": float(tau), "c": float(c), "rss": rss}
    return best


def aic(rss: float, n: int, k: int = 3) -> float:
    """Akaike's information criterion of a least-squares fit with Gaussian residuals: n log(RSS / n) + 2k."""
    return float(n * np.log(rss / n) + 2 * k)


def compare_power_exponential(fit: dict) -> dict:
    """AIC of the power law and of an exponential fitted to the same binned curve; delta = AIC_exp - AIC_pow."""
    tt, yy = fit["t_bins"], fit["loss_bins"]
    n = len(tt)
    rss_pow = float(np.sum((yy - power_law(tt, fit["a"], fit["b"], fit["c"])) ** 2))
    ex = fit_exponential(tt, yy)
    a_pow, a_exp = aic(rss_pow, n), aic(ex["rss"], n)
    return {"aic_pow": a_pow, "aic_exp": a_exp, "delta_aic": a_exp - a_pow, "exp": ex, "n_bins": n}


def _slope(t, y):
    return float(np.polyfit(t, y, 1)[0])


def improvement(loss: np.ndarray, windows: int) -> dict:
    """-dL/dt as least-squares slopes: in each quarter, and in log-spaced windows."""
    T = loss.shape[0]
    t = np.arange(1, T + 1, dtype=float)
    q = T // 4
    quarters = np.asarray([-_slope(t[i * q:(i + 1) * q], loss[i * q:(i + 1) * q]) for i in range(4)])
    edges = np.unique(np.round(np.geomspace(1, T + 1, windows + 1)).astype(int))
    mids, rates = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi - lo >= 3:  # enough points for a slope
            mids.append(np.sqrt(lo * (hi - 1)))
            rates.append(-_slope(t[lo - 1:hi - 1], loss[lo - 1:hi - 1]))
    return {"quarters": quarters, "window_t": np.asarray(mids), "window_rate": np.asarray(rates),
            "ratio_last_first": float(quarters[-1] / quarters[0])}


def mass_terciles(counts: np.ndarray) -> np.ndarray:
    """Group id per type (0 frequent, 1 middle, 2 rare, -1 unseen) by cumulative token mass.

    Types are sorted by count; a type is "frequent" if the mass of the types before it is
    < 1/3 of all tokens, "rare" if that mass is >= 2/3, "middle" otherwise.
    """
    counts = np.asarray(counts, float)
    group = np.full(counts.shape, -1, int)
    seen = np.nonzero(counts > 0)[0]
    order = seen[np.argsort(-counts[seen], kind="stable")]
    before = np.concatenate([[0.0], np.cumsum(counts[order])[:-1]]) / counts.sum()
    group[order] = np.where(before < 1 / 3, 0, np.where(before < 2 / 3, 1, 2))
    if not np.any(group == 2) and order.size >= 3:  # a tiny vocabulary: the last type is the rare tail
        group[order[-1]] = 2
    return group


def half_time(steps: np.ndarray, curve: np.ndarray) -> float:
    """First step (linear interpolation) at which ``curve`` has covered half of its initial-to-final drop."""
    start, end = curve[0], curve[-1]
    if not end < start:
        return float("nan")
    target = start - 0.5 * (start - end)
    below = np.nonzero(curve <= target)[0]
    i = int(below[0])
    if i == 0:
        return float(steps[0])
    t0, t1, y0, y1 = steps[i - 1], steps[i], curve[i - 1], curve[i]
    return float(t0 + (y0 - target) / (y0 - y1) * (t1 - t0))

"""Statistics, table and checks of critical_points_index: Spearman rho with a bootstrap CI, the
lowest-loss decile, and Pennington & Bahri's alpha = a (eps - eps_c)^b fits (b = 3/2 and free).

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from . import kit

EC_GRID = 160            # eps_c values tried by the grid fit
B_GRID = np.round(np.arange(0.25, 4.0001, 0.025), 3)   # exponents tried by the free fit
FIT_BOOTSTRAP = 200      # resamples for the free exponent's CI


def _ec_grid(eps):
    lo, hi = float(eps.min()), float(np.quantile(eps, 0.9))
    span = max(hi - lo, 1e-12)
    return np.linspace(lo - 0.5 * span, hi, EC_GRID)


def fit_power(eps, alpha, exponents=(1.5,)):
    """Least squares of ``alpha = a max(eps - eps_c, 0)^b`` over (a, eps_c) for each ``b`` in
    ``exponents`` (a grid search over eps_c with a in closed form; a >= 0), best b kept.

    Returns:
      ``(a, eps_c, b, sse)``.
    """
    eps, alpha = np.asarray(eps, float), np.asarray(alpha, float)
    ecs = _ec_grid(eps)
    best = (np.nan, np.nan, np.nan, np.inf)
    for b in exponents:
        z = np.maximum(eps[None, :] - ecs[:, None], 0.0) ** b                        # [G, n]
        zz, zy = np.sum(z * z, 1), z @ alpha
        a = np.where(zz > 0, np.maximum(zy, 0) / np.where(zz > 0, zz, 1), 0.0)
        sse = np.sum(np.square(alpha[None, :] - a[:, None] * z), 1)
        i = int(np.argmin(sse))
        if sse[i] < best[3]:
            best = (float(a[i]), float(ecs[i]), float(b), float(sse[i]))
    return best


def spearman(eps, alpha) -> float:
    r = stats.spearmanr(eps, alpha).statistic
    return float(r) if np.isfinite(r) else float("nan")


def analyse(res: dict, cfg, rng) -> dict:
    """Arrays added to the results: index-vs-loss statistics over the critical points."""
    crit = res["is_critical"].astype(bool)
    eps, alpha = res["loss"][crit], res["index"][crit]
    n = int(crit.sum())
    out = {"num_critical": np.asarray(n), "num_gradient_flat": np.asarray(int(res["is_gradient_flat"].sum())),
           "num_neither": np.asarray(int((~crit & ~res["is_gradient_flat"].astype(bool)).sum()))}
    nan = np.asarray(np.nan)
    keys = ("rho", "rho_lo", "rho_hi", "decile_median", "decile_n", "fit_a", "fit_ec", "fit_rms", "free_a", "free_ec",
            "free_b", "free_rms", "free_b_lo", "free_b_hi", "alpha_var")
    out.update({k: nan for k in keys})
    if n < 3:
        return out
    from .critical_points_index import CONFIDENCE, DECILE, PB_EXPONENT  # the constants the checks print

    lo_q, hi_q = 100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2
    out["rho"] = np.asarray(spearman(eps, alpha))
    boot = [spearman(eps[i], alpha[i]) for i in rng.integers(0, n, (cfg.bootstrap, n))]
    boot = np.asarray([b for b in boot if np.isfinite(b)])
    if boot.size:
        out["rho_lo"], out["rho_hi"] = (np.asarray(v) for v in np.percentile(boot, [lo_q, hi_q]))
    k = max(1, int(np.ceil(DECILE * n)))
    out["decile_median"] = np.asarray(float(np.median(alpha[np.argsort(eps, kind="stable")[:k]])))
    out["decile_n"] = np.asarray(k)
    a, ec, _, sse = fit_power(eps, alpha, (PB_EXPONENT,))
    out["fit_a"], out["fit_ec"], out["fit_rms"] = np.asarray(a), np.asarray(ec), np.asarray(np.sqrt(sse / n))
    a, ec, b, sse = fit_power(eps, alpha, B_GRID)
    out["free_a"], out["free_ec"], out["free_b"] = np.asarray(a), np.asarray(ec), np.asarray(b)
    out["free_rms"] = np.asarray(np.sqrt(sse / n))
    out["alpha_var"] = np.asarray(float(np.var(alpha)))
    bs = [fit_power(eps[i], alpha[i], B_GRID)[2] for i in rng.integers(0, n, (FIT_BOOTSTRAP, n))]
    bs = np.asarray([b for b in bs if np.isfinite(b)])
    if bs.size:
        out["free_b_lo"], out["free_b_hi"] = (np.asarray(v) for v in np.percentile(bs, [lo_q, hi_q]))
    return out


def table(res: dict, cfg) -> list[dict]:
    """One row per start epoch (0 = random init): categories and the critical points' loss and index."""
    rows = []
    crit, flat = res["is_critical"].astype(bool), res["is_gradient_flat"].astype(bool)
    for e in np.unique(res["start_epoch"]):
        m = res["start_epoch"] == e
        c = m & crit
        med = lambda a: f"{np.median(a[c]):.4g}" if c.any() else "-"  # noqa: E731
        rows.append({"start (Adam epoch)": int(e), "starts": int(m.sum()),
                     "median start loss": f"{np.median(res['start_loss'][m]):.4g}",
                     "critical / gradient-flat / neither": f"{int(c.sum())} / {int((m & flat).sum())} / "
                                                           f"{int((m & ~crit & ~flat).sum())}",
                     "critical: median loss eps": med(res["loss"]), "critical: median index": med(res["index"]),
                     "critical: index range": (f"{res['index'][c].min():.3f}-{res['index'][c].max():.3f}"
                                               if c.any() else "-")})
    return rows


def _f(res, k, fmt=".3g") -> str:
    return format(float(res[k]), fmt)


def checks(res: dict, cfg) -> list[dict]:
    from .critical_points_index import CONFIDENCE, MAX_MIN_INDEX, MIN_POINTS, PB_EXPONENT
    n = int(res["num_critical"])
    enough = n >= MIN_POINTS
    counts = (f"{n} critical / {int(res['num_gradient_flat'])} gradient-flat / {int(res['num_neither'])} neither "
              f"of {res['loss'].size} starts")
    b_in = bool(res["free_b_lo"] <= PB_EXPONENT <= res["free_b_hi"])
    return [
        kit.check("index rises with the loss (Spearman)", enough and float(res["rho_lo"]) > 0, float(res["rho"]),
                  claim="over critical points, the index alpha increases with the training loss eps",
                  paper="Dauphin et al. 2014 Fig. 1; Pennington & Bahri 2017: alpha grows with eps",
                  tolerance=f"rho > 0 and its {CONFIDENCE:.0%} bootstrap CI lower bound > 0, >= {MIN_POINTS} points",
                  detail=f"Spearman rho {_f(res, 'rho')} [{_f(res, 'rho_lo')}, {_f(res, 'rho_hi')}] over {n} "
                         f"critical points ({cfg.bootstrap} bootstrap resamples of points)"),
        kit.check("lowest-loss critical points are minima", enough and float(res["decile_median"]) < MAX_MIN_INDEX,
                  float(res["decile_median"]),
                  claim="the critical points of lowest loss have index ~0",
                  paper="Dauphin et al. 2014 Fig. 1: index ~0 at the lowest error",
                  tolerance=f"median index of the lowest-loss decile < {MAX_MIN_INDEX}",
                  detail=f"lowest {int(res['decile_n'])} of {n} critical points by loss: median index "
                         f"{_f(res, 'decile_median')}"),
        kit.check("alpha ~ (eps - eps_c)^b: free exponent (report-only)", np.isfinite(float(res["free_b"])),
                  float(res["free_b"]), gating=False,
                  claim="Pennington & Bahri's alpha = a (eps - eps_c)^(3/2): fitted exponent b with a bootstrap CI; "
                        "their regime (n -> infinity at fixed n/targets, Wishart + free Wigner Hessian, small alpha) "
                        "does not hold at 70 parameters, so 3/2 is not checked",
                  paper="Pennington & Bahri 2017: b = 3/2 near eps_c",
                  tolerance="report-only",
                  detail=f"b=3/2 fit: a={_f(res, 'fit_a')}, eps_c={_f(res, 'fit_ec', '.4g')}, RMS "
                         f"{_f(res, 'fit_rms')}; free fit: b={_f(res, 'free_b')} [{_f(res, 'free_b_lo')}, "
                         f"{_f(res, 'free_b_hi')}] ({CONFIDENCE:.0%} bootstrap), eps_c={_f(res, 'free_ec', '.4g')}, RMS "
                         f"{_f(res, 'free_rms')}; std(alpha) {np.sqrt(float(res['alpha_var'])):.3g}; 3/2 "
                         f"{'inside' if b_in else 'outside'} the CI"),
        kit.check("search outcome counts (report-only)", n > 0, n, gating=False,
                  claim="Newton-MR outcomes: critical (|g| <= grad_tol), gradient-flat (never saddles), neither",
                  tolerance="report-only", detail=f"{counts}; grad_tol {cfg.grad_tol:g}, flat_tol {cfg.flat_tol:g}"),
    ]

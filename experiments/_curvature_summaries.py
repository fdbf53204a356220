"""Summaries of forgetting_curvature's results: the scatter of runs, overlap statistics, the line's orders."""
from __future__ import annotations

import numpy as np
from scipy import stats


def scatter(res, cfg):
    """Flat arrays over every scatter run: strategy, lambda, fraction, seed and the quantities."""
    rows = {k: [] for k in ("strategy", "lam", "p", "seed", "dL", "q_ggn", "q_diag", "q_hess", "lin", "norm",
                            "logit_rms")}
    for name, lams in (("ewc", cfg.ewc_lams), ("l2", cfg.l2_lams)):
        r = res[name]
        for i, p in enumerate(cfg.scatter_fractions):
            for j, lam in enumerate(lams):
                for s in range(cfg.seeds):
                    strat = "naive" if (name == "ewc" and lam == 0) else name
                    rows["strategy"].append(strat)
                    rows["lam"].append(lam)
                    rows["p"].append(p)
                    rows["seed"].append(s)
                    for k in ("dL", "q_ggn", "q_diag", "q_hess", "lin", "norm", "logit_rms"):
                        rows[k].append(float(r[k][i, j, s]))
    return {k: np.asarray(v) for k, v in rows.items()}


def overlap_stats(res, cfg):
    """Mean over seeds of the EWC-run overlaps ``[P, layers + 1]`` (Frechet and diagonal) and Spearman rho per layer."""
    fre = res["overlap"]["frechet"][:, 1].mean(axis=1)
    dia = res["overlap"]["diagonal"][:, 1].mean(axis=1)
    rho = np.array([stats.spearmanr(cfg.fractions, fre[:, k])[0] for k in range(fre.shape[1])])
    return fre, dia, rho


def model_breakpoint(res, cfg, name, j):
    """Where the second-order model a g.d + a^2/2 d'Fd leaves the measured line (mean over seeds).

    The error at each ``a`` is relative to the size of the model's terms,
    ``|model - measured| / (|a g.d| + a^2/2 d'Fd)`` (the increase itself can cross zero when
    the two terms have opposite signs). Returns the first ``a > 0`` with an error > 25% and
    the errors ``[A]``.
    """
    r = res[name]
    i = len(cfg.scatter_fractions) - 1
    a = res["alphas"]
    line = r["line"][i, j].mean(0)
    model = a * r["lin"][i, j].mean() + a ** 2 * r["q_ggn"][i, j].mean()
    meas = line - line[0]
    scale = np.abs(a * r["lin"][i, j].mean()) + a ** 2 * r["q_ggn"][i, j].mean()
    err = np.abs(model - meas) / np.maximum(scale, 1e-12)
    bad = np.flatnonzero(err[1:] > 0.25)
    return (float(a[1:][bad[0]]) if bad.size else float("nan")), err


PERMUTATIONS = 4000  # stratified permutations (fixed RNG: the p-value is a function of the results)


def within_spearman(sc):
    """Mean Spearman(q_ggn, dL) over strata (strategy family x fraction) and its one-sided permutation p-value.

    The families are naive + EWC (one penalty, lambda from 0) and L2. Under the null (no
    association within any stratum) the measured increases are exchangeable within a
    stratum, so each permutation shuffles dL inside every stratum.
    """
    strata, names = [], []
    for fam, members in (("naive+EWC", ("naive", "ewc")), ("L2", ("l2",))):
        for p in sorted(set(sc["p"])):
            k = np.flatnonzero(np.isin(sc["strategy"], members) & (sc["p"] == p))
            if k.size > 2:
                strata.append(k)
                names.append(f"{fam} p={p:g} ({k.size} runs): {stats.spearmanr(sc['q_ggn'][k], sc['dL'][k])[0]:.2f}")
    rq = [stats.rankdata(sc["q_ggn"][k]) for k in strata]
    rd = [stats.rankdata(sc["dL"][k]) for k in strata]

    def stat(rds):
        return float(np.mean([np.corrcoef(q, d)[0, 1] for q, d in zip(rq, rds)]))

    obs = stat(rd)
    rng = np.random.default_rng(0)
    null = np.array([stat([rng.permutation(d) for d in rd]) for _ in range(PERMUTATIONS)])
    return obs, float((1 + np.sum(null >= obs - 1e-12)) / (1 + PERMUTATIONS)), names


def line_orders(res, cfg, name, j):
    """Order of the second-order model's error on the line, per seed, and the first-grid-point errors.

    Returns ``(slope [S], ratio [S], err_terms, err_measured)``: the least-squares log-log slope
    of ``|L(a) - L(0) - a g.d - a^2 q|`` over ``a_1 / 4, a_1 / 2, a_1, 2 a_1`` (q = 1/2 d'Fd), the
    line's a^2 coefficient at the smallest a over q, and (seed means, as the old checks) the
    error at ``a_1`` relative to the model's terms and to the measured increase.
    """
    r = res[name]
    i = len(cfg.scatter_fractions) - 1
    a = np.concatenate([res["alphas_small"], res["alphas"][1:3]])
    line = np.concatenate([r["line_small"][i, j], r["line"][i, j, :, 1:3]], axis=-1).astype(np.float64)  # [S, 4]
    l0 = r["line"][i, j, :, :1].astype(np.float64)
    lin, q = r["lin"][i, j][:, None].astype(np.float64), r["q_ggn"][i, j][:, None].astype(np.float64)
    meas = line - l0
    err = np.abs(meas - a * lin - a ** 2 * q)
    slope = np.array([np.polyfit(np.log(a), np.log(np.maximum(e, 1e-30)), 1)[0] for e in err])
    ratio = ((meas[:, 0] - a[0] * lin[:, 0]) / a[0] ** 2) / q[:, 0]
    _, e_terms = model_breakpoint(res, cfg, name, j)
    ml = r["line"][i, j].mean(0)
    a1 = res["alphas"][1]
    m1 = ml[1] - ml[0]
    e_meas = abs(a1 * r["lin"][i, j].mean() + a1 ** 2 * r["q_ggn"][i, j].mean() - m1) / max(abs(m1), 1e-12)
    return slope, ratio, float(e_terms[1]), float(e_meas)

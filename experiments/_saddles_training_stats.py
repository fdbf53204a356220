"""Summaries, table and check records of saddles_in_training (thresholds: see its docstring).

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np
from scipy import stats as sps

from lossatlas import results

from ._landscape import t_half_width

CONFIDENCE = 0.95
RATIO_MAX = 0.1            # check (c): bottom-k / top-k overlap, an order of magnitude (Gur-Ari et al. 2018)
TOP_MIN = 0.5              # report-only: Gur-Ari et al. find ~0.9 for the top-k overlap after a short phase
AGREE = 0.05               # report-only: |SLQ - dense| and |Lanczos - dense overlap| at the checked points


def mean_ci(x, axis: int = -1):
    """Mean and 95% Student-t half-width over ``axis`` (the seeds)."""
    x = np.asarray(x, float)
    return x.mean(axis=axis), t_half_width(x, axis, CONFIDENCE)


def names(res) -> list[str]:
    return ["SGD" if m == 0 else f"momentum {m:g}" for m in np.asarray(res["momentums"], float)]


def late(res) -> slice:
    """The later half of the checkpoints (by index; they are log-spaced)."""
    K = len(res["checkpoint_steps"])
    return slice(K // 2, K)


def summary(res) -> dict:
    idx = np.asarray(res["index"], float)                      # [G, S, K]
    top, bot = np.asarray(res["top_overlap"], float), np.asarray(res["bottom_overlap"], float)
    sl = late(res)
    out = {"diff": mean_ci(idx[..., -1] - idx[..., 0]),        # ([G], [G])
           "init": mean_ci(idx[..., 0]), "end": mean_ci(idx[..., -1]),
           "ratio_late": mean_ci(bot[..., sl].mean(-1) / top[..., sl].mean(-1)),
           "ratio_all": mean_ci(bot[..., 1:].mean(-1) / top[..., 1:].mean(-1)),
           "top_late": np.median(top[..., sl], axis=(1, 2)),
           "chance": float(np.asarray(res["chance"]).flat[0])}
    loss = np.asarray(res["loss"], float)
    out["rho"] = np.array([[sps.spearmanr(loss[g, s], idx[g, s])[0] for s in range(idx.shape[1])]
                           for g in range(idx.shape[0])])
    return out


def table(res: dict, cfg) -> list[dict]:
    rows, ch = [], float(np.asarray(res["chance"]).flat[0])
    for g, name in enumerate(names(res)):
        for j, step in enumerate(res["checkpoint_steps"]):
            col = lambda key: np.asarray(res[key][g, :, j], float)  # noqa: E731
            rows.append({"optimizer": name, "step": int(step),
                         "loss (curvature subset)": results.stat(col("loss"), digits=3),
                         f"index (rel_tol {cfg.index_rel_tol:g}), 95% CI": results.stat(col("index"), digits=4,
                                                                                        spread="ci95"),
                         "SLQ stderr (mean)": round(float(col("index_stderr").mean()), 4),
                         "index at rounding tol": round(float(col("index_rounding").mean()), 3),
                         "lambda_min": round(float(res["bottom_values"][g, :, j, 0].mean()), 4),
                         "lambda_max": round(float(res["top_values"][g, :, j, 0].mean()), 3),
                         "top-k overlap": round(float(col("top_overlap").mean()), 4),
                         "top-k / chance": round(float(col("top_overlap").mean()) / ch, 1),
                         "bottom-k overlap": round(float(col("bottom_overlap").mean()), 4),
                         "bottom-k / chance": round(float(col("bottom_overlap").mean()) / ch, 2)})
    return rows


def _r(a, digits: int = 4) -> list:
    """A nested list of plain floats rounded to ``digits`` (readable record details)."""
    return np.round(np.asarray(a, np.float64), digits).tolist()


def _fmt(m, h, names_):
    return "; ".join(f"{n}: {a:.4f} +- {b:.4f}" for n, a, b in zip(names_, m, h))


def checks(res: dict, cfg) -> list[dict]:
    sm, nm = summary(res), names(res)
    G, S, K = np.asarray(res["index"]).shape
    tol = f"rel_tol {cfg.index_rel_tol:g} x max|lambda|"
    chance = sm["chance"]
    (dm, dh), (em, eh) = sm["diff"], sm["end"]
    (rm, rh), (am, ah) = sm["ratio_late"], sm["ratio_all"]
    out = [
        {"name": "(a) negative spectral mass shrinks during training", "value": [float(v) for v in dm],
         "passed": bool(np.all(dm + dh < 0)),
         "claim": "index(end) - index(init), paired over seeds, has its 95% CI below 0 for every optimizer",
         "paper": "Sagun et al. 2017; Ghorbani et al. 2019: the negative part of the spectrum shrinks in training",
         "tolerance": "CI upper bound < 0",
         "detail": f"SLQ index ({tol}) init {_fmt(*sm['init'], nm)}; end {_fmt(em, eh, nm)}; "
                   f"paired difference {_fmt(dm, dh, nm)} ({S} seeds)"},
    ]
    b_pass = bool(np.all(em - eh > 0))
    dense_txt = ""
    if "dense_index" in res:
        d_end = np.asarray(res["dense_index"])[1]
        b_pass = b_pass and bool(np.all(d_end > 0))
        dense_txt = "; dense (exact) index at the end, seed 0: " + ", ".join(
            f"{n}: {v:.4f}" for n, v in zip(nm, d_end))
    out.append({"name": "(b) negative mass remains at the end (not a strict minimum)", "value": [float(v) for v in em],
                "passed": b_pass,
                "claim": "the seed mean of index(end) has its 95% CI above 0 for every optimizer, and the exact "
                         "(dense) index at the end is > 0",
                "paper": "Sagun et al. 2017: a bulk near zero with small negative eigenvalues remaining",
                "tolerance": "CI lower bound > 0 and dense > 0",
                "detail": f"SLQ index ({tol}) at the end {_fmt(em, eh, nm)}{dense_txt}"})
    out.append({"name": "(c) gradient overlap with the negative eigenspace << with the top eigenspace",
                "value": [float(v) for v in rm], "passed": bool(np.all(rm + rh < RATIO_MAX)),
                "claim": f"r = mean bottom-{cfg.k} overlap / mean top-{cfg.k} overlap over the later half of the "
                         f"checkpoints (steps {', '.join(str(int(s)) for s in res['checkpoint_steps'][late(res)])}); "
                         f"95% CI upper bound of its seed mean < {RATIO_MAX} for every optimizer",
                "paper": "Gur-Ari et al. 2018: after a short initial phase the gradient lies mostly in the top-k "
                         "eigenspace (k = classes)",
                "tolerance": f"< {RATIO_MAX}",
                "detail": f"r {_fmt(rm, rh, nm)}; late medians top {', '.join(f'{v:.3f}' for v in sm['top_late'])} "
                          f"= {', '.join(f'{v / chance:.0f}' for v in sm['top_late'])}x chance k/P = "
                          f"{chance:.4f}; bottom late mean "
                          + ", ".join(f"{np.mean(res['bottom_overlap'][g][:, late(res)]):.4f} "
                                      f"({np.mean(res['bottom_overlap'][g][:, late(res)]) / chance:.2g}x chance)"
                                      for g in range(G))})
    out.append({"name": "(c, original) overlap ratio over all checkpoints after init", "gating": False,
                "value": [float(v) for v in am], "passed": bool(np.all(am + ah < RATIO_MAX)),
                "claim": f"as (c) over every checkpoint after step 0 (the first draft; changed to the later half, "
                         f"Gur-Ari's regime, after the quick prototype showed large early bottom overlaps)",
                "tolerance": f"< {RATIO_MAX}", "detail": f"r {_fmt(am, ah, nm)}"})
    out.append({"name": "top-k overlap is large late in training (Gur-Ari et al.)", "gating": False,
                "value": [float(v) for v in sm["top_late"]], "passed": bool(np.all(sm["top_late"] >= TOP_MIN)),
                "paper": "Gur-Ari et al. 2018: ~0.9", "tolerance": f">= {TOP_MIN} (median, later half)",
                "detail": ", ".join(f"{n}: {v:.3f}" for n, v in zip(nm, sm["top_late"]))})
    rho = sm["rho"]
    out.append({"name": "index rises with the loss along training (Dauphin et al.)", "gating": False,
                "value": float(np.median(rho)), "passed": bool(np.median(rho) > 0),
                "paper": "Dauphin et al. 2014: higher-error critical points have a higher index",
                "tolerance": "median Spearman rho(loss, index) over members > 0",
                "detail": f"per-member Spearman rho over the {K} checkpoints: "
                          + "; ".join(f"{n}: {', '.join(f'{v:.2f}' for v in r)}" for n, r in zip(nm, rho))
                          + " (points along a run are not critical points)"})
    if "dense_index" in res:
        ends = [0, K - 1]
        slq = np.asarray(res["index"])[:, 0, ends].T                            # [2, G]
        rnd = np.asarray(res["index_rounding"])[:, 0, ends].T
        err = np.abs(slq - res["dense_index"])
        out.append({"name": "SLQ index vs the exact (dense) index", "gating": False, "value": float(err.max()),
                    "passed": bool(err.max() <= AGREE), "tolerance": f"|SLQ - dense| <= {AGREE}",
                    "detail": f"seed 0, init/end per optimizer: SLQ ({tol}) {_r(slq)} vs dense "
                              f"{_r(res['dense_index'])}; at the rounding-level tol: SLQ "
                              f"{_r(rnd, 3)} vs dense {_r(res['dense_index_rounding'], 3)}"})
        lz = np.stack([np.asarray(res[f"{w}_overlap"])[:, 0, ends].T for w in ("top", "bottom")])
        dz = np.stack([np.asarray(res[f"dense_{w}_overlap"]) for w in ("top", "bottom")])
        oerr = np.abs(lz - dz)
        out.append({"name": "Lanczos eigenspace overlaps vs the exact (dense) ones", "gating": False,
                    "value": float(oerr.max()), "passed": bool(oerr.max() <= AGREE),
                    "tolerance": f"|Lanczos - dense| <= {AGREE}",
                    "detail": f"seed 0, init/end per optimizer: top {_r(lz[0])} vs dense "
                              f"{_r(dz[0])}; bottom {_r(lz[1])} vs dense "
                              f"{_r(dz[1])}; max Ritz residual top/bottom "
                              f"{np.max(res['top_residuals']):.2e}/{np.max(res['bottom_residuals']):.2e}"})
    return out

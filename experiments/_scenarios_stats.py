"""forgetting_scenarios' statistics: the scenarios, the paper's numbers, the summary at the chosen
lambdas, gap fractions and the one-sided paired-over-seeds bounds the checks use."""
from __future__ import annotations

import numpy as np
from scipy import stats

from lossatlas import continual as cl

SCENARIOS = ("task", "domain", "class")

#: van de Ven & Tolias, arXiv:1809.10635 (v1), Table 3 (split MNIST) and Table 4 (permuted MNIST,
#: 10 tasks): average test accuracy in %, mean over 20 seeds, for (task-IL, domain-IL, class-IL).
#: "Offline" is joint training; the tables have no exact replay, A-GEM or L2 rows.
PAPER = {
    "split": {"naive": (85.15, 57.33, 19.90), "ewc": (85.48, 57.80, 19.90), "online_ewc": (85.22, 57.60, 19.90),
              "si": (99.14, 63.77, 20.04), "lwf": (99.60, 71.02, 24.17), "joint": (99.64, 98.41, 97.93)},
    "permuted": {"naive": (81.79, 78.51, 17.26), "ewc": (94.74, 94.31, 25.04), "online_ewc": (95.96, 94.42, 33.88),
                 "si": (94.75, 95.33, 29.31), "lwf": (69.84, 72.64, 22.64), "joint": (97.68, 97.59, 97.59)},
}
PAPER_SOURCE = "van de Ven & Tolias, arXiv:1809.10635 Tables 3-4 (MNIST, 20 seeds)"


def summary(res: dict, cfg) -> dict:
    """``{protocol: {strategy: {"lam" [3], "acc" [3, S], "bwt" [3, S]}}}`` at the chosen lambdas."""
    out = {}
    for protocol in cfg.protocols:
        out[protocol] = {}
        for name in cfg.strategies:
            r = res[protocol][name]
            idx = r["chosen"]
            rr = np.stack([r["R"][d, idx[d]] for d in range(len(SCENARIOS))])  # [3, S, T, T]
            out[protocol][name] = {"lam": r["lams"][idx], "acc": cl.average_accuracy(rr),
                                   "bwt": cl.backward_transfer(rr), "R": rr}
    return out


def gap_fraction(s: dict, name: str) -> np.ndarray:
    """``(acc - naive) / (joint - naive)`` per scenario (seed means): 0 = fine-tuning, 1 = joint."""
    m = {k: s[k]["acc"].mean(-1) for k in (name, "naive", "joint")}
    return (m[name] - m["naive"]) / np.maximum(m["joint"] - m["naive"], 1e-6)


def paper_gap(protocol: str, name: str) -> np.ndarray:
    """The published gap fraction per scenario (``PAPER``), NaN where the paper has no row."""
    p = PAPER[protocol]
    if name not in p:
        return np.full(len(SCENARIOS), np.nan)
    return (np.asarray(p[name]) - np.asarray(p["naive"])) / (np.asarray(p["joint"]) - np.asarray(p["naive"]))


#: one-sided confidence level of every paired-over-seeds bound in the checks
CONFIDENCE = 0.95
#: a naive-to-joint gap is normalised (a "fraction of the gap") only when it exceeds this many standard errors
GAP_SE = 3.0


def paired_bound(diff, side: str) -> tuple[float, float, float]:
    """``(mean, se, bound)`` of per-seed paired differences; ``bound`` is the one-sided ``CONFIDENCE`` t bound
    (``side="lower"``: mean - t se, ``"upper"``: mean + t se). One seed: the bound is -inf / +inf (nothing shown)."""
    diff = np.asarray(diff, float)
    n = diff.size
    if n < 2:
        return float(diff.mean()), float("nan"), float("-inf") if side == "lower" else float("inf")
    se = float(diff.std(ddof=1) / np.sqrt(n))
    t = float(stats.t.ppf(CONFIDENCE, n - 1))
    return float(diff.mean()), se, float(diff.mean() - t * se if side == "lower" else diff.mean() + t * se)


def seed_gap_fraction(s: dict, name: str, d: int) -> np.ndarray:
    """Per-seed ``(acc - naive) / (joint - naive)`` in scenario ``d`` (seeds are paired: the same keys)."""
    a, z, j = (s[k]["acc"][d] for k in (name, "naive", "joint"))
    return (a - z) / np.maximum(j - z, 1e-6)


def gap_ok(s: dict, d: int) -> tuple[bool, str]:
    """Whether joint - naive in scenario ``d`` exceeds ``GAP_SE`` standard errors (paired over seeds)."""
    m, se, _ = paired_bound(s["joint"]["acc"][d] - s["naive"]["acc"][d], "lower")
    ok = bool(np.isfinite(se) and m > GAP_SE * se)
    return ok, f"joint - naive {100 * m:.1f} +- {100 * se:.1f} pts (SE)"

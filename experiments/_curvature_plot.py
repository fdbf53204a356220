"""The figure of forgetting_curvature: (a) Fisher overlap, (b) predicted vs measured forgetting, (c) the line."""
from __future__ import annotations

import numpy as np
from scipy import stats

from lossatlas import plotting
from . import _curvature_summaries as cs


def plot(res: dict, cfg) -> dict:
    """Three panels drawn from the results of ``forgetting_curvature.run``."""
    fig, axes = plotting.figure(ncols=3, width=4.0, height=3.9)
    layer_colors = ["C4", "C1", "C8", "C5", "C6", "C9"]      # not the strategy colours of (b) and (c)
    fr = np.asarray(cfg.fractions)
    names = [str(n) for n in res["layers"]]
    ax = axes[0, 0]
    for k, n in enumerate(names):
        color = "k" if n == "all" else layer_colors[k % len(layer_colors)]
        plotting.mean_band(ax, fr, res["overlap"]["frechet"][:, 1, :, k].T, label=f"{n}", color=color,
                           marker="o", ms=3, ls="--" if n == "all" else "-")
        ax.plot(fr, res["overlap"]["diagonal"][:, 1, :, k].mean(-1), ":", color=color, lw=1)
    plotting.mean_band(ax, fr, res["overlap"]["frechet"][:, 0, :, -1].T, label="all, naive", color="gray", lw=1,
                       ls="-.", band=False)
    fre, _, rho = cs.overlap_stats(res, cfg)
    note = "" if fre[-1, -2] > fre[-1, 0] else " (readout NOT above layer 1)"
    flat = [n for n, r in zip(names, rho) if r > -0.9]
    if flat:
        ax.text(0.98, 0.02, "not monotone in p (EWC, Spearman > -0.9):\n" + ", ".join(flat), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=6.5)
    ax.plot([], [], ":", color="0.3", lw=1, label="dotted: diagonal Fisher")
    ax.set(xlabel="fraction of inputs permuted (task B)", ylabel="Fisher overlap 1 - d^2 (Frechet)", ylim=(0, 1.05))
    ax.set_title(f"Fisher overlap, EWC lam={cfg.overlap_lam:g}{note}", fontsize=9)
    plotting.legend_outside(ax, "below", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.18))

    ax = axes[0, 1]
    sc = cs.scatter(res, cfg)
    styles = {"naive": ("C3", "o"), "ewc": ("C0", "s"), "l2": ("C2", "^")}
    pos = sc["dL"] > 0
    for strat, (c, mk) in styles.items():
        k = (sc["strategy"] == strat) & pos
        ax.scatter(sc["q_ggn"][k], sc["dL"][k], c=c, marker=mk, s=14, label=f"{strat}: 1/2 d'Fd", alpha=0.8)
        ax.scatter(sc["q_diag"][k], sc["dL"][k], facecolors="none", edgecolors=c, marker=mk, s=14, alpha=0.5)
    lo = min(sc["q_diag"][pos].min(), sc["dL"][pos].min()) * 0.8
    hi = max(sc["q_ggn"][pos].max(), sc["dL"][pos].max()) * 1.2
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.scatter([], [], facecolors="none", edgecolors="gray", label="open: diagonal Fisher")
    rho = stats.spearmanr(sc["q_ggn"], sc["dL"])[0]
    ax.set(xlabel="predicted increase (quadratic at theta_A)", ylabel="measured increase of task-A loss")
    plotting.log_axis(ax, "x")
    plotting.log_axis(ax, "y")
    ax.set_title(f"predicted vs measured, Spearman {rho:.2f}\nabove y = x: the quadratic underestimates", fontsize=9)
    plotting.legend_outside(ax, "below", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.18))
    if (~pos).any():
        ax.text(0.98, 0.02, f"{int((~pos).sum())} runs with dL <= 0 not shown", transform=ax.transAxes, ha="right",
                fontsize=6.5)

    ax = axes[0, 2]
    a = res["alphas"]
    i = len(cfg.scatter_fractions) - 1
    r0 = res["ewc"]
    under = r0["line"][i, 0, :, -1].mean() > r0["L0"][i, 0].mean() + r0["q_ggn"][i, 0].mean()
    verdict = f"quadratic {'under' if under else 'over'}estimates naive forgetting at a=1"
    for name, j, label, c in (("ewc", 0, "naive", "C3"), ("ewc", len(cfg.ewc_lams) - 1, f"EWC lam={cfg.ewc_lams[-1]:g}", "C0")):
        r = res[name]
        plotting.mean_band(ax, a, r["line"][i, j], label=f"{label}: measured", color=c)
        l0 = r["L0"][i, j].mean()
        ax.plot(a, l0 + a ** 2 * r["q_ggn"][i, j].mean(), "--", color=c, lw=1.1, label="L0 + a^2/2 d'Fd")
        ax.plot(a, l0 + a * r["lin"][i, j].mean() + a ** 2 * r["q_ggn"][i, j].mean(), ":", color=c, lw=1.1,
                label="+ a g.d")
    ax.set(xlabel="a: (1 - a) theta_A + a theta_final", ylabel="task-A training loss")
    plotting.log_axis(ax, "y")
    ax.set_title("task-A loss on the line, p = 1\n" + verdict, fontsize=9)
    plotting.legend_outside(ax, "below", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.18))
    plotting.panel_letters(axes)
    fig.tight_layout()
    return {"forgetting_curvature": fig}

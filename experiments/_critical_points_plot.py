"""Figure of critical_points_index: (a) index vs loss with the (eps - eps_c)^(3/2) fit (Dauphin et al.
2014 Fig. 1 style), (b) |grad| at the end of the search per category, (c) Hessian spectra at
critical points of different index.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np

from lossatlas import plotting


def _spectrum_points(res: dict) -> list[int]:
    """Critical points with the lowest, a middle and the highest index (distinct indices)."""
    crit = np.flatnonzero(res["is_critical"].astype(bool))
    if not crit.size:
        return []
    order = crit[np.argsort(res["index"][crit], kind="stable")]
    picks, seen = [], set()
    for j in (0, len(order) // 2, len(order) - 1):
        i = int(order[j])
        if round(float(res["index"][i]), 6) not in seen:
            picks.append(i)
            seen.add(round(float(res["index"][i]), 6))
    return picks


def figure(res: dict, cfg):
    crit, flat = res["is_critical"].astype(bool), res["is_gradient_flat"].astype(bool)
    neither = ~crit & ~flat
    fig, axes = plotting.figure(ncols=3, width=4.0, height=3.6)
    ax_a, ax_b, ax_c = axes[0]
    spectrum_colors = ("C2", "C4", "C1")          # the points of (c), ringed in (a); none of (a)/(b)'s colours
    picks = _spectrum_points(res)
    # (a) index vs loss
    ax_a.scatter(res["loss"][crit], res["index"][crit], s=14, c="C0", alpha=0.6, lw=0,
                 label=f"critical ({int(crit.sum())})")
    if flat.any():
        ax_a.scatter(res["loss"][flat], res["index"][flat], s=26, marker="x", c="C3", lw=1.0,
                     label=f"gradient-flat ({int(flat.sum())}, not saddles)")
    for j, i in enumerate(picks):
        ax_a.scatter(res["loss"][i], res["index"][i], s=70, facecolors="none", edgecolors=spectrum_colors[j], lw=1.2)
    if crit.sum() >= 3 and np.isfinite(float(res["fit_a"])):
        e = np.linspace(res["loss"][crit].min(), res["loss"][crit].max(), 200)
        for key, b, ls in (("fit", 1.5, "-"), ("free", float(res["free_b"]), "--")):
            a, ec = float(res[f"{key}_a"]), float(res[f"{key}_ec"])
            ax_a.plot(e, a * np.maximum(e - ec, 0) ** b, color="k", ls=ls, lw=1.0,
                      label=f"a (eps - eps_c)^{b:.3g}, eps_c = {ec:.4g}")
    ax_a.set(xlabel="training loss eps (MSE + L2)", ylabel="index alpha (fraction negative)", ylim=(-0.01, None))
    ax_a.set_title(f"index vs loss, Spearman rho {float(res['rho']):.2f} [{float(res['rho_lo']):.2f}, "
                   f"{float(res['rho_hi']):.2f}]", fontsize=9)
    plotting.legend_outside(ax_a, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.24))
    # (b) |grad| at the end of the search
    gn = np.log10(np.maximum(res["grad_norm"], 1e-30))
    bins = np.linspace(np.floor(gn.min()), np.ceil(gn.max()), 36)
    for m, name, color in ((crit, "critical", "C0"), (flat, "gradient-flat", "C3"), (neither, "neither", "0.5")):
        if m.any():
            ax_b.hist(gn[m], bins=bins, color=color, alpha=0.7, label=f"{name} ({int(m.sum())})")
    ax_b.axvline(np.log10(cfg.grad_tol), color="k", ls=":", lw=1.0, label=f"grad_tol = {cfg.grad_tol:g}")
    ax_b.set(xlabel="log10 |grad| after the search", ylabel="starts")
    ax_b.set_title(f"Newton-MR, {cfg.newton_steps} steps, {res['loss'].size} starts", fontsize=9)
    plotting.legend_outside(ax_b, "below", ncol=2, fontsize=7, bbox_to_anchor=(0.5, -0.24))
    # (c) spectra
    for j, i in enumerate(picks):
        lam = np.sort(res["eigenvalues"][i])
        ax_c.plot(np.arange(1, lam.size + 1), lam, marker=".", ms=3, lw=0.8, color=spectrum_colors[j],
                  label=f"eps = {res['loss'][i]:.4g}, alpha = {res['index'][i]:.3f}")
    ax_c.set_yscale("symlog", linthresh=1e-3)
    ax_c.axhline(0, color="k", lw=0.5)
    ax_c.set(xlabel="eigenvalue rank", ylabel="Hessian eigenvalue (symlog)")
    ax_c.set_title("spectra (ringed in (a))", fontsize=9)
    plotting.legend_outside(ax_c, "below", ncol=1, fontsize=7, bbox_to_anchor=(0.5, -0.24))
    plotting.panel_letters(axes)
    fig.suptitle(f"Critical points of a tanh MLP {cfg.input_dim}-{'-'.join(map(str, cfg.widths))}-10 "
                 f"({int(res['num_params'])} params), {int(res['num_train'])} digits (PCA {cfg.input_dim}), MSE + L2 "
                 f"{cfg.l2_penalty:g}; Newton-MR from Adam checkpoints, critical: |grad| <= {cfg.grad_tol:g}",
                 fontsize=9)
    fig.tight_layout()
    return fig

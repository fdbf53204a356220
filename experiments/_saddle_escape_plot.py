"""Figure of saddle_escape (Dauphin et al. 2014; Jin et al. 2017): (a) trajectories near the 2-D
saddle, (b) escape step vs |y0| on the 2-D saddle with the closed forms, (c) median escape step per
method with 95% CIs on both surfaces, (d) escape step vs |y0| on the n-D strict saddle.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np

from lossatlas import plotting

from .saddle_escape import (CONFIDENCE, LABELS, METHODS, gd_escape_steps, median_ci, momentum_escape_steps,
                            sfn_escape_steps, summary)

COLORS = {"gd": "C0", "perturbed_gd": "C6", "momentum": "C1", "nesterov": "C4", "adam": "C2",
          "damped_newton": "C3", "saddle_free_newton": "k"}
MARKERS = {"gd": "o", "perturbed_gd": "v", "momentum": "s", "nesterov": "D", "adam": "^",
           "damped_newton": "x", "saddle_free_newton": "*"}


def _theory_lines(ax, s, cfg, y_grid):
    """Closed forms on a fine |y0| grid: GD, heavy ball, saddle-free Newton (pale bands)."""
    h, eta, steps = s["h"], s["eta"], s["steps"]
    lines = {"gd": gd_escape_steps(y_grid, eta, h, cfg.radius),
             "momentum": momentum_escape_steps(y_grid, eta, h, cfg.momentum, cfg.radius, steps),
             "saddle_free_newton": sfn_escape_steps(y_grid, cfg.newton_learning_rate, h, cfg.newton_damping,
                                                    cfg.radius)}
    for m, t in lines.items():   # wide and pale, under the measured points
        ax.plot(y_grid, t, color=COLORS[m], lw=3.0, alpha=0.3, zorder=1)
    ax.plot([], [], color="0.5", lw=3.0, alpha=0.4, label="closed form")


def _escape_panel(ax, s, cfg, title):
    rnd = s["random"]
    y0 = np.abs(s["y0"][rnd])
    _theory_lines(ax, s, cfg, np.geomspace(cfg.y0_range[0], cfg.y0_range[1], 400))
    for m in ("gd", "perturbed_gd", "momentum", "nesterov", "adam", "saddle_free_newton"):
        ax.scatter(y0, s["measured"][m][rnd], s=6, color=COLORS[m], marker=MARKERS[m], alpha=0.8, lw=0,
                   label=LABELS[m], zorder=2)
    ax.set(xscale="log", yscale="log", xlabel="|y0| (distance along the escape direction)")
    ax.set_title(title, fontsize=9)


def figure(res: dict, cfg):
    """The figure of saddle_escape (its ``plot``)."""
    from matplotlib.lines import Line2D

    sm = summary(res, cfg)
    fig, axes = plotting.figure(ncols=2, nrows=2, width=4.2, height=3.2)
    (ax_a, ax_b), (ax_c, ax_d) = axes

    # (a) trajectories near the 2-D saddle, in eigen-coordinates (x: positive, |y|: escape direction)
    traj = res["2d"]["trajectories"]
    y0s = np.abs(np.asarray(traj["gd"])[:, 0, 0])
    i = int(np.argmin(np.abs(np.log(y0s) - np.log(1e-5))))
    floor = 1e-12
    for m in METHODS:
        t = np.asarray(traj[m])[i]
        esc = int(np.asarray(res["2d"]["escape"][m])[i])
        t = t[: esc + 1] if esc >= 0 else t[:60]
        ax_a.plot(t[:, 1], np.maximum(np.abs(t[:, 0]), floor), color=COLORS[m], marker=MARKERS[m], ms=2.5,
                  lw=0.7)
    ax_a.axhline(cfg.radius, color="0.4", ls=":", lw=0.8)
    ax_a.text(1.01, cfg.radius, "R", fontsize=8, color="0.3", va="center", transform=ax_a.get_yaxis_transform())
    ax_a.set(yscale="log", ylim=(floor / 3, 30 * cfg.radius), xlabel="x (positive-curvature coordinate)",
             ylabel=f"|y| (negative curvature; floor {floor:g})")
    quad = "x^2" if cfg.saddle_a == 1 else f"{cfg.saddle_a:g} x^2"
    ax_a.set_title(f"{quad} - y^2: one start, |y0| = {y0s[i]:.1e}", fontsize=9)
    ax_a.set_yticks([10.0 ** k for k in range(-12, 1, 3)])
    ax_a.minorticks_off()

    # (b), (d): escape step vs |y0|
    s2, sn = sm["2d"], sm["nd"]
    _escape_panel(ax_b, s2, cfg, f"2-D saddle (h = {s2['h']:g}, eta = {s2['eta']:g})")
    _escape_panel(ax_d, sn, cfg, f"{cfg.nd_dim}-D saddle (h = {sn['h']:g}, kappa = {cfg.nd_kappa:g}, "
                                 f"eta = {sn['eta']:g})")
    ax_d.sharey(ax_b)
    ax_d.sharex(ax_b)
    every = np.concatenate([s["measured"][m][s["random"]] for s in (s2, sn) for m in METHODS])
    finite = every[np.isfinite(every)]
    ax_b.set_ylim(0.6 * finite.min(), 1.5 * finite.max())
    for ax in (ax_b, ax_d):
        ax.set_ylabel("escape step (first |y_t| > R)")
        plotting.log_axis(ax, "y")

    # (c) median escape step with 95% CI, per method (rows) and surface (marker); never escaped -> right column
    top = 2 * max(s2["steps"], sn["steps"])
    cats = [(m, "random") for m in METHODS] + [("gd", "manifold"), ("perturbed_gd", "manifold")]
    names = [LABELS[m] + (" (y0 = 0)" if kind == "manifold" else "") for m, kind in cats]
    for which, s, off, mk in (("2d", s2, -0.15, "o"), ("nd", sn, 0.15, "s")):
        for k, (m, kind) in enumerate(cats):
            vals = s["measured"][m][s[kind]]
            med = np.median(vals)
            style = {"mfc": COLORS[m] if which == "2d" else "w", "mec": COLORS[m]}
            if not np.isfinite(med):
                ax_c.plot(top, k + off, marker=mk, ms=5, ls="none", **style)
                continue
            _, lo, hi = median_ci(vals)
            ax_c.errorbar(med, k + off, xerr=[[med - lo], [min(hi, top) - med]], fmt=mk, ms=5, color=COLORS[m],
                          capsize=2, lw=0.9, **style)
    ax_c.axvline(top, color="C3", ls=":", lw=0.7)
    ax_c.set_yticks(range(len(cats)), names, fontsize=7)
    ax_c.set_ylim(len(cats) - 0.5, -0.5)
    ax_c.set(xlim=(1, top * 1.6), xlabel=f"median escape step ({CONFIDENCE:.0%} CI over starts)")
    plotting.log_axis(ax_c, "x")
    ticks = [t for t in ax_c.get_xticks() if 1 <= t < top / 1.5]
    ax_c.set_xticks(ticks + [top], [f"{t:g}" for t in ticks] + ["never"])
    ax_c.set_title("median escape step", fontsize=9)
    if any(np.median(s["measured"]["saddle_free_newton"][s["random"]]) >= np.median(s["measured"]["adam"][s["random"]])
           for s in (s2, sn)):
        ax_c.text(0.02, 0.32, "saddle-free Newton\nfaster than Adam:\nNOT shown", transform=ax_c.transAxes,
                  fontsize=7, color="#b00000", va="center")

    handles = [Line2D([], [], color=COLORS[m], marker=MARKERS[m], ms=5, lw=0.7) for m in METHODS]
    labels = [LABELS[m] for m in METHODS]
    handles += [Line2D([], [], color="0.5", lw=3.0, alpha=0.4),
                Line2D([], [], color="0.3", marker="o", ls="none", ms=5),
                Line2D([], [], color="0.3", marker="s", mfc="w", ls="none", ms=5)]
    labels += ["closed form (GD, heavy ball, SFN)", "(c): 2-D saddle", f"(c): {cfg.nd_dim}-D strict saddle"]
    plotting.figure_legend(fig, handles, labels, where="right")
    plotting.panel_letters(axes)
    fig.suptitle("Escaping strict saddles: "
                 f"{int(s2['random'].sum())} starts with |y0| log-uniform in [{cfg.y0_range[0]:g}, "
                 f"{cfg.y0_range[1]:g}] plus {int(s2['manifold'].sum())} on the stable manifold (y0 = 0), "
                 f"per surface", fontsize=9)
    fig.tight_layout()
    return fig

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
    sm = summary(res, cfg)
    fig, axes = plotting.figure(ncols=2, nrows=2, width=4.4, height=3.3)
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
                  lw=0.7, label=LABELS[m])
    ax_a.axhline(cfg.radius, color="0.4", ls=":", lw=0.8)
    ax_a.text(0.98, cfg.radius * 2.5, f"escape radius R = {cfg.radius:g}", fontsize=7, color="0.3", ha="right",
              transform=ax_a.get_yaxis_transform())
    ax_a.set(yscale="log", ylim=(floor / 3, 30 * cfg.radius), xlabel="x (positive-curvature coordinate)",
             ylabel="|y| (negative-curvature coordinate)")
    quad = "x^2" if cfg.saddle_a == 1 else f"{cfg.saddle_a:g} x^2"
    ax_a.set_title(f"(a) 2-D saddle {quad} - y^2: one start, |y0| = {y0s[i]:.1e}\n"
                   f"(Newton falls to the saddle: |y| clipped at {floor:g})", fontsize=9)
    ax_a.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    # (b), (d): escape step vs |y0|
    s2, sn = sm["2d"], sm["nd"]
    _escape_panel(ax_b, s2, cfg, f"(b) 2-D saddle (h = {s2['h']:g}, eta = {s2['eta']:g}): escape step;\n"
                                 "pale bands: closed forms (GD, heavy ball, SFN)")
    _escape_panel(ax_d, sn, cfg, f"(d) {cfg.nd_dim}-D strict saddle (h = {sn['h']:g}, kappa = {cfg.nd_kappa:g}, "
                                 f"eta = {sn['eta']:g})")
    ax_d.sharey(ax_b)
    ax_d.sharex(ax_b)
    every = np.concatenate([s["measured"][m][s["random"]] for s in (s2, sn) for m in METHODS])
    finite = every[np.isfinite(every)]
    ax_b.set_ylim(0.6 * finite.min(), 1.5 * finite.max())
    ax_b.set_ylabel("escape step (first |y_t| > R)")
    ax_d.set_ylabel("escape step (first |y_t| > R)")
    ax_b.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, markerscale=2.5)

    # (c) median escape step with 95% CI, per method and surface; never escaped -> top row
    top = 2 * max(s2["steps"], sn["steps"])
    cats = [(m, "random") for m in METHODS] + [("gd", "manifold"), ("perturbed_gd", "manifold")]
    names = [LABELS[m] + (" (y0 = 0)" if kind == "manifold" else "") for m, kind in cats]
    for j, (which, s, off, mk) in enumerate((("2d", s2, -0.15, "o"), ("nd", sn, 0.15, "s"))):
        for k, (m, kind) in enumerate(cats):
            vals = s["measured"][m][s[kind]]
            med = np.median(vals)
            if not np.isfinite(med):
                ax_c.scatter(k + off, top, marker="x", color="C3", s=25, zorder=3)
                continue
            _, lo, hi = median_ci(vals)
            ax_c.errorbar(k + off, med, yerr=[[med - lo], [min(hi, top) - med]], fmt=mk, ms=4,
                          color="0.2" if which == "2d" else "C1", capsize=2, lw=0.9,
                          label=("2-D saddle" if which == "2d" else f"{cfg.nd_dim}-D strict saddle") if k == 0 else None)
    ax_c.axhline(top, color="C3", ls=":", lw=0.7)
    ax_c.text(len(cats) - 0.5, top * 1.08, "never escaped", ha="right", fontsize=7, color="C3")
    ax_c.set_xticks(range(len(cats)), names, rotation=35, ha="right", fontsize=7)
    ax_c.set(yscale="log", ylabel="median escape step", ylim=(3, top * 1.6))
    ax_c.set_title(f"(c) median escape step, {CONFIDENCE:.0%} order-statistic CI over starts", fontsize=9)
    ax_c.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    fig.suptitle("Escaping strict saddles: GD vs momentum, Adam, Newton and saddle-free Newton "
                 "(Dauphin et al. 2014) and perturbed GD (Jin et al. 2017)\n"
                 f"{int(s2['random'].sum())} starts with |y0| log-uniform in [{cfg.y0_range[0]:g}, "
                 f"{cfg.y0_range[1]:g}] plus {int(s2['manifold'].sum())} on the stable manifold (y0 = 0), "
                 f"per surface", fontsize=9)
    fig.tight_layout()
    return fig


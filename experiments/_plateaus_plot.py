"""Figure of deep_linear_plateaus (Saxe, McClelland & Ganguli 2014): (a) loss, (b) mode strengths
against the closed form, (c) t_half against theory, (d) smallest Hessian eigenvalue along
training, (e) t_half / theory per mode and condition, (f) t_half of mode 1 against depth.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from lossatlas import plotting

from .deep_linear_plateaus import CONFIDENCE, RANDOM_TOL, T_HALF_TOL, saddle_eigenvalue, strength, summary


def _log_ticks(ax, lo: float, hi: float, axis: str = "both") -> None:
    """Plain-number ticks at 1, 2, 5 x 10^k inside [lo, hi] on log axes (no crowded minor labels)."""
    ticks = [m * 10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
    for name in ("x", "y") if axis == "both" else (axis,):
        getattr(ax, f"set_{name}ticks")(ticks, [f"{v:g}" for v in ticks])
        getattr(ax, f"{name}axis").set_minor_locator(NullLocator())


def figure(res: dict, cfg):
    """The figure of deep_linear_plateaus (its ``plot``)."""
    sm = summary(res, cfg)
    s, a0, tau_ = res["singular_values"], float(res["init_strength"]), float(res["tau"])
    n = int(res["num_outputs"])
    T = len(res["bal_loss"])
    t = np.arange(T + 1) / tau_
    steps = np.arange(T + 1)
    fig, axes = plotting.figure(ncols=3, nrows=2, width=3.7, height=2.9)
    (ax_l, ax_m, ax_t), (ax_h, ax_r, ax_d) = axes
    for ax in (ax_m, ax_h):
        ax.sharex(ax_l)
    colors = [f"C{i}" for i in range(n)]
    thin = dict(color="0.55", lw=0.6, alpha=0.7)

    # (a) loss: GD from both inits against the closed form's loss
    theory_loss = np.sum((s - strength(steps[:-1, None], s, a0, tau_)) ** 2, axis=1) / n
    for r in res["rand_loss"]:
        ax_l.plot(t[:-1], r, **thin)
    ax_l.plot(t[:-1], res["bal_loss"], color="0.25", lw=2.4, alpha=0.6, label="balanced init, GD")
    ax_l.plot(t[:-1], theory_loss, color="k", ls="--", lw=1.0, label="closed form")
    ax_l.plot([], [], **thin, label="random small init")
    floor = (s[-1] ** 2 / n) / 20
    ax_l.set(yscale="log", ylim=(floor, 2 * np.sum(s ** 2) / n), ylabel="train MSE")
    ax_l.set_title("a plateau and a drop per mode", fontsize=9)
    ax_l.legend(loc="upper right", fontsize=7, frameon=False)
    # (b) mode strengths, balanced init
    for i in range(n):
        ax_m.plot(t, res["bal_modes"][:, i], color=colors[i], lw=1.6)
        ax_m.plot(t, strength(steps, s[i], a0, tau_), color="k", ls="--", lw=0.8)
    ax_m.set(ylabel="a_i(t) = u_i' W_total v_i")
    ax_m.set_title("mode strengths (dashed: closed form)", fontsize=9)
    # (c) t_half measured vs theory
    lo = 0.7 * min(np.nanmin(sm["t_theory"]), np.nanmin(sm["t_rand_pred"]))
    hi = 1.5 * max(np.nanmax(sm["t_theory"]), np.nanmax(sm["t_rand_pred"]), np.nanmax(sm["t_rand"]),
                   np.nanmax(sm["t_narrow"]))
    ax_t.fill_between([lo, hi], [lo * (1 - T_HALF_TOL), hi * (1 - T_HALF_TOL)],
                      [lo * (1 + T_HALF_TOL), hi * (1 + T_HALF_TOL)], color="0.88", lw=0,
                      label=f"theory +-{T_HALF_TOL:.0%}")
    ax_t.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    for i in range(n):
        ax_t.plot(sm["t_narrow_pred"][:, i], sm["t_narrow"][:, i], "^", mfc="none", mec=colors[i], ms=4, alpha=0.7)
        ax_t.plot(sm["t_rand_pred"][:, i], sm["t_rand"][:, i], "x", color=colors[i], ms=4, alpha=0.8)
        ax_t.plot(sm["t_theory"][i], sm["t_bal"][i], "o", color=colors[i], ms=6, mec="k")
    ax_t.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="theory (tau/2s) ln(s/a0 - 1), steps",
             ylabel="measured t_half, steps")
    ax_t.set_title(f"time to half-learn (band +-{T_HALF_TOL:.0%})", fontsize=9)
    _log_ticks(ax_t, lo, hi)
    # (d) smallest Hessian eigenvalue at the checkpoints
    ck = np.asarray(res["checkpoint_steps"]) / tau_
    for i in range(n):
        ax_h.axhline(saddle_eigenvalue(s[i], n), color=colors[i], ls="--", lw=0.8)
    ax_h.axhline(0, color="k", lw=0.5)
    ax_h.plot(ck, res["rand_hessian_seed0"], **thin)
    ax_h.plot(ck[np.asarray(res["rand_mid_index"])], res["rand_hessian_mid"], "x", color="0.4", ms=4)
    ax_h.plot(ck, res["bal_hessian"][:, 0], color="k", marker=".", ms=3, lw=1.2, label="balanced init")
    ax_h.plot([], [], **thin, marker="x", ms=4, label="random init: seed 0; x: every seed")
    ax_h.plot([], [], color="0.3", ls="--", lw=0.8, label="-(2/n) s_i (saddle theory)")
    ax_h.plot(ck[sm["mid_bal"]], sm["lam_mid_bal"], "o", mfc="none", mec="k", ms=8, label="mid first plateau (check)")
    ax_h.set(xlabel=f"time t / tau   (tau = n/(2 eta) = {tau_:g} steps)", ylabel="smallest Hessian eigenvalue")
    ax_h.set_title("plateaus are saddles", fontsize=9)
    ax_h.legend(loc="lower right", bbox_to_anchor=(1.0, 0.07), fontsize=7, frameon=False)
    # (e) t_half / theory per mode and condition
    idx = np.arange(1, n + 1)
    ax_r.axhspan(1 - RANDOM_TOL, 1 + RANDOM_TOL, color="0.94", lw=0)
    ax_r.axhspan(1 - T_HALF_TOL, 1 + T_HALF_TOL, color="0.84", lw=0)
    ax_r.axhline(1, color="k", lw=0.8)
    for tol, what in ((RANDOM_TOL, "random"), (T_HALF_TOL, "balanced")):   # the bands named outside the frame
        ax_r.text(1.01, 1 + tol, f"+-{tol:.0%}\n{what}", transform=ax_r.get_yaxis_transform(), fontsize=7,
                  va="center")
    for i in range(n):
        ax_r.plot(np.full(sm["ratio_narrow"].shape[0], idx[i] + 0.22), sm["ratio_narrow"][:, i], "^", mfc="none",
                  mec=colors[i], ms=4, alpha=0.8)
        ax_r.plot(np.full(sm["ratio_rand"].shape[0], idx[i]), sm["ratio_rand"][:, i], "x", color=colors[i], ms=4)
        ax_r.plot(idx[i] - 0.22, sm["ratio_bal"][i], "o", color=colors[i], mec="k", ms=6)
    top = max(1 + RANDOM_TOL, np.nanmax(sm["ratio_narrow"]), np.nanmax(sm["ratio_rand"])) + 0.05
    ax_r.set(xticks=idx, xticklabels=[f"{i}\ns={v:g}" for i, v in zip(idx, s)], xlim=(0.5, n + 0.5),
             ylim=(min(1 - RANDOM_TOL, np.nanmin(sm["ratio_rand"])) - 0.05, top),
             xlabel="mode", ylabel="t_half measured / theory")
    ax_r.set_title("t_half / closed form per mode", fontsize=9)
    # (f) depth
    depths = np.asarray(res["depths"])
    td, ci = sm["t_depth"], sm["depth_ci"]
    jitter = np.random.default_rng(0).uniform(-0.1, 0.1, td.shape[1])
    for j, L in enumerate(depths):
        ax_d.plot(L + jitter, td[j], ".", color="0.5", ms=4, label="seeds" if j == 0 else None)
    ax_d.errorbar(depths, ci[:, 0], yerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]], color="k", marker="o",
                  capsize=4, lw=1.2, label=f"mean, {CONFIDENCE:.0%} t-interval")
    ax_d.set(yscale="log", xticks=depths, xlim=(depths[0] - 0.4, depths[-1] + 0.4), xlabel="depth (weight layers)",
             ylabel="t_half of mode 1, steps")
    ax_d.set_title(f"depth, random init std {cfg.depth_init_std:g} per layer", fontsize=9)
    ylo, yhi = np.nanmin(td), np.nanmax(np.concatenate([td.ravel(), ci[:, 2]]))
    ax_d.set_ylim(ylo / 1.5, yhi * 3)
    _log_ticks(ax_d, ylo / 1.5, yhi * 3, axis="y")
    ax_d.legend(loc="upper left", fontsize=7, frameon=False)

    handles = [Line2D([], [], color=colors[i], lw=2) for i in range(n)]
    labels = [f"mode {i + 1}: s = {s[i]:g}" for i in range(n)]
    handles += [Line2D([], [], ls="none", marker="o", color="0.5", mec="k", ms=5),
                Line2D([], [], ls="none", marker="x", color="0.3", ms=4),
                Line2D([], [], ls="none", marker="^", mfc="none", mec="0.3", ms=4)]
    labels += ["(c), (e): balanced init (a0)", f"random init, width {cfg.random_width} (a0_eff)",
               f"random init, width {n} (not checked)"]
    fig.legend(handles, labels, loc="upper center", ncol=max(n, 3) if n <= 4 else 4,
               bbox_to_anchor=(0.5, 0.935), fontsize=8, frameon=False)
    fig.suptitle(f"A deep linear net learns one singular mode at a time\n"
                 f"full-batch GD, eta = {float(res['learning_rate']):g}, n = {n}, a0 = {a0:g}, MSE = mean over "
                 f"examples and outputs, tau = n/(2 eta)", fontsize=9, y=0.995)
    plotting.panel_letters(axes)
    fig.tight_layout()
    fig.subplots_adjust(top=0.80)
    return fig

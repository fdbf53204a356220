"""Figure of saddles_in_training: (a) training loss, (b) negative spectral mass, (c) gradient
overlap with the top-k / bottom-k eigenspaces, (d) spectral density near zero at init and end.

Not an experiment (the leading underscore keeps it out of the registry).
"""
from __future__ import annotations

import numpy as np

from matplotlib.lines import Line2D

from lossatlas import plotting

from ._saddles_training_stats import AGREE, mean_ci, names

LEGEND = dict(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, handlelength=2.8)


def _symlog(ax, steps):
    ax.set_xscale("symlog", linthresh=max(1, int(steps[1])))
    ax.set_xlim(0, steps[-1] * 1.15)


def plot(res: dict, cfg) -> dict:
    steps = np.asarray(res["checkpoint_steps"])
    nm, G = names(res), len(res["momentums"])
    chance = float(np.asarray(res["chance"]).flat[0])
    fig, axes = plotting.figure(ncols=2, nrows=2, width=4.6, height=3.0)
    (ax_l, ax_i), (ax_o, ax_d) = axes
    for ax in (ax_i, ax_o):
        ax.sharex(ax_l)

    # (a) training loss: minibatch loss per step, averaged over an epoch and over seeds
    loss = np.asarray(res["train_loss_steps"], float)                           # [G, S, T]
    T = loss.shape[-1]
    w = max(1, T // cfg.epochs)
    smooth = loss[..., : T // w * w].reshape(loss.shape[:2] + (-1, w)).mean(-1)  # [G, S, T / w]
    x = (np.arange(smooth.shape[-1]) + 0.5) * w
    for g in range(G):
        plotting.mean_band(ax_l, x, smooth[g], color=f"C{g}", label=f"{nm[g]} (minibatch,\nepoch mean)")
        ax_l.plot(steps, res["loss"][g].mean(0), "o", color=f"C{g}", ms=3.5, mfc="none")
    _symlog(ax_l, steps)
    ax_l.set(ylabel="training loss (cross-entropy)")
    ax_l.set_title("training loss", fontsize=9)
    ax_l.legend(handles=ax_l.get_legend_handles_labels()[0] + [
        Line2D([], [], color="0.3", marker="o", mfc="none", ls="none", label="curvature subset")], **LEGEND)

    # (b) negative spectral mass with 95% CI over seeds; mean SLQ stderr as error bars
    for g in range(G):
        m, h = mean_ci(res["index"][g], axis=0)
        ax_i.fill_between(steps, m - h, m + h, color=f"C{g}", alpha=0.2, lw=0)
        ax_i.errorbar(steps, m, yerr=res["index_stderr"][g].mean(0), color=f"C{g}", marker="o", ms=3, lw=1.2,
                      capsize=2)
        ax_i.plot(steps, res["index_rounding"][g].mean(0), color=f"C{g}", ls=":", lw=1.0)
        if "dense_index" in res:
            ax_i.plot(steps[[0, -1]], res["dense_index"][:, g], "x", color=f"C{g}", ms=7, mew=1.5)
            ax_i.plot(steps[[0, -1]], res["dense_index_rounding"][:, g], "+", color=f"C{g}", ms=7, mew=1.2)
    ax_i.set(ylabel="negative spectral mass (index)", ylim=(0, None))
    title = f"mass below -{cfg.index_rel_tol:g} max|lambda|"
    if "dense_index" in res:                      # the report-only SLQ-vs-exact check, as it judges it
        err = np.abs(np.asarray(res["index"])[:, 0, [0, len(steps) - 1]].T - res["dense_index"]).max()
        if err > AGREE:
            title += f"\nSLQ off exact by {err:.3f} (> {AGREE:g})"
    ax_i.set_title(title, fontsize=9)
    ax_i.legend(handles=[
        Line2D([], [], color="0.3", marker="o", ms=3, label="SLQ mean, 95% CI band\n(bars: SLQ stderr)"),
        Line2D([], [], color="0.3", ls=":", label="SLQ, rounding-level tol"),
        Line2D([], [], color="0.3", marker="x", ls="none", label="exact (dense), seed 0"),
        Line2D([], [], color="0.3", marker="+", ls="none", label="exact, rounding-level tol")], **LEGEND)

    # (c) overlap of the gradient with the top-k and bottom-k eigenspaces
    for g in range(G):
        for key, ls, what in (("top_overlap", "-", f"top-{cfg.k}"), ("bottom_overlap", "--", f"bottom-{cfg.k}")):
            v = np.asarray(res[key][g], float)
            ax_o.plot(steps, v.mean(0), color=f"C{g}", ls=ls, marker="o", ms=3)
            ax_o.fill_between(steps, v.min(0), v.max(0), color=f"C{g}", alpha=0.12, lw=0)
    ax_o.axhline(chance, color="k", ls=":", lw=1.0)
    ax_o.set(yscale="log", xlabel="step", ylabel="|P g|^2 / |g|^2")
    ax_o.set_title(f"gradient's share, k = {cfg.k}", fontsize=9)
    ax_o.legend(handles=[Line2D([], [], color="0.3", marker="o", ms=3, label="top-k (most positive)"),
                         Line2D([], [], color="0.3", ls="--", marker="o", ms=3, label="bottom-k (most negative)"),
                         Line2D([], [], color="k", ls=":", label=f"chance k/P = {chance:.4f}")], **LEGEND)

    # (d) spectral density near zero at init and end (mean over seeds), x in units of lambda_max
    u = np.asarray(res["density_x"])
    zoom = (u >= -0.12) & (u <= 0.12)
    for g in range(G):
        for j, (ls, when) in enumerate(((":", "init"), ("-", "end"))):
            if j == 0 and g > 0:
                continue                         # init is shared by the optimizers (same seeds)
            d = np.asarray(res["density"][j, g], float).mean(0)
            ax_d.plot(u[zoom], d[zoom], color="k" if j == 0 else f"C{g}", ls=ls, lw=1.2,
                      label=f"{'init' if j == 0 else nm[g] + ', end'}")
    ax_d.axvline(-cfg.index_rel_tol, color="0.4", lw=0.8, ls="--", label=f"-{cfg.index_rel_tol:g} (index tol)\nsmoothing sigma {cfg.density_sigma:g}")
    peak = max(np.max(line.get_ydata()) for line in ax_d.get_lines())
    ax_d.set(yscale="log", ylim=(1e-4 * peak, 2 * peak), xlabel="eigenvalue / lambda_max",
             ylabel="SLQ density")
    ax_d.set_title("spectral density near 0", fontsize=9)

    ax_d.legend(**LEGEND)
    fig.suptitle(f"Saddles along training: MLP {tuple(cfg.widths)} {cfg.activation} on MNIST-1D, P = "
                 f"{int(res['num_params'])}, {cfg.seeds} seeds, Hessian on {cfg.curvature_examples} training "
                 f"examples", fontsize=9)
    plotting.panel_letters(axes)
    fig.tight_layout()
    return {"saddles_in_training": fig}

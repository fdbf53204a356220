"""Paper-style matplotlib figures, drawn from saved results (arrays), never from live state."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PAPER_RC = {
    "figure.dpi": 100,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "savefig.bbox": "tight",
}


def figure(ncols: int = 1, nrows: int = 1, width: float = 3.2, height: float = 2.6, **kw):
    """A figure with paper defaults; ``width``/``height`` are per panel, in inches."""
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    for ax in axes.flat:
        for k, v in (("top", False), ("right", False)):
            ax.spines[k].set_visible(v)
        ax.grid(True, alpha=0.25)
    return fig, axes


def mean_band(ax, x, ys, label=None, color=None, alpha=0.2, band=True, **kw):
    """Plot the mean over the leading (seed) axis of ``ys`` with a +-1 sd band.

    Args:
      ax: matplotlib axes.
      x: [T] x values.
      ys: [S, T] values for S seeds (NaNs ignored).
      label, color: line label and colour.
      band: draw the +-1 sd band (off for log axes where mean - sd can be <= 0).

    Returns:
      The line artist.
    """
    ys = np.asarray(ys, dtype=float).reshape(-1, np.asarray(ys).shape[-1])
    mean = np.nanmean(ys, axis=0)
    sd = np.nanstd(ys, axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    if band and ys.shape[0] > 1:
        ax.fill_between(x, mean - sd, mean + sd, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def close(fig) -> None:
    plt.close(fig)


def log_xticks(ax, values) -> None:
    """Log-scale x axis labelled exactly at ``values`` (no crowded minor labels)."""
    values = list(values)
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


def stamp_failed_checks(fig, checks) -> bool:
    """Stamp the names of failed checks on a figure, in red along its bottom edge.

    The runner calls this on every figure of a run, so a figure whose checks failed
    never reads as a success on its own.

    Args:
      fig: matplotlib figure.
      checks: check records (dicts with ``name`` and ``passed``).

    Returns:
      True if anything was stamped.
    """
    from lossatlas.checks import is_gating

    failed = [c["name"] + ("" if is_gating(c) else " (report-only)") for c in checks if not c.get("passed", False)]
    if not failed:
        return False
    text = "FAILED CHECK" + ("S" if len(failed) > 1 else "") + ": " + "; ".join(failed)
    fig.text(0.5, -0.02, text, ha="center", va="top", color="#b00000", fontsize=8, fontweight="bold", wrap=True)
    return True

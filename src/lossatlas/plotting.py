"""Paper-style matplotlib figures, drawn from saved results (arrays), never from live state.

The helpers make the readable thing the default: :func:`legend_outside` (legends never
over data), :func:`panel_letters` (generated, never duplicated), :func:`log_axis` (enough
labelled ticks to read a slope), :func:`stamp_source` (the paper and figure a plot
mirrors, stamped by the runner from an experiment's ``FIGURE``) and
:func:`stamp_failed_checks`. :func:`lint_figure` finds what a reviewer would flag: a legend
over plotted data, overprinted tick labels, a log axis with too few labels, a duplicated
panel letter.
"""
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
    fig.text(0.5, min(-0.02, _bottom(fig) - 0.02), text, ha="center", va="top", color="#b00000", fontsize=8,
             fontweight="bold", wrap=True)
    return True


def _bottom(fig) -> float:
    """The lowest point any artist of ``fig`` reaches (a figure legend below the panels, x
    labels), in figure coordinates, so a stamp placed under it overlaps nothing."""
    fig.draw_without_rendering()  # layout and extents, no pixels
    return fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_size_inches()[1]


#: The ``gid`` of panel-letter texts (so :func:`lint_figure` can find them).
PANEL_LETTER_GID = "lossatlas-panel-letter"
_LETTER_RE = r"^\(?[a-z]\)?$"


def panel_letters(axes, *, start: int = 0, fmt: str = "({})", x: float = -0.02, y: float = 1.02,
                  title_size: float | None = None, **kw) -> list:
    """Letter every visible panel (a), (b), ... in reading order, top-left outside the axes.

    Letters are generated, so they never repeat or skip; invisible axes (``ax.axis("off")``
    placeholders) are skipped.

    Args:
      axes: an axes, a sequence or an array of axes (row-major order is reading order).
      start: index of the first letter (0 -> "a").
      fmt: format of a letter.
      x, y: position in axes coordinates (default: just above the top-left corner).
      title_size: if given, every axes' title is set to this font size (titles set after
        :func:`figure` render at matplotlib's default size, not the paper's, otherwise).
      **kw: passed to ``ax.text``.

    Returns:
      The text artists.
    """
    every = [a for a in np.asarray(axes, dtype=object).ravel() if a is not None]
    if title_size is not None:
        for a in every:
            a.title.set_fontsize(title_size)
    flat = [a for a in every if a.get_visible() and a.axison]
    if start < 0 or start + len(flat) > 26:
        raise ValueError(f"panel_letters: start must be in [0, {26 - len(flat)}] for {len(flat)} panels, got {start}")
    style = {"fontweight": "bold", "fontsize": 10, "ha": "right", "va": "bottom"} | kw
    return [ax.text(x, y, fmt.format(chr(ord("a") + start + i)), transform=ax.transAxes, gid=PANEL_LETTER_GID,
                    **style) for i, ax in enumerate(flat)]


def legend_outside(ax, where: str = "right", **kw):
    """A legend placed outside the axes, so it never covers data.

    Args:
      ax: matplotlib axes (its labelled artists make the legend).
      where: "right" (beside the axes, top-aligned) or "below" (under the x label, in
        up to four columns).
      **kw: passed to ``ax.legend`` (e.g. ``handles``, ``labels``, ``title``, ``ncol``).

    Returns:
      The legend.
    """
    if where == "right":
        style = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
    elif where == "below":
        n = len(kw.get("labels") or ax.get_legend_handles_labels()[1])
        style = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.18), "ncol": max(1, min(4, n))}
    else:
        raise ValueError(f"legend_outside: where must be 'right' or 'below', got {where!r}")
    return ax.legend(**(style | {"frameon": False, "fontsize": PAPER_RC["legend.fontsize"]} | kw))


def figure_legend(fig, handles, labels, *, where: str = "below", **kw):
    """One legend for the whole figure, outside every panel (below, or to the right).

    Use it when every panel shares the same variants (one colour per variant).

    Args:
      fig: matplotlib figure.
      handles, labels: legend entries.
      where: "below" (a row under the panels) or "right".
      **kw: passed to ``fig.legend``.

    Returns:
      The legend.
    """
    if where == "below":
        style = {"loc": "upper center", "bbox_to_anchor": (0.5, 0.0), "ncol": max(1, min(6, len(labels)))}
    elif where == "right":
        style = {"loc": "center left", "bbox_to_anchor": (1.0, 0.5)}
    else:
        raise ValueError(f"figure_legend: where must be 'below' or 'right', got {where!r}")
    return fig.legend(handles, labels, **(style | {"frameon": False, "fontsize": PAPER_RC["legend.fontsize"]} | kw))


def log_axis(ax, axis: str = "x", *, min_labels: int = 3, max_labels: int = 8) -> None:
    """Log-scale an axis with at least ``min_labels`` labelled ticks inside its limits.

    Decades are labelled (every decade, or every k-th when more than ``max_labels`` would
    overprint); when the limits span too few
    decades for ``min_labels`` labels, the 2x and 5x ticks are labelled too, so a slope can
    be read off. Call it after the data are plotted (it reads the limits).

    Args:
      ax: matplotlib axes.
      axis: "x" or "y".
      min_labels: labelled ticks wanted inside the limits.
      max_labels: at most about this many decade labels (wide ranges label every k-th decade).
    """
    from matplotlib import ticker

    if axis not in ("x", "y"):
        raise ValueError(f"log_axis: axis must be 'x' or 'y', got {axis!r}")
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    lo = max(lo, np.finfo(float).tiny)
    a = getattr(ax, axis + "axis")
    decades = [10.0 ** k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)]
    inside = [d for d in decades if lo <= d <= hi]
    fmt = ticker.LogFormatterSciNotation()
    if len(inside) >= min_labels:  # at most ~8 labels: every k-th decade on wide ranges, so none overprint
        a.set_major_locator(ticker.LogLocator(base=10, numticks=min(len(decades) + 2, max_labels)))
        a.set_major_formatter(fmt)
        return
    for subs in ((1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)):
        ticks = [d * s for d in decades for s in subs if lo <= d * s <= hi]
        if len(ticks) >= min_labels:
            break
    a.set_major_locator(ticker.FixedLocator(ticks))
    a.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_minor_formatter(ticker.NullFormatter())


def stamp_source(fig, source: str) -> None:
    """Name the paper and figure a plot mirrors, in small grey type above the top-left corner.

    The runner calls this with an experiment module's ``FIGURE`` (e.g. "Ghorbani et al.
    2019, Fig. 1"), so every saved figure says what it reproduces.

    Args:
      fig: matplotlib figure.
      source: the paper and figure, e.g. "Li et al. 2018, Fig. 5".
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"stamp_source: source must be a non-empty string, got {source!r}")
    fig.text(0.0, 1.0, "After " + source.strip(), ha="left", va="bottom", color="0.35", fontsize=8,
             fontstyle="italic", transform=fig.transFigure)


def _covers_data(ax, box):
    """The label of the first line or scatter series of ``ax`` drawn inside display box ``box``."""
    from matplotlib.collections import PathCollection

    for line in ax.lines:
        if line.get_visible() and len(line.get_xydata()):
            path = line.get_transform().transform_path(line.get_path())
            finite = np.isfinite(path.vertices).all(axis=1)
            pts = path.vertices[finite]
            if len(pts) == 1 and box.contains(*pts[0]):
                return line.get_label()
            if len(pts) > 1 and line.get_linestyle() not in ("None", "none", "", " "):
                from matplotlib.path import Path
                if Path(pts).intersects_bbox(box, filled=False):
                    return line.get_label()
            if len(pts) and line.get_marker() not in (None, "None", "none", "", " "):
                if any(box.contains(x, y) for x, y in pts):
                    return line.get_label()
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and coll.get_visible() and len(coll.get_offsets()):
            pts = coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), dtype=float))
            if any(box.contains(x, y) for x, y in pts if np.isfinite(x) and np.isfinite(y)):
                return coll.get_label()
    return None


def lint_figure(fig) -> list[str]:
    """What a reviewer would flag in a figure, as one line per problem (empty: clean).

    Checks every visible axes for: a legend inside the axes that covers a plotted line or
    scatter point; overprinted tick labels; a log axis with fewer than two labelled ticks
    inside its limits; and, for the figure, a panel letter used twice.

    Args:
      fig: a matplotlib figure (drawn here with the Agg canvas).

    Returns:
      Problems, e.g. ``"panel 2 ('loss vs step'): legend covers 'adam'"``.
    """
    import re

    fig.draw_without_rendering()  # layout and extents, no pixels
    renderer = fig.canvas.get_renderer()
    problems: list[str] = []
    letters: list[str] = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = f"panel {i} ({ax.get_title()[:40]!r})"
        letters += [t.get_text() for t in ax.texts if t.get_gid() == PANEL_LETTER_GID
                    or (re.match(_LETTER_RE, t.get_text().strip()) and t.get_transform() == ax.transAxes)]
        leg = ax.get_legend()
        if leg is not None and leg.get_visible():
            from matplotlib.transforms import Bbox
            inside = Bbox.intersection(leg.get_window_extent(renderer), ax.get_window_extent(renderer))
            label = _covers_data(ax, inside) if inside is not None else None
            if label is not None:
                problems.append(f"{name}: legend covers " + ("an unlabelled line" if label.startswith("_") else repr(label)))
        if not ax.axison:
            continue
        for axis_name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            lo, hi = sorted(ax.get_xlim() if axis_name == "x" else ax.get_ylim())
            ticks = [t for t in axis.get_major_ticks() + axis.get_minor_ticks()
                     if t.label1.get_visible() and t.label1.get_text().strip()
                     and lo - 1e-9 * abs(lo) <= t.get_loc() <= hi + 1e-9 * abs(hi)]  # negative limits too
            boxes = sorted((t.label1.get_window_extent(renderer) for t in ticks),
                           key=lambda b: b.x0 if axis_name == "x" else b.y0)
            if any(a.overlaps(b) for a, b in zip(boxes, boxes[1:])):
                problems.append(f"{name}: {axis_name} tick labels overprint")
            if axis.get_scale() == "log" and len(ticks) < 2:
                problems.append(f"{name}: log {axis_name} axis has {len(ticks)} labelled tick(s)")
    dupes = sorted({t for t in letters if letters.count(t) > 1})
    if dupes:
        problems.append(f"panel letters used twice: {', '.join(dupes)}")
    return problems

"""Figures drawn from a run folder: what the runner does after a run, and ``lossatlas plot``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from lossatlas.results.folders import save_figure
from lossatlas.results.jsonio import write_json
from lossatlas.results.store import load_results
from lossatlas.results.summary import read_checks


def draw_figures(folder: str | os.PathLike, plot: Callable[[dict, Any], dict], cfg: Any, *,
                 out: str | os.PathLike | None = None, source: str | None = None) -> list[Path]:
    """Draw a run's figures from what its folder saved, never from live results.

    The results are read back with :func:`lossatlas.results.load_results`, handed to
    ``plot(results, cfg)``, each figure is stamped with the paper and figure it mirrors
    (``source``) and the run's failed checks (from ``checks.json``, when there is one),
    saved as PNG and PDF, and checked by :func:`lossatlas.plotting.lint_figure`; the
    problems found (a legend over data, overprinted ticks, ...) are written to
    ``figures.json`` beside the figures (``{name: {"files": [...], "lint": [...]}}``).

    Args:
      folder: the run folder (complete, or the partial folder of a run being written).
      plot: the experiment's ``plot(results, cfg) -> {name: matplotlib figure}``.
      cfg: the experiment's Config for this run.
      out: where to write the figures (default: ``folder``); created if missing.
      source: the paper and figure the plot mirrors (an experiment module's ``FIGURE``),
        stamped above each figure; None stamps nothing.

    Returns:
      The paths written, PNG and PDF per figure.
    """
    import matplotlib.pyplot as plt

    from lossatlas import plotting

    folder = Path(folder)
    res = load_results(folder)
    checks = read_checks(folder / "checks.json") if (folder / "checks.json").exists() else []
    dest = Path(out) if out is not None else folder
    dest.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    index: dict = {}
    for name, fig in plot(res, cfg).items():
        try:
            if source is not None:
                plotting.stamp_source(fig, source)
            plotting.stamp_failed_checks(fig, checks)
            files = save_figure(fig, dest, name)
            paths += files
            index[name] = {"files": [f.name for f in files], "lint": plotting.lint_figure(fig)}
        finally:
            plt.close(fig)
    write_json(dest / "figures.json", index)
    return paths

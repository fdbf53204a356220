"""Run folders: what a run wrote, read back, shown and re-plotted.

A complete run folder ``runs/<experiment>/<id>/`` holds:

- ``config.json`` (experiment, quick, the Config), ``environment.json`` (versions,
  devices, compile settings, git commit);
- ``arrays.npz`` and ``results.json``: everything the experiment's ``run`` returned
  (:func:`save_results`; :func:`load_results` gives it back with the same nesting and types);
- ``table.md`` / ``table.csv`` and ``metrics.json`` (seconds, resumed, the table rows,
  checks_passed); ``checks.json`` (check records, :mod:`lossatlas.checks`);
- the figures (``NAME.png`` and ``NAME.pdf``), drawn by :func:`draw_figures` from the saved
  results only, so ``lossatlas plot RUN_DIR`` can draw them again;
- ``COMPLETE``: written last; a folder without it is not a run (see :func:`new_run`).

:func:`build_report` turns complete run folders into one HTML page and one Markdown file
(figures, each check's paper value next to ours, negative results, environment;
``lossatlas reproduce`` and ``lossatlas report``); :func:`find_run` finds a complete run made
with a given config (``lossatlas reproduce`` skips those).

Table cells. A table is a list of row dicts; each cell is a number, a string label, or a
stat cell ``stat(values, scale=1.0, digits=2, spread="sd")``: the plain dict
``{"mean": 31.6, "sd": 0.8, "n": 5, "digits": 1}`` (spread ``"sd"``, ``"sem"`` or
``"ci95"``). ``metrics.json`` stores the cell as these numbers; ``table.md`` shows it as
``31.6 +- 0.8``; ``table.csv`` as two columns, ``<column>`` and ``<column> sd``.
Write ``{"test acc": stat(acc, scale=100, digits=1)}``, never ``f"{m:.1f} +- {s:.1f}"``.
"""
from lossatlas.results.cells import SPREADS, format_cell, format_table, is_stat, stat
from lossatlas.results.environment import environment, git_commit
from lossatlas.results.folders import (CHECKPOINTS, COMPLETE_MARKER, OWNER_FILE, OutDirError, Run, check_out_dir,
                                       completed_at, find_run, is_complete, iter_runs, new_run, save_figure)
from lossatlas.results.jsonio import jsonable, read_json, write_json
from lossatlas.results.partial import clean_partial, list_partial, partial_info, partial_text, resolve_partial
from lossatlas.results.replot import draw_figures
from lossatlas.results.report import FailedRun, ReportPaths, build_report, latest_runs
from lossatlas.results.store import ARRAYS_FILE, RESULTS_FILE, load_arrays, load_results, save_results
from lossatlas.results.summary import read_checks, summary_text

__all__ = [
    "ARRAYS_FILE", "CHECKPOINTS", "COMPLETE_MARKER", "FailedRun", "OWNER_FILE", "OutDirError", "RESULTS_FILE",
    "ReportPaths", "Run", "SPREADS", "build_report", "check_out_dir", "clean_partial", "completed_at", "draw_figures", "environment",
    "find_run", "format_cell", "format_table", "git_commit", "is_complete", "is_stat", "iter_runs", "jsonable",
    "latest_runs", "list_partial", "load_arrays", "load_results", "new_run", "partial_info", "partial_text",
    "read_checks", "read_json", "resolve_partial", "save_figure", "save_results", "stat", "summary_text", "write_json",
]

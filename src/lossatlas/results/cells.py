"""Table cells: numbers stay numbers in ``metrics.json``; formatting happens only in ``table.md``.

A table is a list of row dicts. A cell is a number, a string label, or a *stat cell* from
:func:`stat`: a plain dict ``{"mean", <spread>, "n", "digits"}`` (``<spread>`` is one of
``"sd"``, ``"sem"``, ``"ci95"``) that ``table.md`` shows as ``"31.6 +- 0.8"`` and
``metrics.json`` stores as numbers.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

SPREADS = ("sd", "sem", "ci95")


def stat(values, *, scale: float = 1.0, digits: int = 2, spread: str = "sd", significant: bool = False,
         ddof: int = 0) -> dict:
    """A numeric table cell: the mean of ``values`` and their spread.

    Args:
      values: numbers (any shape; flattened). NaNs are kept, so a diverged seed shows as
        ``nan`` instead of vanishing from the mean.
      scale: multiply mean and spread by this (e.g. 100 for percent).
      digits: decimals shown in ``table.md`` (significant digits with ``significant``).
      spread: ``"sd"`` (standard deviation over the values, ddof=0 as numpy's ``std``),
        ``"sem"`` (standard error of the mean, ddof=1) or ``"ci95"`` (half-width of the
        95% Student-t confidence interval of the mean).
      significant: format with ``digits`` significant digits (``%g``) instead of decimals.
      ddof: delta degrees of freedom of ``"sd"`` (0: numpy's default; 1: the sample sd).

    Returns:
      ``{"mean": float, spread: float, "n": int, "digits": int}`` (plus
      ``"significant": True`` when set). Spreads of a single value are 0.
    """
    from lossatlas import validate
    validate.one_of("stat", "spread", spread, SPREADS)
    validate.integer("stat", "digits", digits, lo=0)
    x = np.asarray(values, dtype=np.float64).ravel() * float(scale)
    n = int(x.size)
    if n == 0:
        raise ValueError("stat: values must hold at least one number, got an empty array")
    mean = float(x.mean())
    if spread == "sd":
        s = float(x.std(ddof=ddof)) if n > ddof else 0.0
    elif n < 2:
        s = 0.0
    else:
        sem = float(x.std(ddof=1) / math.sqrt(n))
        if spread == "sem":
            s = sem
        else:
            from scipy import stats
            s = float(stats.t.ppf(0.975, n - 1) * sem)
    cell = {"mean": mean, spread: s, "n": n, "digits": int(digits)}
    if significant:
        cell["significant"] = True
    return cell


def is_stat(cell: Any) -> bool:
    """True for a :func:`stat` cell (also after a JSON round trip)."""
    return isinstance(cell, Mapping) and "mean" in cell and "n" in cell and any(s in cell for s in SPREADS)


def spread_of(cell: Mapping) -> str:
    """The spread key of a stat cell (``"sd"``, ``"sem"`` or ``"ci95"``)."""
    return next(s for s in SPREADS if s in cell)


def _num(v, digits: int, significant: bool) -> str:
    if v is None:  # a non-finite number after a JSON round trip
        return "nan"
    return f"{v:.{digits}g}" if significant else f"{v:.{digits}f}"


def format_cell(cell: Any) -> str:
    """How ``table.md`` shows a cell: stat cells as ``"mean +- spread"``, floats to 4
    significant digits, everything else as ``str``."""
    if is_stat(cell):
        d, sig = int(cell.get("digits", 2)), bool(cell.get("significant", False))
        return f"{_num(cell['mean'], d, sig)} +- {_num(cell[spread_of(cell)], d, sig)}"
    if isinstance(cell, (float, np.floating)):
        return f"{float(cell):.4g}"
    return str(cell)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A Markdown table from a list of row dicts (cells through :func:`format_cell`)."""
    if not rows:
        return "(empty table)\n"
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(format_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_rows(rows: list[dict], columns: list[str]) -> tuple[list[str], list[dict]]:
    """Columns and rows for ``table.csv``: a column holding stat cells becomes two numeric
    columns, ``<name>`` (the mean) and ``<name> <spread>``."""
    out_cols, split = [], {}
    for c in columns:
        cells = [r[c] for r in rows if is_stat(r.get(c))]
        out_cols.append(c)
        if cells:
            split[c] = f"{c} {spread_of(cells[0])}"
            out_cols.append(split[c])
    out_rows = []
    for r in rows:
        row = {}
        for c in columns:
            v = r.get(c, "")
            if c in split and is_stat(v):
                row[c], row[split[c]] = v["mean"], v[spread_of(v)]
            else:
                row[c] = v
        out_rows.append(row)
    return out_cols, out_rows

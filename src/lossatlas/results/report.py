"""A reproduction report from run folders: ``index.html`` and ``report.md`` in one folder.

:func:`build_report` reads complete run folders (``config.json``, ``metrics.json``,
``checks.json``, ``environment.json`` and the figure PNGs; nothing is recomputed) and writes

- ``OUT/index.html``: one self-contained page (inline CSS, no scripts, no external assets;
  every text from the run folders goes through :func:`html.escape`);
- ``OUT/report.md``: the same content as Markdown;
- ``OUT/figures/<experiment>/<figure>.png``: copies of every run's figures, so the report
  folder alone (zipped, moved, opened anywhere) shows them.

Both pages hold, in order: a summary table (experiment, mode, status, gating checks passed /
failed, report-only checks failed, runtime); a note that quick runs are smoke-scale while the
paper values are for the full recipe (when any run is quick); every *negative result* (a failed
report-only check: a paper claim our run does not reproduce) in one list; one environment block
(versions, backend, devices, commit: from the runs' ``environment.json``, with the experiments
named where they differ); then per experiment its claim, its figures, a table of its checks (the
paper's value next to ours, the tolerance, the verdict: ``PASS`` / ``FAIL`` for gating checks,
``pass (report-only)`` / ``NEGATIVE RESULT`` for report-only ones, and the detail), its measured
table (``metrics.json``'s rows; folded away in the HTML), its runtime and a relative link to its
run folder (``lossatlas reproduce`` puts the report in ``DIR/report/`` next to the runs, so
zipping ``DIR`` keeps those links working). Experiments that raised are rows with their one-line
reason (:class:`FailedRun`).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import os
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from lossatlas.checks import gating_failures, is_gating
from lossatlas.results.cells import format_cell
from lossatlas.results.folders import completed_at, is_complete, iter_runs
from lossatlas.results.jsonio import read_json
from lossatlas.results.summary import read_checks

HTML_FILE = "index.html"
MARKDOWN_FILE = "report.md"
FIGURES_DIR = "figures"
#: What a quick report says about the paper values next to ours.
QUICK_NOTE = ("Quick mode: these are smoke-scale runs (the modules' QUICK configs: fewer seeds, epochs, "
              "examples). The paper values are for the full recipe (`lossatlas reproduce --full`); a quick "
              "number that differs from the paper's says nothing about the reproduction. Gating checks are "
              "the ones a quick run must pass.")
#: What the negative-results list is.
NEGATIVE_NOTE = ("Report-only checks that failed: claims these runs do not bear out (a paper value not "
                 "reproduced, or an original check kept for the record after a revision). They decide no exit "
                 "code, and they are part of the result.")
#: The environment fields the report shows, in order, with their labels.
ENV_FIELDS = (("backend", "JAX backend"), ("devices", "devices"), ("device_count", "device count"),
              ("platform", "platform"), ("processor", "processor"), ("cpu_count", "CPU count"),
              ("matmul_precision", "matmul precision"), ("xla_flags", "XLA flags"), ("git_commit", "git commit"))

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 1.5em auto;
       padding: 0 1em; color: #1d1d1d; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; } h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #176b1c; font-weight: bold; } .fail { color: #b00000; font-weight: bold; }
.error { color: #fff; background: #b00000; font-weight: bold; padding: 0 0.3em; }
tr.negative td { background: #fff3e0; } .negative-label { color: #a04000; font-weight: bold; }
.note { background: #fffbe6; border-left: 4px solid #e0b000; padding: 0.5em 0.8em; }
.claim { font-style: italic; } pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; }
.meta { color: #555; font-size: 0.9em; }
"""


@dataclasses.dataclass(frozen=True)
class FailedRun:
    """An experiment that raised instead of writing a run folder: a row of the report.

    Attributes:
      experiment: its name.
      reason: one line (``"<ErrorType>: <first line of the message>"``).
      mode: ``"quick"`` or ``"full"`` (``""`` when unknown).
    """
    experiment: str
    reason: str
    mode: str = ""


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    """What :func:`build_report` wrote (absolute paths).

    Attributes:
      html: ``OUT/index.html``.
      markdown: ``OUT/report.md``.
      figures: the copied figure PNGs under ``OUT/figures/``.
    """
    html: Path
    markdown: Path
    figures: tuple[Path, ...] = ()


@dataclasses.dataclass
class _Run:
    """One run folder as the report shows it."""
    experiment: str
    path: Path
    mode: str
    seconds: float | None
    checks: list[dict]
    environment: dict
    figures: list[Path]  # the copies in the report folder
    table: list[dict] = dataclasses.field(default_factory=list)  # metrics.json's table rows
    reused: bool = False

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(k for row in self.table for k in row))

    @property
    def gating(self) -> list[dict]:
        return [c for c in self.checks if is_gating(c)]

    @property
    def negatives(self) -> list[dict]:
        return [c for c in self.checks if not is_gating(c) and not c["passed"]]

    @property
    def status(self) -> str:
        return "FAIL" if gating_failures(self.checks) else "PASS"


def latest_runs(root: str | os.PathLike, experiments: Iterable[str] | None = None) -> list[Path]:
    """The newest complete run folder (by :func:`lossatlas.results.completed_at`) of each experiment
    under a results root.

    Args:
      root: a results root (``ROOT/<experiment>/<id>/``).
      experiments: only these names (default: every sub-folder holding a complete run).

    Returns:
      The run folders, sorted by experiment name.

    Raises:
      FileNotFoundError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no results folder at {root}")
    names = sorted(experiments) if experiments is not None else sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    out = []
    for name in names:
        runs = list(iter_runs(root, name))
        if runs:
            out.append(max(runs, key=lambda p: (completed_at(p), p.name)))
    return out


def _run_folders(runs) -> list[Path]:
    """``runs`` (a results root, one run folder, or run folders) as a list of run folders."""
    if isinstance(runs, (str, os.PathLike)):
        path = Path(runs)
        if is_complete(path):
            return [path]
        return latest_runs(path)
    folders = [Path(p) for p in runs]
    for p in folders:
        if not p.is_dir():
            raise FileNotFoundError(f"no run folder at {p}")
        if not is_complete(p):
            raise ValueError(f"{p} is not a complete run (no COMPLETE marker)")
    return folders


def _read_optional(path: Path, default):
    return read_json(path) if path.exists() else default


def _load_run(path: Path, out: Path, reused: bool) -> _Run:
    cfg = _read_optional(path / "config.json", {})
    experiment = cfg.get("experiment") if isinstance(cfg, dict) else None
    experiment = experiment or path.parent.name
    quick = cfg.get("quick") if isinstance(cfg, dict) else None
    mode = "quick" if quick else ("full" if quick is False else "?")
    metrics = _read_optional(path / "metrics.json", {})
    seconds = metrics.get("seconds") if isinstance(metrics, dict) else None
    checks = read_checks(path / "checks.json") if (path / "checks.json").exists() else []
    env = _read_optional(path / "environment.json", {})
    dest = out / FIGURES_DIR / experiment
    figures = []
    for png in sorted(path.glob("*.png")):
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, dest / png.name)
        figures.append(dest / png.name)
    table = metrics.get("table") if isinstance(metrics, dict) else None
    table = [row for row in table if isinstance(row, dict)] if isinstance(table, list) else []
    return _Run(experiment, path.resolve(), mode, seconds if isinstance(seconds, (int, float)) else None,
                checks, env if isinstance(env, dict) else {}, figures, table, reused)


# ------------------------------------------------------------------------------ formatting

def format_value(value: Any) -> str:
    """A check's value, paper value or tolerance as short text: numbers to 4 significant
    digits, lists joined by commas, None as ``-``.

    Args:
      value: a number, string, bool, None or list of them.

    Returns:
      The text.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return " ".join(str(value).split())


def format_seconds(seconds: float | None) -> str:
    """``"8.4 s"``, ``"2 min 05 s"``; ``"-"`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s"


def verdict(check: Mapping) -> str:
    """``PASS`` / ``FAIL`` for a gating check; ``pass (report-only)`` or ``NEGATIVE RESULT``
    (a failed report-only check: a claim our run does not reproduce) otherwise."""
    if is_gating(check):
        return "PASS" if check["passed"] else "FAIL"
    return "pass (report-only)" if check["passed"] else "NEGATIVE RESULT"


def _href(target: Path, base: Path) -> str:
    """A relative, percent-encoded link from the folder ``base`` to ``target``."""
    rel = Path(os.path.relpath(target, base)).as_posix()
    return urllib.parse.quote(rel)


def _anchor(name: str) -> str:
    return "exp-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def _environment(runs: Sequence[_Run]) -> list[tuple[str, str]]:
    """``[(label, text)]``: each environment field, naming the experiments where runs differ."""
    envs = [(r.experiment, r.environment) for r in runs if r.environment]
    if not envs:
        return []
    keys: list[tuple[tuple[str, ...], str]] = []
    versions = [k for _, e in envs for k in (e.get("versions") or {})]
    for k in dict.fromkeys(versions):
        keys.append((("versions", k), k))
    keys += [((k,), label) for k, label in ENV_FIELDS]
    rows = []
    for path, label in keys:
        values: dict[str, list[str]] = {}
        for name, env in envs:
            v: Any = env
            for part in path:
                v = v.get(part) if isinstance(v, dict) else None
            values.setdefault(format_value(v), []).append(name)
        if len(values) == 1:
            rows.append((label, next(iter(values))))
        else:
            rows.append((label, "; ".join(f"{v} ({', '.join(names)})" for v, names in values.items())))
    times = sorted(e.get("time_utc") for _, e in envs if e.get("time_utc"))
    if times:
        rows.append(("runs started (UTC)", times[0] if times[0] == times[-1] else f"{times[0]} to {times[-1]}"))
    return rows


# ------------------------------------------------------------------------------ Markdown

_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _md_text(text: Any) -> str:
    """Text for Markdown: one line, and no ``<`` that could open a raw HTML tag (``< 0.5`` stays)."""
    text = text if isinstance(text, str) else format_value(text)
    return _TAG_START.sub("&lt;", " ".join(text.split()))


def _md(text: Any) -> str:
    """A Markdown table cell: :func:`_md_text` with pipes escaped."""
    return _md_text(text).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


def _check_row(c: Mapping) -> list[str]:
    return [c["name"], format_value(c.get("claim")), format_value(c.get("paper")), format_value(c.get("value")),
            format_value(c.get("tolerance")), verdict(c), format_value(c.get("detail") or None)]


CHECK_HEADER = ("check", "claim", "paper", "ours", "tolerance", "verdict", "detail")
SUMMARY_HEADER = ("experiment", "mode", "status", "gating checks passed", "gating checks failed",
                  "negative results", "runtime")


def _summary_rows(items: Sequence[_Run | FailedRun]) -> list[list[str]]:
    rows = []
    for it in items:
        if isinstance(it, FailedRun):
            rows.append([it.experiment, it.mode or "-", "ERROR", "-", "-", "-", "-"])
            continue
        g = it.gating
        npass = sum(bool(c["passed"]) for c in g)
        rows.append([it.experiment, it.mode, it.status + (" (existing run)" if it.reused else ""), str(npass),
                     str(len(g) - npass), str(len(it.negatives)), format_seconds(it.seconds)])
    return rows


def _markdown(items, out: Path, title: str, claims: Mapping[str, str], env_rows, generated: str) -> str:
    runs = [it for it in items if isinstance(it, _Run)]
    lines = [f"# {title}", "", f"Generated {generated}. Open `{HTML_FILE}` in this folder for the same report "
             f"as one web page.", ""]
    lines += ["## Summary", ""] + _md_table(SUMMARY_HEADER, _summary_rows(items)) + [""]
    lines += ["Runtime: the seconds the experiment's `run` took (compilation included), from its "
              "`metrics.json`. Status FAIL: a gating check failed; ERROR: the experiment raised.", ""]
    if any(r.mode == "quick" for r in runs):
        lines += [f"> {QUICK_NOTE}", ""]
    negatives = [(r, c) for r in runs for c in r.negatives]
    lines += ["## Negative results", ""]
    if negatives:
        lines += [NEGATIVE_NOTE, ""]
        lines += _md_table(("experiment", "check", "paper", "ours", "detail"),
                           [[r.experiment, c["name"], format_value(c.get("paper")), format_value(c.get("value")),
                             format_value(c.get("detail") or None)] for r, c in negatives]) + [""]
    else:
        lines += ["None: every report-only check passed.", ""]
    if env_rows:
        lines += ["## Environment", "", "```"] + [f"{k}: {v}" for k, v in env_rows] + ["```", ""]  # code: literal
    lines += ["## Experiments", ""]
    for it in items:
        lines += [f"### {it.experiment}", ""]
        claim = claims.get(it.experiment)
        if claim:
            lines += [f"*{_md_text(claim)}*", ""]
        if isinstance(it, FailedRun):
            lines += [f"**ERROR** ({it.mode or 'mode unknown'}): {_md_text(it.reason)}", ""]
            continue
        lines += [f"Mode {it.mode}; status **{it.status}**; runtime {format_seconds(it.seconds)}; run folder "
                  f"[{it.path.name}]({_href(it.path, out)}/)" + (" (an existing run, not rerun)" if it.reused else ""),
                  ""]
        for fig in it.figures:
            lines += [f"![{fig.stem}]({_href(fig, out)})", ""]
        if it.checks:
            lines += _md_table(CHECK_HEADER, [_check_row(c) for c in it.checks]) + [""]
        else:
            lines += ["No checks recorded.", ""]
        if it.table:
            lines += ["Measured table (`metrics.json`):", ""]
            lines += _md_table(it.columns, [[format_cell(r.get(k, "")) for k in it.columns] for r in it.table])
            lines += [""]
    return "\n".join(lines).rstrip() + "\n"


# ------------------------------------------------------------------------------ HTML

_CODE = re.compile(r"`([^`<>]+)`")


def _e(text: Any) -> str:
    return html.escape(text if isinstance(text, str) else format_value(text), quote=True)


def _html_table(header: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"


def _verdict_html(c: Mapping) -> str:
    v = verdict(c)
    cls = "pass" if c["passed"] else ("fail" if is_gating(c) else "negative-label")
    return f'<span class="{cls}">{_e(v)}</span>'


def _html(items, out: Path, title: str, claims: Mapping[str, str], env_rows, generated: str) -> str:
    runs = [it for it in items if isinstance(it, _Run)]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{_e(title)}</h1>",
             f'<p class="meta">Generated {_e(generated)}. The same report as Markdown: '
             f'<a href="{_e(_href(out / MARKDOWN_FILE, out))}">{_e(MARKDOWN_FILE)}</a>.</p>',
             "<h2>Summary</h2>"]
    rows = []
    for it, cells in zip(items, _summary_rows(items)):
        status = cells[2]
        cls = "error" if status == "ERROR" else ("fail" if status.startswith("FAIL") else "pass")
        tds = [f'<td><a href="#{_e(_anchor(it.experiment))}">{_e(cells[0])}</a></td>', f"<td>{_e(cells[1])}</td>",
               f'<td><span class="{cls}">{_e(status)}</span></td>']
        tds += [f'<td class="num">{_e(c)}</td>' for c in cells[3:]]
        rows.append("<tr>" + "".join(tds) + "</tr>")
    parts.append(_html_table(SUMMARY_HEADER, rows))
    parts.append('<p class="meta">Runtime: the seconds the experiment\'s <code>run</code> took (compilation '
                 'included), from its <code>metrics.json</code>. Status FAIL: a gating check failed; ERROR: the '
                 'experiment raised.</p>')
    if any(r.mode == "quick" for r in runs):
        parts.append('<p class="note">' + _CODE.sub(r"<code>\1</code>", _e(QUICK_NOTE)) + "</p>")
    parts.append("<h2>Negative results</h2>")
    negatives = [(r, c) for r in runs for c in r.negatives]
    if negatives:
        parts.append(f"<p>{_e(NEGATIVE_NOTE)}</p>")
        parts.append(_html_table(("experiment", "check", "paper", "ours", "detail"), [
            f'<tr class="negative"><td><a href="#{_e(_anchor(r.experiment))}">{_e(r.experiment)}</a></td>'
            f"<td>{_e(c['name'])}</td><td>{_e(c.get('paper'))}</td><td>{_e(c.get('value'))}</td>"
            f"<td>{_e(c.get('detail') or None)}</td></tr>" for r, c in negatives]))
    else:
        parts.append("<p>None: every report-only check passed.</p>")
    if env_rows:
        parts.append("<h2>Environment</h2>")
        parts.append(_html_table(("field", "value"), [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>"
                                                      for k, v in env_rows]))
    parts.append("<h2>Experiments</h2>")
    for it in items:
        parts.append(f'<section id="{_e(_anchor(it.experiment))}"><h3>{_e(it.experiment)}</h3>')
        claim = claims.get(it.experiment)
        if claim:
            parts.append(f'<p class="claim">{_e(claim)}</p>')
        if isinstance(it, FailedRun):
            parts.append(f'<p><span class="error">ERROR</span> ({_e(it.mode or "mode unknown")}): '
                         f"{_e(it.reason)}</p></section>")
            continue
        cls = "pass" if it.status == "PASS" else "fail"
        parts.append(f'<p class="meta">Mode {_e(it.mode)}; status <span class="{cls}">{_e(it.status)}</span>; '
                     f"runtime {_e(format_seconds(it.seconds))}; run folder "
                     f'<a href="{_e(_href(it.path, out))}/">{_e(it.path.name)}</a>'
                     + (" (an existing run, not rerun)" if it.reused else "") + "</p>")
        for fig in it.figures:
            src = _e(_href(fig, out))
            parts.append(f'<a href="{src}"><img src="{src}" alt="{_e(it.experiment + ": " + fig.stem)}"></a>')
        if it.checks:
            rows = []
            for c in it.checks:
                cells = _check_row(c)
                tr = '<tr class="negative">' if verdict(c) == "NEGATIVE RESULT" else "<tr>"
                tds = [f"<td>{_e(x)}</td>" for x in cells[:2]] + [f'<td class="num">{_e(x)}</td>' for x in cells[2:5]]
                tds += [f"<td>{_verdict_html(c)}</td>", f"<td>{_e(cells[6])}</td>"]
                rows.append(tr + "".join(tds) + "</tr>")
            parts.append(_html_table(CHECK_HEADER, rows))
        else:
            parts.append("<p>No checks recorded.</p>")
        if it.table:
            parts.append(f"<details><summary>Measured table ({len(it.table)} rows, from "
                         f"<code>metrics.json</code>)</summary>")
            parts.append(_html_table(it.columns, ["<tr>" + "".join(f"<td>{_e(format_cell(r.get(k, '')))}</td>"
                                                                   for k in it.columns) + "</tr>" for r in it.table]))
            parts.append("</details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------ entry point

def build_report(runs: str | os.PathLike | Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                 errors: Iterable[FailedRun] = (), claims: Mapping[str, str] | None = None,
                 reused: Iterable[str | os.PathLike] = (), title: str = "lossatlas reproduction report") -> ReportPaths:
    """Write ``index.html``, ``report.md`` and the figure copies for some runs into ``out_dir``.

    Args:
      runs: a results root (the newest complete run of each experiment in it,
        :func:`latest_runs`), one complete run folder, or a list of complete run folders.
      out_dir: the report folder (created if missing; files of the same names are replaced).
      errors: experiments that raised (:class:`FailedRun`), shown as ERROR rows.
      claims: ``{experiment: one-line claim}`` (e.g. a :class:`lossatlas.registry.Registry`'s
        ``descriptions``); experiments without one show none.
      reused: run folders that were found complete and not rerun (marked "existing run").
      title: the page title.

    Returns:
      :class:`ReportPaths` (absolute).

    Raises:
      FileNotFoundError: a run folder or the root does not exist.
      ValueError: a listed folder is not a complete run, no run and no error to report, or a
        corrupt JSON file in a run folder (the message names it).
    """
    folders = _run_folders(runs)
    errors = list(errors)
    if not folders and not errors:
        raise ValueError(f"no complete run folders to report on in {runs!s:.200}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reused_set = {Path(p).resolve() for p in reused}
    loaded = [_load_run(p, out, p.resolve() in reused_set) for p in folders]
    items: list[_Run | FailedRun] = sorted([*loaded, *errors], key=lambda it: it.experiment)
    claims = dict(claims or {})
    generated = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    env_rows = _environment(loaded)
    html_path, md_path = out / HTML_FILE, out / MARKDOWN_FILE
    html_path.write_text(_html(items, out, title, claims, env_rows, generated), encoding="utf-8")
    md_path.write_text(_markdown(items, out, title, claims, env_rows, generated), encoding="utf-8")
    return ReportPaths(html_path, md_path, tuple(f for r in loaded for f in r.figures))

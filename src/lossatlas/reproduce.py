"""Run every registered experiment (or some) into one folder and write a report: ``lossatlas reproduce``.

:func:`reproduce` runs each experiment of a :class:`lossatlas.registry.Registry` through
:func:`lossatlas.runner.run_experiment` into ``out_dir/<experiment>/<id>/``, one after the other,
and then writes ``out_dir/report/index.html`` and ``report.md``
(:func:`lossatlas.results.build_report`). It is safe to run again: an experiment that already has
a complete run under ``out_dir`` with the same mode and config (:func:`lossatlas.results.find_run`)
is not rerun, its folder goes into the report as it is, so a reproduction killed half-way
continues where it stopped. An experiment that raises becomes an ERROR row with its one-line
reason, and the others still run.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable

from lossatlas import checks as checks_lib
from lossatlas import results as results_lib
from lossatlas.registry import Registry

#: ``lossatlas reproduce``'s default results root.
DEFAULT_OUT = "reproduce"
#: The report's sub-folder of the results root.
REPORT_DIR = "report"
DEBUG_ENV = "LOSSATLAS_DEBUG"


@dataclasses.dataclass
class Reproduction:
    """What :func:`reproduce` did.

    Attributes:
      runs: ``{experiment: run folder}`` of every experiment that has a complete run.
      reused: the experiments whose existing run was taken instead of running them again.
      errors: the experiments that raised (:class:`lossatlas.results.FailedRun`).
      gating_failed: the experiments with a failed gating check.
      report: the report's paths (:class:`lossatlas.results.ReportPaths`).
      seconds: wall-clock seconds of the whole call.
    """
    runs: dict[str, Path]
    reused: list[str]
    errors: list[results_lib.FailedRun]
    gating_failed: list[str]
    report: results_lib.ReportPaths
    seconds: float

    @property
    def ok(self) -> bool:
        """True when nothing raised and every gating check passed."""
        return not self.errors and not self.gating_failed


def select(registry: Registry, only: Iterable[str] | None = None) -> list[str]:
    """The experiments to run: all registered ones, or the names in ``only`` (in registry order).

    Raises:
      ValueError: a name in ``only`` is not registered (one line listing the known names).
    """
    if not only:
        return registry.names()
    only = list(dict.fromkeys(only))
    unknown = [n for n in only if n not in registry]
    if unknown:
        raise ValueError(f"--only: unknown experiment{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(n) for n in unknown)}; known: {', '.join(registry.names())}")
    return [n for n in registry.names() if n in only]


def _one_line(err: BaseException) -> str:
    """``"<Type>: <first non-empty line of the message>"``."""
    from lossatlas.cli import _one_line as first_line
    return f"{type(err).__name__}: {first_line(err)}"


def reproduce(registry: Registry, only: Iterable[str] | None = None, *, quick: bool = True,
              out_dir: str | os.PathLike = DEFAULT_OUT, progress: bool = False,
              log: Callable[[str], None] | None = print) -> Reproduction:
    """Run the experiments (skipping those already complete) and write the report.

    Args:
      registry: the experiments.
      only: run only these names (default: all).
      quick: each module's ``QUICK`` config (the default) or, with False, the full recipe.
      out_dir: the results root; runs go to ``out_dir/<experiment>/<id>/``, the report to
        ``out_dir/report/``.
      progress: progress bars on stderr (see :func:`lossatlas.runner.run_experiment`).
      log: called with a line when an experiment starts running and one when it is done
        (None: silent).

    Returns:
      A :class:`Reproduction`.

    Raises:
      ValueError: an unknown name in ``only``, or ``out_dir`` not a writable directory
        (both before anything runs).
    """
    from lossatlas import runner

    names = select(registry, only)
    results_lib.check_out_dir(out_dir, what="--out")
    say = log or (lambda line: None)
    t0 = time.perf_counter()
    mode = "quick" if quick else "full"
    runs, reused, errors, gating_failed = {}, [], [], []
    for i, name in enumerate(names, 1):
        head = f"[{i}/{len(names)}] {name}"
        start = time.perf_counter()
        try:
            cfg = runner.make_config(registry.get(name), quick=quick)
            path = results_lib.find_run(out_dir, name, runner.config_record(name, cfg, quick=quick))
            if path is not None:
                reused.append(name)
                checks = results_lib.read_checks(path / "checks.json")
                how = f"complete {mode} run exists, not rerun: {path}"
            else:
                say(f"{head}: running ({mode})")
                path, _, checks = runner.run_experiment(registry, name, cfg, quick=quick, out_dir=out_dir,
                                                        progress=progress)
                how = f"ran in {time.perf_counter() - start:.1f} s"
        except Exception as err:  # noqa: BLE001 -- one experiment's failure is a row, the rest still run
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
            errors.append(results_lib.FailedRun(name, _one_line(err), mode))
            say(f"{head}: ERROR {_one_line(err)}")
            continue
        runs[name] = Path(path)
        failed = checks_lib.gating_failures(checks)
        if failed:
            gating_failed.append(name)
        verdict = f"FAIL ({', '.join(c['name'] for c in failed)})" if failed else "PASS"
        say(f"{head}: {verdict}; {how}")
    report = results_lib.build_report(list(runs.values()), Path(out_dir) / REPORT_DIR, errors=errors,
                                      claims=registry.descriptions, reused=[runs[n] for n in reused])
    return Reproduction(runs, reused, errors, gating_failed, report, time.perf_counter() - t0)

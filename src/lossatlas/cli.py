"""``lossatlas`` command line: parse, dispatch, and turn every error into one stderr line
and an exit code (:mod:`lossatlas.exitcodes`).

The experiments are passed in: ``main(argv, registry=...)`` with a
:class:`lossatlas.registry.Registry`. The ``lossatlas`` console script (and
``python -m lossatlas_experiments``) calls it with the registry of our studies.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from lossatlas import exitcodes

#: Errors that mean the user's input is wrong (exit code ``exitcodes.USAGE``): every library
#: check raises ValueError naming the field, a missing dataset file FileNotFoundError.
USAGE_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)
DEBUG_ENV = "LOSSATLAS_DEBUG"


class _RunHelp(argparse.Action):
    """``run``'s ``-h/--help``: the options, then, when NAME came before it (``lossatlas run
    NAME --help``), that experiment's claim, quick runtime and config fields
    (:func:`lossatlas.describe.config_help`)."""

    def __init__(self, option_strings, registry=None, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help=None):  # noqa: A002 -- argparse's keyword
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)
        self.registry = registry

    def __call__(self, parser, namespace, values, option_string=None):
        text = parser.format_help()
        name = getattr(namespace, "name", None)
        if name and self.registry is not None:
            from lossatlas import describe
            try:
                module = self.registry.get(name)
                text += "\n" + describe.config_help(name, module, self.registry.descriptions.get(name, ""))
            except Exception as err:  # noqa: BLE001 -- help must print; say why the fields are missing
                text += f"\nlossatlas: cannot list the config fields of {name!r}: {_one_line(err)}\n"
        parser._print_message(text, sys.stdout)
        parser.exit()


RUN_EPILOG = ("`lossatlas run NAME --help` also lists NAME's config fields: name, type, default, the --quick\n"
              "value, and a line of doc. `lossatlas list` shows every NAME with its claim and quick runtime.")


REPRODUCE_EPILOG = (
    "Runs into OUT/NAME/<id>/ one experiment after the other; an experiment with a complete run of the\n"
    "same mode and config under OUT is not rerun (run again after a kill to continue), one that raises\n"
    "is an ERROR row and the rest still run. Writes OUT/report/index.html and OUT/report/report.md.\n"
    "Exit code 3 if an experiment raised, else 1 if a gating check failed, else 0.")


def build_parser(registry=None) -> argparse.ArgumentParser:
    """The argument parser; ``registry`` lets ``run NAME --help`` list NAME's config fields."""
    p = argparse.ArgumentParser(prog="lossatlas", description="lossatlas: how neural networks learn from their mistakes",
                                epilog=exitcodes.epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments: name, quick runtime, claim")
    r = sub.add_parser("run", help="run an experiment and write a results folder", add_help=False,
                       epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("-h", "--help", action=_RunHelp, registry=registry,
                   help="show this help (after NAME: also NAME's config fields) and exit")
    r.add_argument("name", help="a registered experiment (see `lossatlas list`)")
    r.add_argument("--quick", action="store_true", help="small config for a fast check")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    r.add_argument("--out", default="runs", help="root folder for results (default: runs)")
    r.add_argument("--no-compilation-cache", action="store_true",
                   help="do not use JAX's persistent compilation cache (default folder ~/.cache/lossatlas/jax, "
                        "or $LOSSATLAS_COMPILATION_CACHE; set that to 'off' to disable it everywhere)")
    r.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="finish a killed run: its partial folder (ROOT/NAME/.ID.partial or ROOT/NAME/ID)")
    r.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="save each training/stream call every N chunks (default 5; 0: no checkpoints)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (they only show on a terminal)")
    pl = sub.add_parser("plot", help="draw a saved run's figures again from its folder")
    pl.add_argument("run_dir", help="a complete run folder")
    pl.add_argument("--out", default=None, help="folder for the figures (default: the run folder)")
    s = sub.add_parser("show", help="print a run's summary table, or list partial runs (--partial)")
    s.add_argument("run_dir", nargs="?", default=None,
                   help="a run folder (with --partial: a results root, default runs)")
    s.add_argument("--partial", action="store_true", help="list unfinished (partial) runs under the root folder")
    rp = sub.add_parser("reproduce", help="run every experiment (or --only some) and write an HTML + Markdown report",
                        epilog=REPRODUCE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = rp.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="each experiment's small config (the default)")
    mode.add_argument("--full", action="store_true", help="the full recipe the paper values are for (hours)")
    rp.add_argument("--only", nargs="+", action="extend", metavar="NAME", help="run only these experiments")
    rp.add_argument("--out", default="reproduce",
                    help="root folder for the runs; the report goes to OUT/report (default: reproduce)")
    rp.add_argument("--no-compilation-cache", action="store_true", help="do not use JAX's persistent compilation cache")
    rp.add_argument("--no-progress", action="store_true", help="no progress bars (they only show on a terminal)")
    rep = sub.add_parser("report", help="write the HTML + Markdown report of the newest complete run of each "
                                        "experiment under a results root")
    rep.add_argument("root", help="a results root (ROOT/NAME/<id>/), e.g. runs or reproduce")
    rep.add_argument("--out", default=None, help="folder for the report (default: ROOT/report)")
    c = sub.add_parser("clean", help="remove stale partial run folders (killed runs)")
    c.add_argument("--out", default="runs", help="root folder for results (default: runs)")
    c.add_argument("--older-than", type=float, default=0.0, metavar="HOURS", help="only folders idle this long")
    c.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    return p


def _one_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (XLA errors run to many lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line, e.g. ``lossatlas: LongRunWarning: TrainConfig.epochs: ...``."""
    print(f"lossatlas: {category.__name__}: {message}", file=file or sys.stderr)


def _report(err: BaseException, code: int) -> int:
    """Print ``err`` as one line on stderr (the traceback too with LOSSATLAS_DEBUG=1); return ``code``."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if debug:
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    if code == exitcodes.INTERRUPTED:
        print("lossatlas: interrupted; the partial results folder was removed", file=sys.stderr)
    elif code == exitcodes.USAGE:
        print(f"lossatlas: error: {_one_line(err)}", file=sys.stderr)
    else:
        hint = "" if debug else f" (run with {DEBUG_ENV}=1 for the traceback)"
        print(f"lossatlas: error: {type(err).__name__}: {_one_line(err)}{hint}", file=sys.stderr)
    return code


def main(argv=None, *, registry=None) -> int:
    """Run the command line.

    Args:
      argv: the arguments (default: ``sys.argv[1:]``).
      registry: the experiments (:class:`lossatlas.registry.Registry`) that ``list``,
        ``run``, ``reproduce`` and ``plot`` work on (``report`` takes their claims from it);
        ``show`` and ``clean`` need none.

    Returns:
      An exit code from :mod:`lossatlas.exitcodes`.
    """
    args = build_parser(registry).parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _dispatch(args, registry)
    except KeyboardInterrupt as err:
        return _report(err, exitcodes.INTERRUPTED)
    except USAGE_ERRORS as err:
        return _report(err, exitcodes.USAGE)
    except Exception as err:  # noqa: BLE001 -- the CLI's last line: one line, not a traceback
        return _report(err, exitcodes.RUNTIME)


def _need(registry, command: str):
    if registry is None:
        raise ValueError(f"`{command}` needs the experiments: call lossatlas.cli.main(argv, registry=...) "
                         f"(the `lossatlas` command passes its registry)")
    return registry


def _dispatch(args, registry) -> int:
    from lossatlas import settings
    # Before any computation: every CPU core a device, quick runs compiled as the tests
    # compile them, and the persistent compilation cache.
    if args.command == "run":
        settings.configure(quick=args.quick, cache=not args.no_compilation_cache)
    elif args.command == "reproduce":
        settings.configure(quick=not args.full, cache=not args.no_compilation_cache)
    else:
        settings.configure(quick=False, cache=False)
    if args.command == "list":
        from lossatlas import describe
        reg = _need(registry, "list")
        names = reg.names()
        print(describe.list_text(names, reg.descriptions, {n: describe.quick_runtime(reg.doc(n)) for n in names}),
              end="")
        return exitcodes.OK
    if args.command == "clean":
        from lossatlas.results import clean_partial
        for path in clean_partial(args.out, args.older_than, dry_run=args.dry_run):
            print(f"{'would remove' if args.dry_run else 'removed'} {path}")
        return exitcodes.OK
    if args.command == "show" and args.partial:
        from lossatlas.results import partial_text
        print(partial_text(args.run_dir or "runs"), end="")
        return exitcodes.OK
    if args.command == "show":
        if args.run_dir is None:
            raise ValueError("show needs a RUN_DIR (or --partial [ROOT])")
        from lossatlas.results import summary_text
        print(summary_text(args.run_dir), end="")
        return exitcodes.OK
    if args.command == "report":
        from pathlib import Path

        from lossatlas.results import build_report
        paths = build_report(args.root, args.out or Path(args.root) / "report",
                             claims=registry.descriptions if registry is not None else None)
        print(f"report: {paths.html}\nreport: {paths.markdown}")
        return exitcodes.OK
    if args.command == "reproduce":
        return _reproduce(args, _need(registry, "reproduce"))
    from lossatlas import runner
    if args.command == "plot":
        for path in runner.replot(_need(registry, "plot"), args.run_dir, out=args.out):
            print(f"wrote {path}")
        return exitcodes.OK
    from lossatlas.overrides import parse_sets
    from lossatlas.results import check_out_dir, summary_text
    module = _need(registry, "run").get(args.name)
    cfg = runner.make_config(module, quick=args.quick, seeds=args.seeds, overrides=parse_sets(args.set))
    check_out_dir(args.out, what="--out")  # before anything runs: fail in a second, not after minutes
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0 (0: no checkpoints), got {args.checkpoint_every}")
    every = runner.checkpoint.DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every
    path, _, checks = runner.run_experiment(registry, args.name, cfg, quick=args.quick, out_dir=args.out,
                                            resume=args.resume, checkpoint_every=every,
                                            progress=not args.no_progress and sys.stderr.isatty())
    print(summary_text(path), end="")
    print(end_of_run_text(path, args.name, quick=args.quick), end="")
    from lossatlas.checks import all_passed
    return exitcodes.OK if all_passed(checks) else exitcodes.CHECK_FAILED


def _reproduce(args, registry) -> int:
    """``lossatlas reproduce``: run, print a line per experiment, the report paths, the exit code."""
    from lossatlas import reproduce
    rep = reproduce.reproduce(registry, args.only, quick=not args.full, out_dir=args.out,
                              progress=not args.no_progress and sys.stderr.isatty(),
                              log=lambda line: print(line, flush=True))
    ran = len(rep.runs) - len(rep.reused)
    print(f"{len(rep.runs) + len(rep.errors)} experiments ({'full' if args.full else 'quick'}): {ran} ran, "
          f"{len(rep.reused)} existing runs reused, {len(rep.errors)} errors, "
          f"{len(rep.gating_failed)} with a failed gating check; {rep.seconds:.0f} s")
    print(f"report: {rep.report.html}\nreport: {rep.report.markdown}")
    if rep.errors:
        return exitcodes.RUNTIME
    return exitcodes.OK if not rep.gating_failed else exitcodes.CHECK_FAILED


#: The end of a ``--quick`` run's printout ({name}: the experiment).
QUICK_NOTE = ("quick mode: a smoke-scale run (smaller config, fewer seeds), not the paper's recipe; the "
              "paper values in the README and the module docstring are for the full recipe: "
              "`lossatlas run {name}`")


def end_of_run_text(path, name: str, *, quick: bool) -> str:
    """The end of ``lossatlas run``'s printout: the results folder and every figure file, as
    absolute paths, and with ``quick`` a line saying that paper values are for the full recipe.

    Args:
      path: the complete run folder.
      name: the experiment's name.
      quick: whether this was a ``--quick`` run.

    Returns:
      The lines, ending in a newline.
    """
    from pathlib import Path
    path = Path(path).resolve()
    figures = sorted(p for p in path.iterdir() if p.suffix in (".png", ".pdf") and p.is_file())
    lines = [f"results: {path}"]
    if figures:
        lines.append("figures:")
        lines += [f"  {p}" for p in figures]
    else:
        lines.append("figures: none")
    if quick:
        import textwrap
        lines += textwrap.wrap(QUICK_NOTE.format(name=name), 100, break_on_hyphens=False)
    return "\n".join(lines) + "\n"

"""``lossatlas`` command line: parse, dispatch, nothing else."""
from __future__ import annotations

import argparse
import sys


def _parse_sets(items):
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lossatlas", description="lossatlas: how neural networks learn from their mistakes")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    r = sub.add_parser("run", help="run an experiment and write a results folder")
    r.add_argument("name")
    r.add_argument("--quick", action="store_true", help="small config for a fast check")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    r.add_argument("--out", default="runs", help="root folder for results (default: runs)")
    r.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="finish a killed run: its partial folder (ROOT/NAME/.ID.partial or ROOT/NAME/ID)")
    r.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="save each training/stream call every N chunks (default 5; 0: no checkpoints)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (they only show on a terminal)")
    s = sub.add_parser("show", help="print a run's summary table, or list partial runs (--partial)")
    s.add_argument("run_dir", nargs="?", default=None,
                   help="a run folder (with --partial: a results root, default runs)")
    s.add_argument("--partial", action="store_true", help="list unfinished (partial) runs under the root folder")
    c = sub.add_parser("clean", help="remove stale partial run folders (killed runs)")
    c.add_argument("--out", default="runs", help="root folder for results (default: runs)")
    c.add_argument("--older-than", type=float, default=0.0, metavar="HOURS", help="only folders idle this long")
    c.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from lossatlas.devices import use_all_cpu_cores
    use_all_cpu_cores()  # before any computation: seeds shard over CPU cores
    try:
        if args.command == "list":
            from lossatlas.runner import list_experiments
            for name, desc in sorted(list_experiments().items()):
                print(f"{name:28s} {desc}")
            return 0
        if args.command == "clean":
            from lossatlas.results import clean_partial
            for path in clean_partial(args.out, args.older_than, dry_run=args.dry_run):
                print(f"{'would remove' if args.dry_run else 'removed'} {path}")
            return 0
        if args.command == "show" and args.partial:
            from lossatlas.results import partial_text
            print(partial_text(args.run_dir or "runs"), end="")
            return 0
        if args.command == "show":
            if args.run_dir is None:
                raise ValueError("show needs a RUN_DIR (or --partial [ROOT])")
            from lossatlas.results import summary_text
            print(summary_text(args.run_dir), end="")
            return 0
        from lossatlas import runner
        from lossatlas.results import summary_text
        module = runner.get_experiment(args.name)
        cfg = runner.make_config(module, quick=args.quick, seeds=args.seeds, overrides=_parse_sets(args.set))
        every = runner.checkpoint.DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every
        path, _, checks = runner.run_experiment(args.name, cfg, quick=args.quick, out_dir=args.out,
                                                resume=args.resume, checkpoint_every=every,
                                                progress=not args.no_progress and sys.stderr.isatty())
        print(summary_text(path), end="")
        print(f"results: {path}")
        return 0 if all(c["passed"] for c in checks) else 1
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lossatlas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

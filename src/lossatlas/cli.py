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
    s = sub.add_parser("show", help="print a run's summary table")
    s.add_argument("run_dir")
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
        if args.command == "show":
            from lossatlas.results import summary_text
            print(summary_text(args.run_dir), end="")
            return 0
        from lossatlas import runner
        from lossatlas.results import summary_text
        module = runner.get_experiment(args.name)
        cfg = runner.make_config(module, quick=args.quick, seeds=args.seeds, overrides=_parse_sets(args.set))
        path, _, checks = runner.run_experiment(args.name, cfg, quick=args.quick, out_dir=args.out)
        print(summary_text(path), end="")
        print(f"results: {path}")
        return 0 if all(c["passed"] for c in checks) else 1
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"lossatlas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Run an experiment module end to end into a results folder; re-draw a saved run's figures.

An experiment module defines:
  ``Config`` (a dataclass with at least ``seeds`` and ``seed``), ``QUICK`` (a dict of
  field overrides for ``--quick``), ``run(cfg, key) -> results`` (a dict of arrays,
  numbers, strings, lists, tuples and dicts; see :mod:`lossatlas.results.store`),
  ``table(results, cfg) -> list[dict]`` (cells: numbers, labels or
  :func:`lossatlas.results.stat` cells), ``checks(results, cfg) -> list[dict(name, value,
  passed, detail)]`` and ``plot(results, cfg) -> {name: matplotlib figure}``.

The runner is given the experiments as a :class:`lossatlas.registry.Registry`; the
library imports no experiment package itself.
"""
from __future__ import annotations

import dataclasses
import os
import time
import typing
from pathlib import Path

import jax

from lossatlas import checkpoint
from lossatlas import checks as checks_lib
from lossatlas import results as results_lib
from lossatlas.overrides import check_type, config_from_dict, parse_value
from lossatlas.registry import Registry
from lossatlas.train import limits

#: ``--set`` fields whose name contains one of these count epochs or steps; each is
#: checked against the run-length sanity cap (``lossatlas.train.limits``).
STEP_FIELD_WORDS = ("epoch", "step", "iter")


def make_config(module, *, quick: bool = False, seeds: int | None = None, overrides: dict | None = None):
    """The module's Config with ``--quick``, ``--seeds`` and ``--set`` applied (validated).

    An integer ``--set`` override of an epochs/steps field (name containing one of
    ``STEP_FIELD_WORDS``) above the run-length cap (``lossatlas.train.limits.max_steps``)
    is refused here, before anything runs.

    Args:
      module: an experiment module (``Config``, ``QUICK``, ...).
      quick: start from ``module.QUICK``'s overrides.
      seeds: number of seeds (``--seeds``).
      overrides: ``{field: value}``; string values are parsed by the field's type hint
        (:func:`lossatlas.overrides.parse_value`), every value is type-checked.

    Returns:
      The Config.

    Raises:
      ValueError: unknown field, a value of the wrong type, or a run length over the cap.
    """
    cfg = module.Config()
    changes = dict(module.QUICK) if quick else {}
    if seeds is not None:
        changes["seeds"] = seeds
    fields = {f.name for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    for k, v in (overrides or {}).items():
        if k not in fields:
            name = module.__name__.split('.')[-1]
            prefixed = sorted(f for f in fields if f.endswith(f"_{k}"))
            if prefixed:  # shared names with a sub-study prefix: <prefix>_<name> (see lossatlas_experiments)
                raise ValueError(f"--set {k}: {name} has no single {k!r}; its sub-studies each have one: "
                                 f"{', '.join(prefixed)}")
            raise ValueError(f"--set {k}: {name} has no field {k!r}; fields: {', '.join(sorted(fields))}")
        value = parse_value(v, hints.get(k)) if isinstance(v, str) else v
        changes[k] = check_type(f"--set {k}: {type(cfg).__name__}", k, value, hints.get(k))
    if "seeds" in changes and (not isinstance(changes["seeds"], int) or changes["seeds"] < 1):
        raise ValueError(f"seeds must be a positive integer, got {changes['seeds']!r}")
    for k, v in changes.items():  # --set epochs=1000000000: refused now, not after minutes of silence
        if k in (overrides or {}) and any(w in k for w in STEP_FIELD_WORDS):
            limits.check_field("--set", k, v)
    return dataclasses.replace(cfg, **changes)


def config_record(name: str, cfg, *, quick: bool) -> dict:
    """What a run's ``config.json`` holds (and what :func:`lossatlas.results.find_run` matches).

    Args:
      name: the experiment's name.
      cfg: its Config.
      quick: whether the run is a ``--quick`` one.

    Returns:
      ``{"experiment", "quick", "config"}``.
    """
    return {"experiment": name, "quick": quick, "config": cfg}


def run_experiment(registry: Registry, name: str, cfg=None, *, quick: bool = False, out_dir="runs", run_id=None,
                   resume=None, checkpoint_every: int = checkpoint.DEFAULT_EVERY, progress: bool = False):
    """Run experiment ``name`` and write its results folder.

    ``module.run`` executes inside :func:`lossatlas.checkpoint.checkpointing`: every training
    sweep and task stream it calls runs in chunks (epochs / tasks; the chunk size comes from
    the config only) and saves its state under ``<run folder>/checkpoints/`` every
    ``checkpoint_every`` chunks, so a killed run can be resumed and gives the same arrays,
    bitwise, as an uninterrupted one (on the same machine and software).

    Everything ``run`` returned is saved (:func:`lossatlas.results.save_results`) and read
    back; the table, the checks and the figures are computed from what was read back, so
    the folder alone reproduces them (``lossatlas plot RUN_DIR``).

    Args:
      registry: the experiments (:class:`lossatlas.registry.Registry`).
      name: registered experiment name.
      cfg: the module's Config (default: :func:`make_config` with ``quick``).
      quick: recorded in ``config.json`` (and selects the default config).
      out_dir: results root; ignored with ``resume``.
      run_id: folder name (default: timestamp plus a random suffix); ignored with ``resume``.
      resume: a partial run folder (``ROOT/NAME/.ID.partial`` or ``ROOT/NAME/ID``) left by a
        killed run of the same experiment and config: finish it into the same run id.
      checkpoint_every: chunks between checkpoints (0: none; the run is still chunked).
      progress: progress bars (units done, elapsed, ETA) on stderr, one per chunked call.

    Returns:
      ``(run_path, results, checks)``; ``results`` as read back from the folder.

    Raises:
      ValueError: unknown experiment, or ``resume`` of a different experiment / config.
    """
    module = registry.get(name)
    if resume is not None:
        out_dir, experiment, run_id = results_lib.resolve_partial(resume)
        if experiment != name:
            raise ValueError(f"--resume {resume}: that folder holds a run of {experiment!r}, not {name!r}")
    cfg = cfg if cfg is not None else make_config(module, quick=quick)
    key = jax.random.PRNGKey(getattr(cfg, "seed", 0))
    record = config_record(name, cfg, quick=quick)
    with results_lib.new_run(name, record, out_dir=out_dir, run_id=run_id, resume=resume is not None) as run:
        t0 = time.perf_counter()
        with checkpoint.checkpointing(run.path, every=checkpoint_every, resume=resume is not None,
                                      progress=progress):
            live = module.run(cfg, key)
        elapsed = time.perf_counter() - t0
        run.save_results(live)
        res = results_lib.load_results(run.path)
        rows = module.table(res, cfg)
        run.write_table(rows, "table", title=getattr(module, "TABLE_TITLE", name))
        checks = checks_lib.normalize(module.checks(res, cfg), where=f"{name}.checks()")
        run.write_json("checks.json", checks)
        run.write_json("metrics.json", {"seconds": elapsed, "resumed": resume is not None, "table": rows,
                                        "checks_passed": checks_lib.all_passed(checks)})
        results_lib.draw_figures(run.path, module.plot, cfg, source=getattr(module, "FIGURE", None))
    return Path(run.path), res, checks


def load_config(registry: Registry, run_dir: str | os.PathLike):
    """``(module, cfg)`` of a saved run: its experiment module and Config rebuilt from ``config.json``.

    Raises:
      FileNotFoundError: no run folder (or no ``config.json``) at ``run_dir``.
      ValueError: unknown experiment, or a corrupt ``config.json``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder at {run_dir}")
    saved = results_lib.read_json(run_dir / "config.json")
    if not isinstance(saved, dict) or "experiment" not in saved or not isinstance(saved.get("config"), dict):
        raise ValueError(f"{run_dir / 'config.json'}: expected {{experiment, quick, config}}")
    module = registry.get(saved["experiment"])
    return module, config_from_dict(module.Config, saved["config"])


def replot(registry: Registry, run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    """Draw a complete run's figures again from its folder (``lossatlas plot RUN_DIR``).

    Args:
      registry: the experiments.
      run_dir: a complete run folder.
      out: where to write the figures (default: the run folder itself).

    Returns:
      The paths written (PNG and PDF per figure).

    Raises:
      FileNotFoundError: no such folder, or it has no ``results.json``.
      ValueError: the run is not complete, or its experiment is not in ``registry``.
    """
    run_dir = Path(run_dir)
    module, cfg = load_config(registry, run_dir)
    if not results_lib.is_complete(run_dir):
        raise ValueError(f"{run_dir} is not a complete run (no {results_lib.COMPLETE_MARKER} marker)")
    return results_lib.draw_figures(run_dir, module.plot, cfg, out=out, source=getattr(module, "FIGURE", None))

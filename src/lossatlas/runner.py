"""Run an experiment module end to end into a results folder.

An experiment module (one file in ``experiments/``) defines:
  ``Config`` (a dataclass with at least ``seeds`` and ``seed``), ``QUICK`` (a dict of
  field overrides for ``--quick``), ``run(cfg, key) -> results`` (a dict of numpy
  arrays and plain values), ``table(results, cfg) -> list[dict]``,
  ``checks(results, cfg) -> list[dict(name, value, passed, detail)]`` and
  ``plot(results, cfg) -> {name: matplotlib figure}``.
"""
from __future__ import annotations

import dataclasses
import importlib
import time
import typing
from pathlib import Path

import jax
import numpy as np

from lossatlas import checkpoint, plotting
from lossatlas import checks as checks_lib
from lossatlas import results as results_lib
from lossatlas.train import limits
from lossatlas.train.config import check_type, parse_value

EXPERIMENT_PACKAGE = "lossatlas_experiments"
#: ``--set`` fields whose name contains one of these count epochs or steps; each is
#: checked against the run-length sanity cap (``lossatlas.train.limits``).
STEP_FIELD_WORDS = ("epoch", "step", "iter")


def list_experiments() -> dict[str, str]:
    """``{name: one-line description}`` of the registered experiments."""
    pkg = importlib.import_module(EXPERIMENT_PACKAGE)
    return dict(pkg.EXPERIMENTS)


def get_experiment(name: str):
    """The experiment module; ValueError listing the known names otherwise."""
    known = list_experiments()
    if name not in known:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(sorted(known))}")
    return importlib.import_module(f"{EXPERIMENT_PACKAGE}.{name}")


def make_config(module, *, quick: bool = False, seeds: int | None = None, overrides: dict | None = None):
    """The module's Config with ``--quick``, ``--seeds`` and ``--set`` applied (validated).

    An integer ``--set`` override of an epochs/steps field (name containing one of
    ``STEP_FIELD_WORDS``) above the run-length cap (``lossatlas.train.limits.max_steps``)
    is refused here, before anything runs.
    """
    cfg = module.Config()
    changes = dict(module.QUICK) if quick else {}
    if seeds is not None:
        changes["seeds"] = seeds
    fields = {f.name for f in dataclasses.fields(cfg)}
    hints = typing.get_type_hints(type(cfg))
    for k, v in (overrides or {}).items():
        if k not in fields:
            raise ValueError(f"--set {k}: {module.__name__.split('.')[-1]} has no field {k!r}; fields: {', '.join(sorted(fields))}")
        value = parse_value(v, hints.get(k)) if isinstance(v, str) else v
        changes[k] = check_type(f"--set {k}: {type(cfg).__name__}", k, value, hints.get(k))
    if "seeds" in changes and (not isinstance(changes["seeds"], int) or changes["seeds"] < 1):
        raise ValueError(f"seeds must be a positive integer, got {changes['seeds']!r}")
    for k, v in changes.items():  # --set epochs=1000000000: refused now, not after minutes of silence
        if k in (overrides or {}) and any(w in k for w in STEP_FIELD_WORDS):
            limits.check_field("--set", k, v)
    return dataclasses.replace(cfg, **changes)


def run_experiment(name: str, cfg=None, *, quick: bool = False, out_dir="runs", run_id=None, resume=None,
                   checkpoint_every: int = checkpoint.DEFAULT_EVERY, progress: bool = False):
    """Run experiment ``name`` and write its results folder.

    ``module.run`` executes inside :func:`lossatlas.checkpoint.checkpointing`: every training
    sweep and task stream it calls runs in chunks (epochs / tasks; the chunk size comes from
    the config only) and saves its state under ``<run folder>/checkpoints/`` every
    ``checkpoint_every`` chunks, so a killed run can be resumed and gives the same arrays,
    bitwise, as an uninterrupted one (on the same machine and software).

    Args:
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
      ``(run_path, results, checks)``.

    Raises:
      ValueError: unknown experiment, or ``resume`` of a different experiment / config.
    """
    module = get_experiment(name)
    if resume is not None:
        out_dir, experiment, run_id = results_lib.resolve_partial(resume)
        if experiment != name:
            raise ValueError(f"--resume {resume}: that folder holds a run of {experiment!r}, not {name!r}")
    cfg = cfg if cfg is not None else make_config(module, quick=quick)
    key = jax.random.PRNGKey(getattr(cfg, "seed", 0))
    record = {"experiment": name, "quick": quick, "config": cfg}
    with results_lib.new_run(name, record, out_dir=out_dir, run_id=run_id, resume=resume is not None) as run:
        t0 = time.perf_counter()
        with checkpoint.checkpointing(run.path, every=checkpoint_every, resume=resume is not None,
                                      progress=progress):
            res = module.run(cfg, key)
        elapsed = time.perf_counter() - t0
        arrays = {k: v for k, v in res.items() if isinstance(v, (np.ndarray, dict))}
        run.save_arrays(arrays)
        rows = module.table(res, cfg)
        run.write_table(rows, "table", title=getattr(module, "TABLE_TITLE", name))
        checks = module.checks(res, cfg)
        run.write_json("checks.json", checks)
        run.write_json("metrics.json", {"seconds": elapsed, "resumed": resume is not None, "table": rows,
                                        "checks_passed": checks_lib.all_passed(checks)})
        for fig_name, fig in module.plot(res, cfg).items():
            plotting.stamp_failed_checks(fig, checks)
            run.save_figure(fig, fig_name)
            import matplotlib.pyplot as plt
            plt.close(fig)
    return Path(run.path), res, checks

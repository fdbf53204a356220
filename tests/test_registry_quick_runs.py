"""Every registered experiment, in quick mode: its gating checks pass, its figures are drawn
from its folder, its metrics are numbers and its checks are records.

One parametrized test over the registry; the runs are shared with each experiment's own test
file (conftest.run_quick runs each quick config once per session, across xdist workers), and
conftest's scheduler sends the registry test of an experiment to the worker that runs that
experiment's test file, so no worker waits on the other's run.
"""
import json

import numpy as np
import pytest

from lossatlas import checks as checks_lib
from lossatlas import results
from lossatlas_experiments import EXPERIMENTS, REGISTRY


def _numeric(cell) -> bool:
    if results.is_stat(cell):
        return all(isinstance(v, (int, float)) for k, v in cell.items() if k != "digits")
    return cell is None or isinstance(cell, (int, float, bool)) or (isinstance(cell, str) and "+-" not in cell)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_quick_run_holds_its_claims_and_its_folder_is_complete(run_quick, name):
    path, res, checks, cfg = run_quick(name)
    checks_lib.assert_passed(checks)
    module = REGISTRY.get(name)
    assert module.__doc__ and "Command:" in module.__doc__, f"{name}: docstring without a Command: line"
    for f in ("config.json", "environment.json", "metrics.json", "checks.json", "table.md", "results.json"):
        assert (path / f).exists(), f
    pngs = sorted(path.glob("*.png"))
    assert pngs and all(p.with_suffix(".pdf").exists() for p in pngs)
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["checks_passed"] is True and np.isfinite(metrics["seconds"])
    bad = [(i, k, v) for i, row in enumerate(metrics["table"]) for k, v in row.items() if not _numeric(v)]
    assert not bad, f"{name}: table cells that are not numbers: {bad[:3]}"
    records = json.loads((path / "checks.json").read_text())
    assert checks_lib.normalize(records) == records  # already plain records
    # every figure names the paper and figure it mirrors, and the lint finds nothing a reviewer
    # flags (a legend over data, overprinted ticks, a log axis too sparse to read, a panel letter twice)
    assert isinstance(getattr(module, "FIGURE", None), str) and module.FIGURE.strip(), f"{name}: no FIGURE"
    figures = json.loads((path / "figures.json").read_text())
    assert sorted(f for v in figures.values() for f in v["files"] if f.endswith(".png")) == [p.name for p in pngs]
    lint = {fig: v["lint"] for fig, v in figures.items() if v["lint"]}
    assert not lint, f"{name}: figure lint: {lint}"

"""Every registered experiment, in quick mode: its gating checks pass, its figures are drawn
from its folder, its metrics are numbers and its checks are records.

One parametrized test over the registry; the runs are shared with each experiment's own test
file (conftest.run_quick runs each quick config once per session, across xdist workers). The
file's name sorts after every test_exp_* file, so xdist (--dist loadfile, in collection order)
hands it out once they have all started, and it mostly reads runs they already made.
(``--dist loadgroup``, which would keep each experiment's tests on one worker, does not work
with pytest 9.2: xdist 3.8 marks groups by rewriting a node id pytest no longer reads.)
"""
import json
import pathlib
import re

import numpy as np
import pytest

from lossatlas import checks as checks_lib
from lossatlas import results
from lossatlas_experiments import EXPERIMENTS, REGISTRY


def _numeric(cell) -> bool:
    if results.is_stat(cell):
        return all(isinstance(v, (int, float)) for k, v in cell.items() if k != "digits")
    return cell is None or isinstance(cell, (int, float, bool)) or (isinstance(cell, str) and "+-" not in cell)


def _latest_first() -> list:
    """The experiments, those whose own test file comes last in collection order first: the other
    xdist worker walks the test files front to back, so the two rarely wait on one run."""
    files = {"mnist1d_benchmark": "test_cli_results"}
    for f in sorted(pathlib.Path(__file__).parent.glob("test_exp_*.py")):
        for name in re.findall(r'run_quick\("(\w+)"|^NAME = "(\w+)"', f.read_text(), re.M):
            name = name[0] or name[1]
            files.setdefault(name, f.stem)
    return sorted(EXPERIMENTS, key=lambda n: (files.get(n, "~"), n), reverse=True)


@pytest.mark.parametrize("name", _latest_first())
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

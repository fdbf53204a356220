"""The tutorial notebooks in notebooks/: they run, and they are users of the public API only.

Each notebook is executed top to bottom in a fresh Jupyter kernel (nbclient) with
``LOSSATLAS_NOTEBOOK_QUICK=1``, which every notebook's first code cell reads to shrink its sizes
(epochs, seeds, grid points, starts). The notebooks' own cells assert what they show (a gradient
matches finite differences, Lanczos matches the dense spectrum, replay forgets less than naive
fine-tuning, ...), so an execution that finishes has checked those claims; a failing assertion
fails the test with the cell's traceback.

The cheap checks read the committed files: no stored outputs or execution counts (outputs are
stripped before committing), and only public ``lossatlas`` names (the same parsers that
tests/test_public_api.py applies to experiments, plus every ``lossatlas`` attribute chain resolved
against the package: no underscore names, nothing outside a module's ``__all__``).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from test_public_api import _experiment_imports, _internals, _private_imports

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_learning_loop", "03_gradients_gone_wrong", "04_landscape_and_hessian",
            "05_forgetting"]
#: Seconds one cell may run in the quick settings (a cold compilation cache on a loaded 2-core
#: machine included) before the kernel is interrupted and the test fails.
CELL_TIMEOUT = 300
QUICK_LINE = 'QUICK = os.environ.get("LOSSATLAS_NOTEBOOK_QUICK") == "1"'


def _code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_the_five_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), \
        f"{path.name}: strip outputs and execution counts before committing"
    # the first code cell reads the quick switch, before anything heavy runs
    assert QUICK_LINE in code[0].source, f"{path.name}: the first code cell must set {QUICK_LINE}"
    assert any(c.cell_type == "markdown" for c in nb.cells)


def _module_aliases(tree: ast.AST) -> dict[str, str]:
    """``{local name: lossatlas module path}`` for names bound to lossatlas modules by imports."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "lossatlas":
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else "lossatlas"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lossatlas":
            for a in node.names:
                if importlib.util.find_spec(f"{node.module}.{a.name}") is not None:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _public_in(module: types.ModuleType, name: str) -> bool:
    """``name`` is a public member of ``module``: no underscore, and in ``__all__`` if the module has
    one (a submodule counts as public)."""
    if name.startswith("_"):
        return False
    exported = getattr(module, "__all__", None)
    return (exported is None or name in exported
            or importlib.util.find_spec(f"{module.__name__}.{name}") is not None)


def _non_public_uses(source: str) -> list[str]:
    """``lossatlas`` names used in ``source`` that are not public: imported names and attribute
    chains on imported lossatlas modules, resolved against the installed package."""
    tree = ast.parse(source)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lossatlas":
            module = importlib.import_module(node.module)
            bad += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names
                    if not _public_in(module, a.name)]
    aliases = _module_aliases(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [], node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name) or base.id not in aliases:
            continue
        obj = importlib.import_module(aliases[base.id])
        for name in reversed(chain):
            if not isinstance(obj, types.ModuleType):
                break  # an attribute of a class or function: not the package's namespace
            if not _public_in(obj, name):
                bad.append(f"line {node.lineno}: {obj.__name__}.{name}")
                break
            obj = getattr(obj, name)
    return sorted(set(bad))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_only_the_public_api(path, tmp_path):
    code = tmp_path / f"{path.stem}.py"
    code.write_text(_code(path))
    bad = _private_imports(code) + _internals(code) + _experiment_imports(code) + _non_public_uses(code.read_text())
    assert not bad, bad


def test_the_public_name_check_catches_private_names():
    source = ("import lossatlas as la\nfrom lossatlas import grads, continual as cl\n"
              "from lossatlas.grads import check, _util\n"
              "la.grads.check\nla.data.inspect\nla._os\ncl.run_stream\ngrads.gradcheck._relative_error\n"
              "la.TrainConfig().replace\n")
    bad = _non_public_uses(source)
    # _util (underscore), data.inspect (not in data.__all__), la._os, gradcheck._relative_error
    assert len(bad) == 4, bad
    assert not any("run_stream" in b or "replace" in b or "import check" in b for b in bad), bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_quick_settings(path, monkeypatch):
    monkeypatch.setenv("LOSSATLAS_NOTEBOOK_QUICK", "1")
    nb = nbformat.read(path, as_version=4)
    # one more cell: the kernel is this interpreter, so the notebook ran against the code under test
    nb.cells.append(nbformat.v4.new_code_cell("import sys, lossatlas\nprint(sys.executable)\nprint(lossatlas.__file__)"))
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}).execute()
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs).split()
    assert printed[0] == sys.executable
    assert Path(printed[1]).resolve() == Path(importlib.import_module("lossatlas").__file__).resolve()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors

"""Experiments are users of the library: they import only its public names."""
import ast
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _private_imports(path: Path) -> list[str]:
    """``lossatlas`` imports of an underscore module or name in one file."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lossatlas":
            parts = node.module.split(".")
            names = [a.name for a in node.names]
            if any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names):
                bad.append(f"{path.name}:{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "lossatlas" and any(p.startswith("_") for p in a.name.split(".")):
                    bad.append(f"{path.name}:{node.lineno}: import {a.name}")
    return bad


def test_experiments_import_no_private_lossatlas_names():
    files = sorted(EXPERIMENTS.glob("*.py"))
    assert len(files) > 10
    bad = [b for f in files for b in _private_imports(f)]
    assert not bad, bad


def test_the_parser_catches_a_private_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from lossatlas._compat import x\nimport lossatlas._y\nfrom lossatlas import _z, grads\n")
    assert len(_private_imports(f)) == 3


#: Names that hand out a training program's internals (its init/step/scan pieces).
PROGRAM_NAMES = {"program", "Program"}
#: Methods of those internals; an experiment calling one reaches beneath the public surface.
PROGRAM_METHODS = {"compiled", "run_epochs", "train_step", "init_carry", "execute", "hparams", "device_data",
                   "host_data", "batch_indices"}


def _internals(path: Path) -> list[str]:
    """Uses of a training program's internals in one file: ``program``/``Program`` imported
    from any lossatlas module or reached as an attribute, and calls of their methods."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lossatlas":
            hit = [a.name for a in node.names if a.name in PROGRAM_NAMES]
            if hit or node.module.endswith(".engine"):
                bad.append(f"{path.name}:{node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
        elif isinstance(node, ast.Attribute) and (node.attr in PROGRAM_NAMES or node.attr in PROGRAM_METHODS):
            bad.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return bad


def test_experiments_do_not_touch_program_internals():
    bad = [b for f in sorted(EXPERIMENTS.glob("*.py")) for b in _internals(f)]
    assert not bad, bad


def test_the_parser_catches_program_internals(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from lossatlas.train import program, sweep\nimport lossatlas as la\n"
                 "p = la.train.program(c, d)\np.compiled((), 1)[0]\ns = p.train_step(1)\nr = make_train(c, d).program\n")
    assert len(_internals(f)) == 5


def _experiment_imports(path: Path) -> list[str]:
    """Imports of ``lossatlas_experiments`` in one file, static or by name (a string constant
    that is exactly that module path, e.g. for ``importlib.import_module``)."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mods = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value:
            mods = [node.value]
        else:
            mods = []
        bad += [f"{path.name}:{node.lineno}: {m}" for m in mods if m.split(".")[0] == "lossatlas_experiments"]
    return bad


def test_the_library_never_imports_the_experiments():
    """Arrows point down: nothing under src/lossatlas imports lossatlas_experiments (it is given the registry)."""
    files = sorted((EXPERIMENTS.parent / "src" / "lossatlas").rglob("*.py"))
    assert len(files) > 20
    bad = [b for f in files for b in _experiment_imports(f)]
    assert not bad, bad


def test_the_parser_catches_an_experiments_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('"""Docs may name lossatlas_experiments."""\nimport lossatlas_experiments.optimizers\n'
                 'from lossatlas_experiments import REGISTRY\nPKG = "lossatlas_experiments"\n')
    assert len(_experiment_imports(f)) == 3


def test_every_library_package_is_in_the_wheel():
    """pyproject's explicit package list names every package under src/lossatlas: a missing one is
    absent from a non-editable install (``pip install .``), where ``import lossatlas`` then fails."""
    import tomllib

    root = EXPERIMENTS.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    src = root / "src"
    packages = {".".join(p.parent.relative_to(src).parts) for p in (src / "lossatlas").rglob("__init__.py")}
    assert len(packages) > 5
    assert packages <= listed, sorted(packages - listed)

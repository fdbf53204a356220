"""Issue 13, part 4: the command line explains itself. `run NAME --help` lists the config fields,
`list` shows claims and quick runtimes, a run's printout ends with its figure files and, in quick
mode, a note that paper values are for the full recipe. Nothing here runs a real experiment."""
import dataclasses
import re
import types
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lossatlas import cli, describe
from lossatlas.registry import Registry
from lossatlas_experiments import REGISTRY
from lossatlas_experiments.__main__ import main  # the `lossatlas` command

WIDTH = 100
RUNTIME_TOKEN = re.compile(r"^~?\d+(\.\d+)?(-\d+(\.\d+)?)? (s|sec|min|minutes?)$|^\?$")


@pytest.fixture(autouse=True)
def _terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", str(WIDTH))


# ------------------------------------------------------------------------------ a fake experiment

@dataclasses.dataclass(frozen=True)
class HelpConfig:
    dataset: str = "digits"              # which dataset to load
    widths: tuple = (32, 16)             # hidden layer sizes,
                                         # input side first
    # A block of comment lines explains the field below;
    # it is not a section heading (and not its doc).
    momentum: float = 0.9
    # (a) training
    learning_rate: float = 0.05
    epochs: int = dataclasses.field(default=12, metadata={"doc": "passes over the data (metadata wins)"})  # not this
    grid: tuple = (0.1,
                   0.2)                  # a default over two lines
    seeds: int = 3
    seed: int = 0


FAKE_DOC = """A fake study for the help tests.

Runtime:    quick (2 seeds), 2026-11-30, 2 shared CPU cores under load: 31 s (38 s wall with
            start-up). Full: 400 s.
Checks:     none; quick 99 s is not in the runtime block.
"""

HELP_QUICK = {"widths": (8,), "epochs": 2, "seeds": 2}


def _module(name="fake_help", doc=FAKE_DOC, plot=None):
    mod = types.ModuleType(f"lossatlas_experiments.{name}", doc)
    mod.Config, mod.QUICK = HelpConfig, dict(HELP_QUICK)
    mod.run = lambda cfg, key: {"x": np.arange(3.0)}
    mod.table = lambda res, cfg: [{"a": 1.0}]
    mod.checks = lambda res, cfg: [{"name": "claim", "value": 1.0, "passed": True, "detail": "d"}]
    mod.plot = plot or (lambda res, cfg: {"fake_help": plt.figure(), "second": plt.figure()})
    return mod


def _help(argv, registry, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv, registry=registry)
    assert e.value.code == 0
    return capsys.readouterr().out


def _row(text: str, field: str) -> str:
    """The help line of ``field`` (its first line)."""
    (line,) = [ln for ln in text.splitlines() if ln.startswith(f"  {field} ")]
    return line


# ------------------------------------------------------------------------------ run NAME --help

def test_run_name_help_lists_every_field_with_type_default_quick_and_doc(capsys):
    reg = Registry.from_modules({"fake_help": _module()}, {"fake_help": "Fake claim: help lists fields"})
    out = _help(["run", "fake_help", "--help"], reg, capsys)
    assert "usage: lossatlas run" in out and "--set KEY=VALUE" in out   # the options still come first
    assert "fake_help: Fake claim: help lists fields" in out
    assert "quick run (--quick): 31 s" in out
    expect = {  # field: (type, default, quick or None, doc)
        "dataset": ("str", "'digits'", None, "which dataset to load"),
        "widths": ("tuple", "(32, 16)", "(8,)", "hidden layer sizes, input side first"),
        "momentum": ("float", "0.9", None, ""),
        "learning_rate": ("float", "0.05", None, ""),
        "epochs": ("int", "12", "2", "passes over the data (metadata wins)"),
        "grid": ("tuple", "(0.1, 0.2)", None, "a default over two lines"),
        "seeds": ("int", "3", "2", ""),
        "seed": ("int", "0", None, ""),
    }
    for field, (typ, default, quick, doc) in expect.items():
        cells = _row(out, field).split()
        assert cells[:2] == [field, typ], cells
        line = _row(out, field)
        assert default in line and doc in line, line
        if quick is not None:
            assert line.index(quick, line.index(default) + len(default)) > 0, line
        else:
            assert line.split(default, 1)[1].strip() == doc, line   # nothing in the QUICK column
    assert "not this" not in out and "explains" not in out
    assert "  # (a) training" in out   # the section comment heads its group
    assert out.index("  # (a) training") < out.index("  learning_rate ")
    assert all(len(ln) <= WIDTH for ln in out.splitlines()), [ln for ln in out.splitlines() if len(ln) > WIDTH]


def test_run_help_of_every_registered_experiment_lists_its_fields(capsys):
    for name in REGISTRY:
        module = REGISTRY.get(name)
        out = _help(["run", name, "--help"], REGISTRY, capsys)
        names = [f.name for f in dataclasses.fields(module.Config)]
        missing = [f for f in names if not any(ln.startswith(f"  {f} ") or ln == f"  {f}" for ln in out.splitlines())]
        assert not missing, (name, missing)
        assert re.search(r"quick run \(--quick\): (\S+ \S+|\?),", out), name


def test_saddle_escape_help_shows_defaults_quick_values_and_comments(capsys):
    """A real experiment: every default and QUICK value from its module, docs from its trailing comments."""
    module = REGISTRY.get("saddle_escape")
    out = _help(["run", "saddle_escape", "--help"], REGISTRY, capsys)
    cfg = module.Config()
    for f in dataclasses.fields(cfg):
        line = _row(out, f.name)
        assert repr(getattr(cfg, f.name)) in line, line
        if f.name in module.QUICK:
            assert line.split(repr(getattr(cfg, f.name)), 1)[1].split()[0] == repr(module.QUICK[f.name]), line
    assert _row(out, "starts").endswith("starts with y0 != 0")
    assert _row(out, "radius").endswith("R: escaped once |y| > R")


def test_run_help_without_a_name_or_registry_and_with_an_unknown_name(capsys):
    out = _help(["run", "--help"], REGISTRY, capsys)
    assert "lossatlas run NAME --help" in out and "FIELD" not in out
    out = _help(["run", "saddle_escape", "--help"], None, capsys)   # the library alone: options only
    assert "FIELD" not in out
    out = _help(["run", "no_such_experiment", "--help"], REGISTRY, capsys)
    assert "cannot list the config fields of 'no_such_experiment'" in out and "saddle_escape" in out


# ------------------------------------------------------------------------------ field docs

def test_field_docs_metadata_then_trailing_comment_then_empty():
    docs = describe.field_docs(HelpConfig)
    assert docs == {"dataset": "which dataset to load", "widths": "hidden layer sizes, input side first",
                    "momentum": "", "learning_rate": "",
                    "epochs": "passes over the data (metadata wins)", "grid": "a default over two lines",
                    "seeds": "", "seed": ""}

    @dataclasses.dataclass(frozen=True)
    class Child(HelpConfig):
        extra: int = 1       # a subclass field
        seed: int = 5        # the subclass's comment wins

    docs = describe.field_docs(Child)
    assert docs["extra"] == "a subclass field" and docs["seed"] == "the subclass's comment wins"
    assert docs["dataset"] == "which dataset to load"
    assert describe.field_docs(int) == {}


def test_field_docs_survive_a_class_without_source():
    ns = {}
    exec("import dataclasses\n@dataclasses.dataclass\nclass C:\n    a: int = 1  # lost\n"
         "    b: int = dataclasses.field(default=2, metadata={'doc': 'kept\\n  on one line'})\n", ns)
    assert describe.field_docs(ns["C"]) == {"a": "", "b": "kept on one line"}
    mod = types.ModuleType("m")
    mod.Config, mod.QUICK = ns["C"], {"a": 3}
    (a, b) = describe.config_fields(mod)
    assert (a.name, a.type, a.default, a.quick, a.doc) == ("a", "int", 1, 3, "")
    assert b.quick is describe.NO_VALUE
    assert "  a  " in describe.config_help("m", mod, width=WIDTH)


# ------------------------------------------------------------------------------ quick runtime

@pytest.mark.parametrize("doc, want", [
    (FAKE_DOC, "31 s"),
    ("x\n\nRuntime:    quick (128 + 64 starts, 2-D: 300 steps): 3-5 s inside the runner\n", "3-5 s"),
    ("x\n\nRuntime:    quick ~1.5-2 min on 2 shared CPU cores (4 draws x 3 seeds).\n", "~1.5-2 min"),
    ("x\n\nRuntime:    full 1003 s wall / 333 s CPU, quick 97-155 s wall.\n", "97-155 s"),
    ("x\n\nRuntime:    2026-11-30. Quick (1000 examples, 48 Lanczos steps): 36 s wall.\n", "36 s"),
    ("x\n\nRuntime:    full 400 s.\nChecks:     quick 5 s\n", None),   # "quick" outside the block
    ("x\n\nRuntime:    quick: not measured.\n", None),
    ("no runtime block", None),
    ("", None),
    (None, None),
])
def test_quick_runtime_is_read_from_the_runtime_block(doc, want):
    assert describe.quick_runtime(doc) == want


# ------------------------------------------------------------------------------ list

def test_list_prints_every_name_with_its_claim_and_quick_runtime(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(ln) <= WIDTH for ln in lines), [ln for ln in lines if len(ln) > WIDTH]
    assert lines[0].split() == ["NAME", "QUICK", "CLAIM"]
    for name in REGISTRY:
        (row,) = [ln for ln in lines if ln.startswith(name + " ")]
        runtime = row[len(name):].strip().split("  ")[0]
        assert RUNTIME_TOKEN.match(runtime), (name, runtime)
        assert REGISTRY.descriptions[name].split()[0] in row, row   # the claim starts on the name's line
    text = " ".join(out.split())
    for claim in REGISTRY.descriptions.values():
        assert " ".join(claim.split()) in text, claim                 # and continues, wrapped, below it
    saddle = next(ln for ln in lines if ln.startswith("saddle_escape "))
    assert saddle.split()[1:3] == ["3-5", "s"]


def test_list_reads_no_module_and_prints_a_question_mark_when_none_is_recorded(capsys):
    def no_import(name):
        raise AssertionError(f"list imported {name}")

    docs = {"timed": "T.\n\nRuntime:    quick: 4 s.\n", "untimed": "U.\n"}
    reg = Registry({"timed": "claim of timed", "untimed": "claim of untimed", "broken": "claim of broken"},
                   no_import, docstring=lambda n: docs[n] if n in docs else None)
    with pytest.raises(AssertionError, match="broken"):
        reg.get("broken")
    assert reg.doc("broken") == ""   # the fallback import failed: no docstring, no crash
    assert cli.main(["list"], registry=reg) == 0
    rows = {ln.split()[0]: ln.split()[1:] for ln in capsys.readouterr().out.splitlines()[1:4]}
    assert rows == {"broken": ["?", "claim", "of", "broken"], "timed": ["4", "s", "claim", "of", "timed"],
                    "untimed": ["?", "claim", "of", "untimed"]}


def test_registry_doc_reads_the_source_without_the_module():
    import inspect
    assert REGISTRY.doc("saddle_escape") == inspect.cleandoc(REGISTRY.get("saddle_escape").__doc__)
    with pytest.raises(ValueError, match="known"):
        REGISTRY.doc("no_such_experiment")
    mod = _module()
    reg = REGISTRY.with_modules({"fake_help": mod})
    assert reg.doc("fake_help") == FAKE_DOC and reg.doc("saddle_escape") == REGISTRY.doc("saddle_escape")


# ------------------------------------------------------------------------------ end of a run

@pytest.mark.parametrize("quick", [True, False])
def test_run_printout_ends_with_absolute_figure_paths_and_the_quick_note(quick, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reg = Registry.from_modules({"fake_help": _module()})
    argv = ["run", "fake_help", "--out", "runs", "--no-progress", "--no-compilation-cache"] + ["--quick"] * quick
    assert cli.main(argv, registry=reg) == 0
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs" / "fake_help").iterdir()
    tail = out[out.index("results: "):].splitlines()
    assert tail[0] == f"results: {run_dir.resolve()}"
    figures = sorted(str(p.resolve()) for p in run_dir.iterdir() if p.suffix in (".png", ".pdf"))
    assert len(figures) == 4 and all(Path(ln.strip()).is_absolute() for ln in tail[2:6])
    assert tail[1] == "figures:" and [ln.strip() for ln in tail[2:6]] == figures
    note = " ".join(tail[6:])
    if quick:
        assert note.startswith("quick mode: a smoke-scale run") and "paper values" in note
        assert "full recipe: `lossatlas run fake_help`" in note
    else:
        assert note == ""

"""Issue 13, part 1: `lossatlas reproduce` runs the experiments into one folder (skipping complete
runs of the same mode and config, an experiment that raises is an ERROR row) and writes a report
(index.html + report.md) whose links all resolve inside the folder and whose verdicts are the
run folders' checks.json. The CLI tests use tiny fake experiments (a fraction of a second each);
the report is also built from two real quick runs shared with the rest of the suite."""
import dataclasses
import html
import html.parser
import json
import types
import urllib.parse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lossatlas import checks as checks_lib
from lossatlas import cli, exitcodes, results
from lossatlas.registry import Registry
from lossatlas.results import report as report_lib

# ------------------------------------------------------------------------------ fake experiments

#: What each fake module's run was called with, in order: the skip logic is judged by it.
CALLS: list[tuple[str, int]] = []
#: A detail with HTML in it: the report must show it as text, not as markup.
NASTY = '<b>bold</b> & "quoted" <script>x</script> | pipe'


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    n: int = 5        # points (quick: 2)
    seeds: int = 1
    seed: int = 0


def _plot(res, cfg):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot(res["x"])
    return {"curve": fig}


def _fake(name, checks, fail=None):
    mod = types.ModuleType(name, f"Fake study {name}.\n")
    mod.Config, mod.QUICK = FakeConfig, {"n": 2}

    def run(cfg, key):
        CALLS.append((name, cfg.n))
        if fail:
            raise RuntimeError(fail)
        return {"x": np.arange(float(cfg.n))}

    mod.run, mod.table, mod.plot = run, (lambda res, cfg: [{"n": float(res["x"].size)}]), _plot
    mod.checks = lambda res, cfg: checks
    return mod


GOOD_CHECKS = [
    checks_lib.record("sum is right", True, 1.0, paper=1.0, tolerance="exact", claim="1 = 1", detail="ok"),
    checks_lib.record("timing (report-only)", True, 0.5, gating=False, detail="fast"),
    checks_lib.record("paper's big number", False, 2.0, paper=94.0, gating=False, detail=NASTY),
]
GATE_CHECKS = [checks_lib.record("must hold", False, 0.1, paper=0.9, tolerance="> 0.5", detail="it did not")]


@pytest.fixture
def fake_registry():
    CALLS.clear()
    mods = {"fake_good": _fake("fake_good", GOOD_CHECKS), "fake_gate": _fake("fake_gate", GATE_CHECKS),
            "fake_boom": _fake("fake_boom", [], fail="boom: the fake study raised\nsecond line of the message")}
    return Registry.from_modules(mods, {"fake_good": "Good claim <i>italic?</i>", "fake_gate": "Gate claim",
                                        "fake_boom": "Boom claim"})


# ------------------------------------------------------------------------------ reading the report

class _Page(html.parser.HTMLParser):
    """Every img src, a href, element id and tag of a page, and each table's rows as cell texts:
    ``tables[where]`` is the first table in the section with that id (or under that h2
    heading), ``all_tables[where]`` every one of them."""

    def __init__(self):
        super().__init__()
        self.srcs, self.hrefs, self.ids, self.tags = [], [], set(), set()
        self.all_tables: dict[str, list[list[list[str]]]] = {}
        self._where, self._row, self._cell, self._h2 = "", None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "section":
            self._where = a.get("id", "")
        elif tag == "h2":
            self._h2 = ""
        elif tag == "img":
            self.srcs.append(a["src"])
        elif tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        elif tag == "table":
            self.all_tables.setdefault(self._where, []).append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self._where, self._h2 = self._h2.strip(), None
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr":
            self.all_tables[self._where][-1].append(self._row)
            self._row = None

    @property
    def tables(self) -> dict[str, list[list[str]]]:
        return {where: tables[0] for where, tables in self.all_tables.items()}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._h2 is not None:
            self._h2 += data


def _page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _assert_links_resolve(report_dir: Path, page: _Page):
    """Every relative img src / a href names an existing file or folder; '#x' names an element
    id; nothing points outside (no scheme, no host)."""
    assert page.srcs, "no figures in the report"
    for link in page.srcs + page.hrefs:
        parts = urllib.parse.urlsplit(link)
        assert not parts.scheme and not parts.netloc, link
        if link.startswith("#"):
            assert link[1:] in page.ids, link
            continue
        assert (report_dir / urllib.parse.unquote(parts.path)).exists(), link
    for src in page.srcs:  # figures are copies inside the report folder: it can be zipped alone
        target = (report_dir / urllib.parse.unquote(src)).resolve()
        assert report_dir.resolve() in target.parents and target.suffix == ".png", src


def _assert_verdicts_match(page: _Page, run_dir: Path, experiment: str):
    """The experiment's check table holds every record of checks.json, with its verdict."""
    rows = page.tables[report_lib._anchor(experiment)]
    header, body = rows[0], rows[1:]
    col = {h: i for i, h in enumerate(header)}
    shown = {r[col["check"]]: r for r in body}
    checks = json.loads((run_dir / "checks.json").read_text())
    assert len(body) == len(checks)
    for c in checks:
        want = ("PASS" if c["passed"] else "FAIL") if c.get("gating", True) else \
            ("pass (report-only)" if c["passed"] else "NEGATIVE RESULT")
        assert shown[c["name"]][col["verdict"]] == want, (experiment, c)
        assert shown[c["name"]][col["ours"]] == report_lib.format_value(c["value"])
        assert shown[c["name"]][col["paper"]] == report_lib.format_value(c.get("paper"))
    negatives = {(r[0], r[1]) for r in page.tables["Negative results"][1:]}
    for c in checks:  # a failed report-only check is listed up front as a negative result
        assert ((experiment, c["name"]) in negatives) == (not c["passed"] and not c.get("gating", True))


# ------------------------------------------------------------------------------ the CLI

def _reproduce(registry, out, *args):
    return cli.main(["reproduce", "--out", str(out), "--no-progress", *args], registry=registry)


def test_reproduce_runs_reports_and_marks_the_error_and_the_failed_gate(fake_registry, tmp_path, capsys):
    out = tmp_path / "repro"
    code = _reproduce(fake_registry, out)
    printed = capsys.readouterr().out
    assert code == exitcodes.RUNTIME  # fake_boom raised; fake_gate's gating check failed too
    assert sorted(n for n, _ in CALLS) == ["fake_boom", "fake_gate", "fake_good"]  # the others still ran
    assert all(n == 2 for _, n in CALLS)  # the QUICK config is the default
    html_path, md_path = out.resolve() / "report" / "index.html", out.resolve() / "report" / "report.md"
    assert f"report: {html_path}\n" in printed and f"report: {md_path}\n" in printed
    assert "fake_boom: ERROR RuntimeError: boom: the fake study raised" in printed

    page = _page(html_path)
    _assert_links_resolve(html_path.parent, page)
    summary = {r[0]: r for r in page.tables["Summary"][1:]}
    assert summary["fake_boom"][2] == "ERROR" and summary["fake_gate"][2] == "FAIL"
    assert summary["fake_good"][2:6] == ["PASS", "1", "0", "1"]  # 1 gating passed, 0 failed, 1 negative result
    assert page.tables["Summary"][0][0] == "experiment"
    text = html_path.read_text()
    assert "RuntimeError: boom: the fake study raised" in text and "second line" not in text
    for name in ("fake_good", "fake_gate"):
        (run_dir,) = results.iter_runs(out, name)
        _assert_verdicts_match(page, run_dir, name)
    # escaped: the detail's markup is text, no tag of it was parsed; no scripts or external assets
    assert html_parse_text(page, "fake_good", "paper's big number", "detail") == NASTY
    assert not page.tags & {"script", "b", "i", "link", "iframe"}
    measured = page.all_tables[report_lib._anchor("fake_good")][1]  # metrics.json's table, after the checks
    assert measured == [["n"], ["2"]]
    assert "Good claim &lt;i&gt;italic?&lt;/i&gt;" in text
    assert "The paper values are for the full recipe" in text

    md = md_path.read_text()
    for name in ("fake_good", "fake_gate", "fake_boom"):
        assert f"### {name}" in md and f"| {name} |" in md
    assert "**ERROR** (quick): RuntimeError: boom: the fake study raised" in md
    assert "&lt;i>italic?&lt;/i>" in md and "&lt;script>" in md  # no raw tags for a Markdown viewer to render
    assert "| paper's big number |" in md and "NEGATIVE RESULT" in md and "\\| pipe" in md
    assert "Measured table" in md and "| n |\n|---|\n| 2 |" in md
    for link in [ln.split("](")[1].split(")")[0] for ln in md.splitlines() if "](" in ln]:
        assert (md_path.parent / urllib.parse.unquote(link)).exists(), link


def html_parse_text(page, experiment, check, column):
    rows = page.tables[report_lib._anchor(experiment)]
    col = rows[0].index(column)
    return next(r[col] for r in rows[1:] if r[0] == check)


def test_reproduce_again_skips_complete_runs_of_the_same_mode_only(fake_registry, tmp_path, capsys):
    out = tmp_path / "repro"
    assert _reproduce(fake_registry, out, "--only", "fake_good") == exitcodes.OK
    (first,) = results.iter_runs(out, "fake_good")
    stamp = (first / results.COMPLETE_MARKER).read_text()
    capsys.readouterr()
    assert _reproduce(fake_registry, out, "--only", "fake_good", "--quick") == exitcodes.OK
    assert CALLS == [("fake_good", 2)]  # not run again
    assert list(results.iter_runs(out, "fake_good")) == [first]
    assert (first / results.COMPLETE_MARKER).read_text() == stamp
    assert "complete quick run exists, not rerun" in capsys.readouterr().out
    page = _page(out / "report" / "index.html")
    assert {r[0]: r[2] for r in page.tables["Summary"][1:]} == {"fake_good": "PASS (existing run)"}
    # another mode is another run
    assert _reproduce(fake_registry, out, "--only", "fake_good", "--full") == exitcodes.OK
    assert CALLS == [("fake_good", 2), ("fake_good", 5)]
    assert len(list(results.iter_runs(out, "fake_good"))) == 2
    # a run of another config is no match
    assert results.find_run(out, "fake_good", {"experiment": "fake_good", "quick": True,
                                                "config": FakeConfig(n=3)}) is None
    assert results.find_run(out, "fake_good", {"experiment": "fake_good", "quick": True,
                                                "config": FakeConfig(n=2)}) == first


def test_gating_failure_alone_exits_1_and_report_only_failure_exits_0(fake_registry, tmp_path):
    assert _reproduce(fake_registry, tmp_path / "a", "--only", "fake_gate") == exitcodes.CHECK_FAILED
    assert _reproduce(fake_registry, tmp_path / "b", "--only", "fake_good") == exitcodes.OK


def test_only_with_an_unknown_name_is_one_line_and_runs_nothing(fake_registry, tmp_path, capsys):
    out = tmp_path / "repro"
    assert _reproduce(fake_registry, out, "--only", "fake_good", "nope") == exitcodes.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--only: unknown experiment 'nope'; known: fake_boom, fake_gate, fake_good" in err
    assert CALLS == [] and not out.exists()


def test_quick_and_full_are_mutually_exclusive(fake_registry, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _reproduce(fake_registry, tmp_path, "--quick", "--full")
    assert exc.value.code == exitcodes.USAGE and "not allowed with" in capsys.readouterr().err


def test_report_command_reports_the_newest_run_of_each_experiment(fake_registry, tmp_path, capsys):
    out = tmp_path / "repro"
    _reproduce(fake_registry, out, "--only", "fake_good", "fake_gate")
    _reproduce(fake_registry, out, "--only", "fake_good", "--full")
    newest = max(results.iter_runs(out, "fake_good"), key=results.completed_at)
    capsys.readouterr()
    assert cli.main(["report", str(out), "--out", str(tmp_path / "rep")], registry=fake_registry) == exitcodes.OK
    printed = capsys.readouterr().out
    assert f"report: {(tmp_path / 'rep' / 'index.html').resolve()}" in printed
    page = _page(tmp_path / "rep" / "index.html")
    _assert_links_resolve(tmp_path / "rep", page)
    assert {r[0]: r[1] for r in page.tables["Summary"][1:]} == {"fake_gate": "quick", "fake_good": "full"}
    assert any(newest.name in h for h in page.hrefs)


def test_newest_run_is_the_last_completed_even_when_ids_tie_to_the_second(tmp_path):
    """Run ids are a timestamp to the second plus a random suffix: two runs in one second sort
    by the suffix, so "newest" is the COMPLETE marker's time."""
    record = {"experiment": "e", "quick": True, "config": {"n": 1}}
    for run_id, done in (("20261130-120000-ffffff", "2026-11-30T12:00:00.100000+00:00"),
                         ("20261130-120000-000000", "2026-11-30T12:00:00.900000+00:00")):
        folder = tmp_path / "e" / run_id
        folder.mkdir(parents=True)
        results.write_json(folder / "config.json", record)
        (folder / results.COMPLETE_MARKER).write_text(done + "\n")
    assert results.latest_runs(tmp_path) == [tmp_path / "e" / "20261130-120000-000000"]
    assert results.find_run(tmp_path, "e", record) == tmp_path / "e" / "20261130-120000-000000"


def test_build_report_refuses_an_incomplete_folder(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="not a complete run"):
        results.build_report([tmp_path / "x"], tmp_path / "rep")
    with pytest.raises(ValueError, match="no complete run folders"):
        results.build_report(tmp_path, tmp_path / "rep")


# ------------------------------------------------------------------------------ real quick runs

def test_report_of_two_real_quick_runs(run_quick, tmp_path):
    """Two registered experiments' quick runs (shared with their own tests): every check's
    verdict is checks.json's, their figures are copied in, environment versions are shown."""
    from lossatlas_experiments import REGISTRY
    dirs = [run_quick(name)[0] for name in ("minima_similarity", "saddle_escape")]
    paths = results.build_report(dirs, tmp_path / "report", claims=REGISTRY.descriptions)
    page = _page(paths.html)
    _assert_links_resolve(paths.html.parent, page)
    for name, run_dir in zip(("minima_similarity", "saddle_escape"), dirs):
        _assert_verdicts_match(page, run_dir, name)
        assert len([f for f in paths.figures if f.parent.name == name]) == len(list(run_dir.glob("*.png")))
    env = {r[0]: r[1] for r in page.tables["Environment"][1:]}
    from importlib import metadata
    assert env["mnist1d"] == metadata.version("mnist1d") and env["jax"] == metadata.version("jax")
    md = paths.markdown.read_text()
    assert "### minima_similarity" in md and "### saddle_escape" in md
    assert html.escape(REGISTRY.descriptions["saddle_escape"]) in paths.html.read_text()

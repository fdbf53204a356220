"""benchmarks/run_all.py's pure parts: the README block rewrite, the FLOP count, the GPU plan."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_block_is_replaced_between_markers_only(run_all):
    text = f"intro\n{run_all.README_START}\nold table\n{run_all.README_END}\noutro\n"
    new = run_all.replace_readme_block(text, "| a | b |\n")
    assert new == f"intro\n{run_all.README_START}\n| a | b |\n{run_all.README_END}\noutro\n"
    assert run_all.replace_readme_block(new, "| a | b |") == new  # idempotent
    for bad in ("no markers", f"{run_all.README_END}\n{run_all.README_START}",
                f"{run_all.README_START}\n{run_all.README_START}\n{run_all.README_END}"):
        with pytest.raises(ValueError, match="README"):
            run_all.replace_readme_block(bad, "x")


def test_the_repository_readme_has_one_block(run_all):
    text = (ROOT / "README.md").read_text()
    assert run_all.replace_readme_block(text, "x").count(run_all.README_START) == 1


def test_mlp_flops_counts_forward_and_backward_matmuls(run_all):
    # 2-4-3 net, 1 train + 1 test example: forward 2*(2*4 + 4*3) = 40; backward = weight grads (40)
    # + input grads of all but the first layer (2*4*3 = 24); test forward 40.
    assert run_all.mlp_flops((4,), n_in=2, n_out=3, train_examples=1, test_examples=1) == 40 + 40 + 24 + 40


def test_markdown_escapes_pipes_and_marks_targets(run_all):
    rows = [run_all.row("w", "1 s", "peer", "2 s", 2.0, 5, "max |diff| 0"),
            run_all.row("v", "1 s", "peer", "9 s", 9.0, 5)]
    rec = {"device_description": "cpu", "mode": "cpu", "date": "d", "wall_s": 60.0,
           "loadavg": {"start": [1.0, 1.0, 1.0], "end": None}, "rows": rows}
    md = run_all.markdown(rec)
    table = [ln for ln in md.splitlines() if ln.startswith(("| w |", "| v |"))]
    assert [ln.count(" | ") for ln in table] == [6, 6]  # seven cells each: the note's pipes are escaped
    assert table[0].endswith("| **no** |") and table[1].endswith("| yes |")


def test_gpu_mode_parses_and_has_sizes(run_all, capsys):
    plan = run_all.main(["--mode", "gpu", "--dry-run"])
    assert set(plan["sizes"]) == set(run_all.SECTIONS)
    assert plan["sizes"]["training"]["big_seeds"] == 4096 and plan["targets"]["sweep_vs_func"] == 20


def test_rerun_sections_replace_only_their_rows(run_all):
    """--keep-rows-from: rows of the sections rerun are replaced, the others kept, in section order."""
    prev = {"date": "d0", "rows": [{"workload": "training: a"}, {"workload": "continual: old"},
                                   {"workload": "saddles: s"}]}
    rec = {"rows": [{"workload": "continual: new 1"}, {"workload": "continual: new 2"}]}
    rows = run_all.merged_rows(prev, rec, ["continual"])
    assert [r["workload"] for r in rows] == ["training: a", "continual: new 1", "continual: new 2", "saddles: s"]
    assert [bool(r.get("kept")) for r in rows] == [True, False, False, True] and rec["previous_date"] == "d0"
    rec["rows"] = rows  # merging again (after the next section) keeps the same rows
    assert [r["workload"] for r in run_all.merged_rows(prev, rec, ["continual"])] == [r["workload"] for r in rows]

"""Run folders hold what a run returned, and table cells stay numbers until table.md."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from lossatlas import results
from lossatlas.overrides import config_from_dict
from lossatlas.registry import Registry


def test_results_round_trip_keeps_nesting_keys_and_types(tmp_path):
    res = {"acc": jnp.arange(3.0), "by_depth": {8: {"loss": np.ones((2, 2))}, 16: {"loss": np.zeros(2)}},
           "grid": (0.1, 1.0), "models": ["mlp", "cnn"], "pairs": {(1, 2): "a"}, "n": 3, "lr": 1e-3,
           "nan": float("nan"), "inf": float("-inf"), "none": None, "flag": False, "scalar": np.float32(2.5),
           "names": np.asarray(["a", "bb"]), "items": [np.arange(2), {"$array": "not a tag"}]}
    results.save_results(tmp_path, res)
    back = results.load_results(tmp_path)
    assert set(back) == set(res) and set(back["by_depth"]) == {8, 16}
    assert isinstance(back["acc"], np.ndarray) and back["acc"].tolist() == [0.0, 1.0, 2.0]
    assert back["grid"] == (0.1, 1.0) and back["models"] == ["mlp", "cnn"] and back["pairs"] == {(1, 2): "a"}
    assert back["n"] == 3 and type(back["n"]) is int and back["lr"] == 1e-3 and back["none"] is None
    assert np.isnan(back["nan"]) and back["inf"] == float("-inf") and back["flag"] is False
    assert back["scalar"].dtype == np.float32 and back["scalar"] == 2.5
    assert back["names"].tolist() == ["a", "bb"] and back["items"][1] == {"$array": "not a tag"}
    np.testing.assert_array_equal(back["by_depth"][8]["loss"], np.ones((2, 2)))
    assert results.load_arrays(tmp_path)["by_depth/8/loss"].shape == (2, 2)   # arrays.npz keys as before
    json.loads((tmp_path / "results.json").read_text())                        # plain JSON (no NaN)


def test_save_results_refuses_what_it_cannot_read_back(tmp_path):
    with pytest.raises(TypeError, match=r"results\[a/b\]: cannot save a object"):
        results.save_results(tmp_path, {"a": {"b": object()}})
    with pytest.raises(TypeError, match=r"results\[x\]: an array of Python objects"):
        results.save_results(tmp_path, {"x": np.array([1, "a", None], dtype=object)})
    with pytest.raises(ValueError, match="same key '1'"):
        results.save_results(tmp_path, {1: np.zeros(1), "1": np.ones(1)})


def test_stat_cell_numbers_and_formatting():
    x = np.array([30.0, 31.0, 32.0, 33.0])
    sd = results.stat(x, digits=1)
    assert sd == {"mean": 31.5, "sd": pytest.approx(np.std(x)), "n": 4, "digits": 1}
    assert results.format_cell(sd) == "31.5 +- 1.1"
    ci = results.stat(x / 100, scale=100, spread="ci95")
    assert ci["ci95"] == pytest.approx(3.182446 * np.std(x, ddof=1) / 2, rel=1e-5)  # t(0.975, 3) * sem
    assert results.stat(x, spread="sem")["sem"] == pytest.approx(np.std(x, ddof=1) / 2)
    assert results.stat([5.0], spread="ci95")["ci95"] == 0.0
    assert results.format_cell(results.stat([1234.5, 1300.0], digits=3, significant=True)) == "1.27e+03 +- 32.8"
    assert results.format_cell({"mean": None, "sd": None, "n": 2, "digits": 2}) == "nan +- nan"  # after JSON
    with pytest.raises(ValueError, match="stat: spread must be one of"):
        results.stat(x, spread="iqr")


def test_table_files_format_stat_cells_and_keep_numbers(tmp_path):
    rows = [{"model": "mlp", "acc": results.stat([0.5, 0.7], scale=100, digits=1), "params": 10},
            {"model": "cnn", "acc": results.stat([0.9, 0.9], scale=100, digits=1), "params": 20}]
    with results.new_run("x", {}, out_dir=tmp_path, run_id="r") as run:
        run.write_table(rows)
        run.write_json("metrics.json", {"table": rows})
    folder = tmp_path / "x" / "r"
    assert "| mlp | 60.0 +- 10.0 | 10 |" in (folder / "table.md").read_text()
    csv_lines = (folder / "table.csv").read_text().splitlines()
    assert csv_lines[0] == "model,acc,acc sd,params" and csv_lines[1].startswith("mlp,60.0")
    stored = json.loads((folder / "metrics.json").read_text())["table"][0]["acc"]
    assert stored["mean"] == pytest.approx(60.0) and stored["sd"] == pytest.approx(10.0)


def test_config_from_dict_undoes_json():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        widths: tuple[int, ...] = (8,)
        tolerance: float = 1.0
        name: str | None = None
        seeds: int = 1

    cfg = config_from_dict(Cfg, {"widths": [16, 32], "tolerance": None, "seeds": 3})
    assert cfg.widths == (16, 32) and np.isnan(cfg.tolerance) and cfg.seeds == 3 and cfg.name is None
    with pytest.warns(UserWarning, match="gone"):
        config_from_dict(Cfg, {"gone": 1})
    with pytest.raises(ValueError, match="Cfg.seeds must be int"):
        config_from_dict(Cfg, {"seeds": "x"})


def test_registry_lists_names_and_adds_modules():
    import types
    mod = types.ModuleType("mine", "My study: one line.\n\nMore.")
    reg = Registry.from_modules({"a": mod})
    assert reg.get("a") is mod and reg.descriptions == {"a": "My study: one line."} and "a" in reg
    both = reg.with_modules({"b": types.ModuleType("b")})
    assert both.names() == ["a", "b"] and both.get("a") is mod and reg.names() == ["a"]
    with pytest.raises(ValueError, match="unknown experiment 'c'; known: a, b"):
        both.get("c")

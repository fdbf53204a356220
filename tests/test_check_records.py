"""Check records as data: one constructor, one normaliser that every run's checks go through."""
import json

import numpy as np
import pytest

from lossatlas import checks


def test_record_holds_plain_json_types():
    r = checks.record("EWC keeps task A", np.bool_(True), np.float32(0.05), detail="drop 0.05 <= 0.1",
                      paper="no visible drop (Fig. 2A)", tolerance=0.1)
    assert r == {"name": "EWC keeps task A", "value": pytest.approx(0.05), "passed": True,
                 "detail": "drop 0.05 <= 0.1", "paper": "no visible drop (Fig. 2A)", "tolerance": 0.1}
    assert type(r["value"]) is float and type(r["passed"]) is bool
    json.dumps(r, allow_nan=False)
    assert checks.record("t", False, 1, gating=False)["gating"] is False


def test_normalize_converts_and_refuses_malformed_records():
    out = checks.normalize([{"name": "a", "value": np.int64(3), "passed": np.bool_(False), "detail": "x"},
                            {"name": "b", "value": float("nan"), "passed": 1}])
    assert out[0] == {"name": "a", "value": 3, "passed": False, "detail": "x"}
    assert out[1]["value"] is None and out[1]["passed"] is True
    json.dumps(out, allow_nan=False)
    assert not checks.all_passed(out) and checks.gating_failures(out)[0]["name"] == "a"
    with pytest.raises(ValueError, match=r"^checks\[0\] \('a'\) has unknown field\(s\) \['ours'\]"):
        checks.normalize([{"name": "a", "passed": True, "ours": 1}])
    with pytest.raises(ValueError, match=r"has no 'passed' verdict"):
        checks.normalize([{"name": "a", "value": 1}])
    assert checks.normalize([{"name": "a", "value": np.arange(3.0), "passed": True}])[0]["value"] == [0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"value must be a number \(or a list of numbers\), got dict"):
        checks.normalize([{"name": "a", "value": {"x": 1}, "passed": True}])
    with pytest.raises(ValueError, match=r"must be a dict with a string 'name'"):
        checks.normalize([{"value": 1, "passed": True}])

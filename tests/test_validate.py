"""lossatlas.validate and lossatlas.keys: one message style (owner, field, allowed, value),
conversion to plain Python types, explicit keys."""
import dataclasses

import jax
import numpy as np
import pytest

from lossatlas import keys, validate


def test_message_names_owner_field_allowed_and_value():
    with pytest.raises(ValueError, match=r"^TrainConfig\.learning_rate must be a number >= 0, got -1\.0$"):
        validate.number("TrainConfig", "learning_rate", -1.0, 0)
    with pytest.raises(ValueError, match=r"^sweep: seeds must be an integer >= 1, got 0$"):
        validate.integer("sweep", "seeds", 0, 1)
    with pytest.raises(ValueError, match=r"^num_train must be an integer in \[1, 5\], got 6$"):
        validate.integer("", "num_train", 6, 1, 5)
    with pytest.raises(ValueError, match=r"^Cfg\.p must be a number in \(0, 0\.5\), got 0\.5$"):
        validate.number("Cfg", "p", 0.5, 0, 0.5, lo_open=True, hi_open=True)
    with pytest.raises(ValueError, match=r"^mlp: norm must be one of 'none', 'batch', got 'group'$"):
        validate.one_of("mlp", "norm", "group", ("none", "batch"))
    with pytest.raises(ValueError, match=r"^f: widths must be a non-empty tuple of integers >= 1, got \(4, 0\)$"):
        validate.int_tuple("f", "widths", (4, 0))


def test_numpy_scalars_are_converted_to_python_types():
    for value in (np.int32(3), np.int64(3), np.uint8(3)):
        out = validate.integer("", "n", value, 1)
        assert type(out) is int and out == 3
    out = validate.number("", "x", np.float32(0.25), 0)
    assert type(out) is float and out == 0.25
    assert type(validate.number("", "x", 2, 0)) is float  # an int is a number
    assert validate.boolean("", "b", np.bool_(True)) is True
    widths = validate.int_tuple("", "w", [np.int64(4), 8])
    assert widths == (4, 8) and all(type(w) is int for w in widths)


@pytest.mark.parametrize("bad", [True, np.bool_(False)])
def test_bools_are_not_numbers(bad):
    with pytest.raises(ValueError, match="must be an integer"):
        validate.integer("", "n", bad)
    with pytest.raises(ValueError, match="must be a number >= 0"):
        validate.number("", "x", bad, 0)
    with pytest.raises(ValueError, match="tuple of integers"):
        validate.int_tuple("", "w", (4, bad))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, 2.5])
def test_non_finite_strings_and_fractions_are_refused(bad):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 0, got "):
        validate.integer("", "n", bad, 0)
    with pytest.raises(ValueError, match=r"^n must be an integer, got "):
        validate.integer("", "n", bad)
    if bad == 2.5:
        assert validate.number("", "x", bad) == 2.5
    else:
        with pytest.raises(ValueError, match=r"^x must be a finite number, got "):
            validate.number("", "x", bad)


def test_optional_accepts_none_and_says_so():
    assert validate.integer("", "n", None, 1, optional=True) is None
    assert validate.number("", "x", None, 0, optional=True) is None
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1 or None, got 0$"):
        validate.integer("", "n", 0, 1, optional=True)
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, got None$"):
        validate.integer("", "n", None, 1)


def test_normalize_stores_the_converted_value_on_a_frozen_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Cfg:
        rate: float = 0.1
        steps: int = 1

        def __post_init__(self):
            validate.normalize(self, "rate", validate.number, 0)
            validate.normalize(self, "steps", validate.integer, 1)

    cfg = Cfg(rate=np.float32(0.5), steps=np.int64(7))
    assert type(cfg.rate) is float and type(cfg.steps) is int and cfg == Cfg(0.5, 7)
    with pytest.raises(ValueError, match=r"^Cfg\.steps must be an integer >= 1, got 0$"):
        Cfg(steps=0)


def test_require_key_refuses_a_missing_or_wrong_key_in_one_line():
    with pytest.raises(ValueError, match=r"^jacobian_spectrum: key is required") as e:
        keys.require_key("jacobian_spectrum", None)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"^f: key must be a JAX PRNG key .*got int$"):
        keys.require_key("f", 0)
    raw, typed = jax.random.PRNGKey(1), jax.random.key(1)
    assert keys.require_key("f", raw) is raw and keys.require_key("f", typed) is typed


def test_numpy_rng_same_key_same_stream_and_typed_equals_raw():
    a = keys.numpy_rng(jax.random.PRNGKey(3)).integers(0, 2**31, 8)
    b = keys.numpy_rng(jax.random.key(3)).integers(0, 2**31, 8)
    c = keys.numpy_rng(jax.random.PRNGKey(4)).integers(0, 2**31, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError, match="numpy_rng: key is required"):
        keys.numpy_rng(None)

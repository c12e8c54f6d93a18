"""Generated bad input: every invalid value of every config field ends in DataError, never another exception."""

import dataclasses
import json
import math
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pwslib.config import CHOICES, TrainConfig, config_for
from pwslib.io import DataError

HINTS = typing.get_type_hints(TrainConfig)
FIELDS = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("method", "dataset")]
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _valid(name: str, value) -> bool:
    """Whether ``config_for`` accepted ``value`` for ``name``; any failure other than DataError fails the test."""
    try:
        config = config_for("ours", **{name: value})
    except DataError:
        return False
    expected = tuple(value) if isinstance(value, list) else value
    assert getattr(config, name) == expected or (HINTS[name] is float and getattr(config, name) == float(value))
    return True


@pytest.mark.parametrize("name", FIELDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=ANYTHING)
def test_any_value_of_any_field_is_accepted_or_refused_with_data_error(name, value):
    if _valid(name, value):
        hint = HINTS[name]
        if hint is float:
            assert math.isfinite(value) and value >= 0
        if name in CHOICES:
            assert value in CHOICES[name]


@pytest.mark.parametrize("name", [n for n in FIELDS if HINTS[n] is float])
@given(value=st.sampled_from([float("nan"), float("inf"), float("-inf")]))
@settings(max_examples=3, deadline=None)
def test_no_float_field_takes_nan_or_infinity(name, value):
    with pytest.raises(DataError, match=name):
        config_for("ours", **{name: value})


@given(key=st.text(min_size=1, max_size=12).filter(lambda k: k not in HINTS and "=" not in k), value=st.integers())
@settings(max_examples=20, deadline=None)
def test_unknown_keys_are_refused_by_name(key, value):
    with pytest.raises(DataError, match="unknown config keys"):
        config_for("ours", **{key: value})


def _positive_number(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@given(text=st.one_of(st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "0", "abc", "[]", "null", "true"]),
                      st.text(max_size=6)).filter(lambda t: not _positive_number(t)))
@settings(max_examples=30, deadline=None)
def test_a_bad_value_on_the_command_line_ends_in_one_line_and_writes_no_run(tmp_path_factory, text):
    from pwslib.train import main

    folder = tmp_path_factory.mktemp("cli") / "run"
    with pytest.raises(SystemExit) as stopped:
        main(["--out", str(folder), "--set", f"learning_rate={text}"])
    assert str(stopped.value).startswith("error: ") and "learning_rate" in str(stopped.value)
    assert not folder.exists()

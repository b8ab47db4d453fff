"""Struct and Value conversions equal json_format's, with numbers normalised."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from llm_scheduler.config.structs import (
    fill_new_struct,
    fill_struct,
    normalize_numbers,
    set_value,
    struct_to_dict,
    to_struct,
    to_value,
    value_to_python,
)
from llm_scheduler.v1 import run_pb2


def _reference(message: struct_pb2.Struct | struct_pb2.Value) -> Any:
    return normalize_numbers(json_format.MessageToDict(message))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["str", "int", "float", "bool", "null"] + (["dict", "list"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return rng.choice(["", "plain", "ünï ✓ 🦙", 'q"uote\\', "line\nbreak"])
    if kind == "int":
        return rng.choice([0, -1, 7, 2**53 - 1, -(2**52), 10**15])
    if kind == "float":
        return rng.choice([0.5, -0.0, 1e300, -2.25, 2.0**60, 0.1])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "dict":
        return {f"k{rng.randrange(50)}": _random_value(rng, depth + 1) for _ in range(4)}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_struct_to_dict_equals_json_format_on_random_structs() -> None:
    rng = random.Random(20261121)
    for _ in range(500):
        data = {f"k{i}": _random_value(rng) for i in range(rng.randrange(6))}
        struct = to_struct(data)
        converted = struct_to_dict(struct)
        expected = _reference(struct)
        assert converted == expected
        assert repr(converted) == repr(expected)  # the same types and key order too
        value = to_value(data)
        assert repr(value_to_python(value)) == repr(_reference(value))


def test_an_unset_value_is_null() -> None:
    assert value_to_python(struct_pb2.Value()) is None
    assert struct_to_dict(struct_pb2.Struct()) == {}


@pytest.mark.parametrize("number", [math.inf, -math.inf, math.nan])
def test_numbers_json_cannot_hold_are_refused(number: float) -> None:
    value = struct_pb2.Value(number_value=number)
    with pytest.raises(ValueError):
        value_to_python(value)
    with pytest.raises(ValueError):
        json_format.MessageToDict(value)


def test_to_struct_equals_struct_update_on_random_data() -> None:
    rng = random.Random(7)
    for _ in range(300):
        data = {f"k{i}": _random_value(rng) for i in range(rng.randrange(6))}
        expected = struct_pb2.Struct()
        expected.update(data)
        assert to_struct(data) == expected


def test_to_struct_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError, match="Unexpected type"):
        to_struct({"when": object()})


def _parse_dict(data: Any) -> struct_pb2.Value | str:
    """json_format.ParseDict's result, or its error as text."""
    try:
        return json_format.ParseDict(data, struct_pb2.Value())
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def _to_value(data: Any) -> struct_pb2.Value | str:
    try:
        return to_value(data)
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


UNUSUAL = [
    (1, 2.5, "tuple"),
    {"inner": (None, True)},
    {1: "a key that is not a string"},
    {"set": {1, 2}},
    object(),
    b"bytes",
    float("nan"),
    2**80,
    True,
    {},
    [],
    {"empty": {}, "list": []},
    _nested(48),
    _nested(49),
    _nested(50),
    _nested(60),
]


@pytest.mark.parametrize("data", UNUSUAL, ids=range(len(UNUSUAL)))
def test_to_value_equals_parse_dict_on_what_is_unusual(data: Any) -> None:
    # The same Value (bytes), or the same error (type and message), as json_format.
    expected, converted = _parse_dict(data), _to_value(data)
    if isinstance(expected, str):
        assert converted == expected
    else:
        assert isinstance(converted, struct_pb2.Value)
        assert converted.SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True
        )


def test_to_value_equals_parse_dict_on_random_values() -> None:
    rng = random.Random(11)
    for _ in range(500):
        data = _random_value(rng)
        expected = _parse_dict(data)
        assert not isinstance(expected, str)
        assert to_value(data).SerializeToString() == expected.SerializeToString()


@pytest.mark.parametrize("data", ["text", 3, 2.5, None, {"a": [1, {"b": None}]}, [], {}])
def test_set_value_equals_copying_a_converted_value(data: Any) -> None:
    filled, copied = run_pb2.StepRun(), run_pb2.StepRun()
    set_value(filled, "function_request", data)
    copied.function_request.CopyFrom(to_value(data))
    assert filled.SerializeToString() == copied.SerializeToString()
    assert filled.HasField("function_request")


@pytest.mark.parametrize("data", [{"bad": {1, 2}}, [object()], _nested(60)])
def test_set_value_leaves_the_field_unset_when_the_value_is_not_json(data: Any) -> None:
    record = run_pb2.StepRun()
    with pytest.raises(json_format.ParseError):
        set_value(record, "function_response", data)
    assert not record.HasField("function_response")
    assert record.SerializeToString() == b""


@pytest.mark.parametrize(
    "data", [{}, {"a": "x"}, {"b": 1, "a": [1, "y", None], "c": {"d": 2.5, "e": True}}]
)
def test_fill_new_struct_equals_fill_struct(data: dict[str, Any]) -> None:
    new, filled = run_pb2.StepRun(), run_pb2.StepRun()
    fill_new_struct(new.outputs, data)
    fill_struct(filled.outputs, data)
    assert new.SerializeToString(deterministic=True) == filled.SerializeToString(deterministic=True)
    assert new.HasField("outputs")  # set even when empty, as the record has always had it


def test_fill_new_struct_with_keys_takes_those_present_in_that_order() -> None:
    scope = {"a": 1, "b": "two", "c": None}
    new, filled = run_pb2.StepRun(), run_pb2.StepRun()
    fill_new_struct(new.inputs, scope, ("c", "missing", "a"))
    fill_struct(filled.inputs, {"c": None, "a": 1})
    assert new.SerializeToString() == filled.SerializeToString()
    fill_new_struct(new.outputs, scope, ("missing",))
    assert new.HasField("outputs") and not new.outputs.fields

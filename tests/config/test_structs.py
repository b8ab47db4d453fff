"""Struct and Value conversions equal json_format's, with numbers normalised."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from llm_scheduler.config.structs import (
    normalize_numbers,
    struct_to_dict,
    to_struct,
    to_value,
    value_to_python,
)


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

"""Conversions between protobuf `Struct`/`Value` and plain JSON-compatible Python values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

__all__ = ["normalize_numbers", "struct_to_dict", "to_struct", "to_value", "value_to_python"]


def normalize_numbers(value: Any) -> Any:
    """Turns integral floats back into ints and sorts object keys, recursively.

    `Struct` stores every number as a double, so ``3`` comes back as ``3.0``; interpolating that
    into a prompt would surprise users.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        # Sorted: a Struct's map has no order of its own, and output should not vary per run.
        return {key: normalize_numbers(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [normalize_numbers(item) for item in value]
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Converts a `Struct` to a dict of JSON values (integral numbers as ints)."""
    result: dict[str, Any] = normalize_numbers(json_format.MessageToDict(struct))
    return result


def value_to_python(value: struct_pb2.Value) -> Any:
    """Converts a `Value` to a JSON value (integral numbers as ints)."""
    return normalize_numbers(json_format.MessageToDict(value))


def to_struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    """Converts a mapping of JSON values to a `Struct`."""
    struct = struct_pb2.Struct()
    struct.update(dict(data))
    return struct


def to_value(data: Any) -> struct_pb2.Value:
    """Converts a JSON value to a `Value`."""
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value

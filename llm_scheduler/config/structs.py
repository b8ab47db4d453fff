"""Conversions between protobuf `Struct`/`Value` and plain JSON-compatible Python values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

__all__ = [
    "fill_struct",
    "normalize_numbers",
    "struct_to_dict",
    "to_struct",
    "to_value",
    "value_to_python",
]


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
    """Converts a `Struct` to a dict of JSON values (integral numbers as ints, keys sorted).

    The same as ``normalize_numbers(json_format.MessageToDict(struct))``, without json_format's
    generic descriptor walk (this runs for every step's inputs and outputs).

    Raises:
        ValueError: A number is NaN or infinite (JSON has no such numbers).
    """
    fields = struct.fields
    return {key: _python(fields[key]) for key in sorted(fields)}


def value_to_python(value: struct_pb2.Value) -> Any:
    """Converts a `Value` to a JSON value (integral numbers as ints).

    Raises:
        ValueError: A number is NaN or infinite.
    """
    return _python(value)


def _python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if number.is_integer():
            return int(number) if abs(number) < 2**53 else number
        if math.isinf(number) or math.isnan(number):
            raise ValueError(f"cannot convert {number} in a Struct to JSON")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_python(item) for item in value.list_value.values]
    return None  # null_value, or no kind set (json_format writes null too)


def to_struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    """Converts a mapping of JSON values to a `Struct`.

    The same as ``Struct.update``, with the common cases first (it runs for every step's inputs
    and outputs).

    Raises:
        ValueError: A value is not JSON (``Unexpected type``, as ``Struct.update`` says).
    """
    struct = struct_pb2.Struct()
    fill_struct(struct, data)
    return struct


def fill_struct(struct: struct_pb2.Struct, data: Mapping[str, Any]) -> None:
    """Replaces a `Struct`'s contents with a mapping of JSON values, in place (a record's field).

    Raises:
        ValueError: A value is not JSON.
    """
    struct.Clear()
    fields = struct.fields
    for key, value in data.items():
        _set(fields[key], value)


def _set(target: struct_pb2.Value, value: Any) -> None:
    if isinstance(value, str):
        target.string_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):  # before numbers: bools are ints in Python
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = value
    elif isinstance(value, (dict, struct_pb2.Struct)):
        nested = target.struct_value
        nested.Clear()
        fields = nested.fields
        for key, item in value.items():
            _set(fields[key], item)
    elif isinstance(value, (list, tuple, struct_pb2.ListValue)):
        values = target.list_value.values
        del values[:]
        for item in value:
            _set(values.add(), item)
    else:
        raise ValueError("Unexpected type")


def to_value(data: Any) -> struct_pb2.Value:
    """Converts a JSON value to a `Value`."""
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value

"""Conversions between protobuf `Struct`/`Value` and plain JSON-compatible Python values."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message

__all__ = [
    "fill_new_struct",
    "fill_struct",
    "normalize_numbers",
    "set_value",
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
    converted: dict[str, Any] = {}
    for key in sorted(fields):
        value = fields[key]
        kind = value.WhichOneof("kind")
        # `_python`'s common cases, without the call.
        if kind == "string_value":
            converted[key] = value.string_value
        elif kind == "number_value" and (number := value.number_value).is_integer():
            converted[key] = int(number) if abs(number) < 2**53 else number
        else:
            converted[key] = _python(value)
    return converted


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
    struct.Clear()  # also marks the field as set, however empty
    _fill(struct.fields, data)


def fill_new_struct(
    struct: struct_pb2.Struct, data: Mapping[str, Any], keys: Iterable[str] | None = None
) -> None:
    """Fills an empty `Struct` (a new record's field) as `fill_struct` would.

    With ``keys``, only the entries of ``data`` whose keys are in ``keys``, in that order: the
    same as ``fill_struct(struct, {k: data[k] for k in keys if k in data})`` without the dict
    (a step's inputs: the variables it reads, from a scope of hundreds). Nothing is cleared,
    which is what spares the call per record.

    Raises:
        ValueError: A value is not JSON.
    """
    if keys is None:
        if data:
            _fill(struct.fields, data)
            return
    else:
        fields = struct.fields
        filled = False
        for key in keys:
            if key in data:
                value = data[key]
                kind = type(value)  # `_set`'s common cases, without the call
                if kind is str:
                    fields[key].string_value = value
                elif kind is int or kind is float:
                    fields[key].number_value = value
                else:
                    _set(fields[key], value)
                filled = True
        if filled:
            return
    struct.Clear()  # marks the field as set, as an empty `fill_struct` does


def _fill(
    fields: MutableMapping[str, struct_pb2.Value], data: Mapping[str, Any] | struct_pb2.Struct
) -> None:
    """Sets a `Struct`'s fields from a mapping (the struct cleared or new)."""
    value: Any
    for key, value in data.items():
        kind = type(value)  # `_set`'s common cases, without the call
        if kind is str:
            fields[key].string_value = value
        elif kind is int or kind is float:
            fields[key].number_value = value
        else:
            _set(fields[key], value)


def _set(target: struct_pb2.Value, value: Any) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is int or kind is float:  # exactly these types: what the checks below give them
        target.number_value = value
    elif isinstance(value, str):
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
        _fill(nested.fields, value)
    elif isinstance(value, (list, tuple, struct_pb2.ListValue)):
        values = target.list_value.values
        del values[:]
        for item in value:
            _set(values.add(), item)
    else:
        raise ValueError("Unexpected type")


def to_value(data: Any) -> struct_pb2.Value:
    """Converts a JSON value to a `Value`, as ``json_format.ParseDict`` does.

    Raises:
        json_format.ParseError: A value is not JSON (or nested too deep), as ParseDict says.
    """
    value = struct_pb2.Value()
    try:
        _parse(value, data, 1)
    except Exception:  # anything unusual: json_format itself, for its exact result or error
        value = struct_pb2.Value()
        json_format.ParseDict(data, value)
    return value


def set_value(message: Message, field: str, data: Any) -> None:
    """``getattr(message, field).CopyFrom(to_value(data))``, filled in place (no copy).

    Args:
        message: A message, e.g. a run record.
        field: The name of its `Value` field, unset so far.
        data: The JSON value.

    Raises:
        json_format.ParseError: A value is not JSON (or nested too deep); the field is then
            left unset.
    """
    kind = type(data)
    if kind is str:  # the common cases, without `_parse`
        getattr(message, field).string_value = data
        return
    if kind is int or kind is float:
        getattr(message, field).number_value = data
        return
    try:
        _parse(getattr(message, field), data, 1)
    except Exception:  # anything unusual: json_format itself, for its exact result or error
        message.ClearField(field)
        getattr(message, field).CopyFrom(to_value(data))


# json_format.ParseDict's recursion limit: it counts each Value, Struct and ListValue.
_MAX_DEPTH = 100


class _Unusual(Exception):
    """A value `_parse` leaves to json_format (its error message, its depth limit)."""


def _parse(target: struct_pb2.Value, value: Any, depth: int) -> None:
    """Fills a `Value` exactly as ParseDict would (the same checks in the same order)."""
    if depth > _MAX_DEPTH:
        raise _Unusual
    kind = type(value)
    if kind is str:  # exactly these types first: what ParseDict's checks give them
        target.string_value = value
    elif kind is int or kind is float:
        target.number_value = value
    elif isinstance(value, dict):
        nested = target.struct_value
        nested.Clear()
        fields = nested.fields
        for key in value:
            if type(key) is not str:
                raise _Unusual
            _parse(fields[key], value[key], depth + 2)
    elif isinstance(value, (list, tuple)):
        items = target.list_value
        items.ClearField("values")
        values = items.values
        for item in value:
            _parse(values.add(), item, depth + 2)
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, (int, float)):
        target.number_value = value
    else:
        raise _Unusual

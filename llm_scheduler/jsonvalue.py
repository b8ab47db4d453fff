"""The JSON value type that steps pass around, and a check for it."""

from __future__ import annotations

import math
from typing import TypeAlias, TypeGuard

__all__ = ["JsonValue", "describe_non_json", "is_json_value"]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value that round-trips through strict JSON (no NaN or infinity)."""


def is_json_value(value: object) -> TypeGuard[JsonValue]:
    """Tells whether a value is JSON-compatible, recursively.

    Tuples, sets, bytes, non-string dict keys and non-finite floats are not: results are stored
    and compared as JSON text, where those would not round-trip.

    Args:
        value: Any value.

    Returns:
        True when ``value`` is a `JsonValue`.
    """
    return describe_non_json(value) is None


def describe_non_json(value: object) -> str | None:
    """Says where a value stops being JSON-compatible, for error messages.

    Args:
        value: Any value.

    Returns:
        None when ``value`` is a `JsonValue`; otherwise a description such as
        ``"tuple at $.items[0]"``.
    """
    return _problem(value, "$", set())


def _problem(value: object, where: str, active: set[int]) -> str | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"non-finite float {value!r} at {where}"
    if not isinstance(value, list | dict):
        return f"{type(value).__name__} at {where}"
    # A container that contains itself would otherwise recurse forever.
    if id(value) in active:
        return f"circular reference at {where}"
    active.add(id(value))
    try:
        if isinstance(value, list):
            for index, item in enumerate(value):
                problem = _problem(item, f"{where}[{index}]", active)
                if problem is not None:
                    return problem
        else:
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{type(key).__name__} key {key!r} at {where}"
                problem = _problem(item, f"{where}.{key}", active)
                if problem is not None:
                    return problem
    finally:
        active.discard(id(value))
    return None

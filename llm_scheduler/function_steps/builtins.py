"""Functions every config can call without loading a module.

They raise `FunctionCallError` with a message that does not repeat the function's name: the
registry prefixes it (``function 'json_extract' failed: ...``).
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

from llm_scheduler.errors import FunctionCallError
from llm_scheduler.jsonvalue import JsonValue

__all__ = ["BUILTINS", "join", "json_extract", "json_parse", "length", "regex_extract", "template"]

# Models wrap JSON in a fenced block more often than in any other prose.
_FENCE = re.compile(r"```[ \t]*(?:json\w*)?[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)
_EXCERPT = 80


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> JsonValue:
    value: JsonValue = json.loads(text, parse_constant=_reject_constant)
    return value


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise FunctionCallError(f"{what} must be a string, got {type(value).__name__}")
    return value


def json_parse(text: str) -> JsonValue:
    """Parses JSON out of a model's answer.

    Tries, in order: the whole text; each fenced code block (```json ... ```); the first JSON
    object or array embedded in prose. NaN and Infinity are rejected.

    Args:
        text: The text, usually a model's response.

    Returns:
        The parsed value.

    Raises:
        FunctionCallError: No JSON value could be found.
    """
    text = _require_str(text, "text")
    try:
        return _loads(text)
    except ValueError as exc:
        first_error = exc
    for match in _FENCE.finditer(text):
        try:
            return _loads(match.group(1))
        except ValueError:
            continue
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        parsed: JsonValue = value
        return parsed
    raise FunctionCallError(f"no JSON found in the text {_excerpt(text)}: {first_error}")


def json_extract(data: JsonValue, path: str) -> JsonValue:
    """Gets the value at a dotted path, such as ``items.0.name``.

    Segments index dicts by key and lists by position (negative positions count from the end).
    Keys that contain a dot cannot be addressed.

    Args:
        data: The value; a string is parsed with `json_parse` first.
        path: The dotted path; empty for the whole value.

    Returns:
        The value at the path.

    Raises:
        FunctionCallError: The string is not JSON, or a segment of the path is missing.
    """
    path = _require_str(path, "path")
    current = json_parse(data) if isinstance(data, str) else data
    if not path:
        return current
    segments = path.split(".")
    for depth, segment in enumerate(segments):
        where = ".".join(segments[:depth]) or "the top level"
        if isinstance(current, dict):
            if segment not in current:
                keys = ", ".join(sorted(current)) or "none"
                raise FunctionCallError(
                    f"path {path!r}: no key {segment!r} at {where} (keys: {keys})"
                )
            current = current[segment]
        elif isinstance(current, list):
            try:
                index = int(segment)
            except ValueError:
                raise FunctionCallError(
                    f"path {path!r}: {segment!r} is not a list index at {where}"
                ) from None
            if not -len(current) <= index < len(current):
                raise FunctionCallError(
                    f"path {path!r}: index {index} is out of range at {where} "
                    f"(length {len(current)})"
                )
            current = current[index]
        else:
            raise FunctionCallError(
                f"path {path!r}: cannot look up {segment!r} in a {type(current).__name__} "
                f"at {where}"
            )
    return current


def regex_extract(
    text: str, pattern: str, group: int | str = 0, all: bool = False
) -> str | list[str | None] | None:
    """Finds a regular expression (Python `re` syntax) in a text.

    Args:
        text: The text to search.
        pattern: The regular expression.
        group: The group to return: a number (0 for the whole match) or a group name.
        all: Whether to return every match instead of the first.

    Returns:
        The group of the first match, or None when nothing matches; with ``all``, a list of the
        group of every match, empty when nothing matches. A group that did not take part in a
        match is None.

    Raises:
        FunctionCallError: The pattern is invalid or has no such group.
    """
    text = _require_str(text, "text")
    pattern = _require_str(pattern, "pattern")
    if isinstance(group, str) and group.isdigit():
        # Config values often arrive as strings; group names cannot be numbers anyway.
        group = int(group)
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise FunctionCallError(f"invalid regular expression {pattern!r}: {exc}") from exc
    if isinstance(group, int) and not 0 <= group <= compiled.groups:
        raise FunctionCallError(f"pattern {pattern!r} has no group {group}")
    if isinstance(group, str) and group not in compiled.groupindex:
        raise FunctionCallError(f"pattern {pattern!r} has no group named {group!r}")
    if all:
        return [match.group(group) for match in compiled.finditer(text)]
    match = compiled.search(text)
    return None if match is None else match.group(group)


def template(text: str) -> str:
    """Returns its text, for steps that only build a string.

    The engine renders ``%var%`` placeholders in the request before the call, so the text
    arrives already filled in.

    Args:
        text: The rendered text.

    Returns:
        The same text.
    """
    return _require_str(text, "text")


def join(items: list[JsonValue], separator: str = "\n") -> str:
    """Joins items into one string.

    Args:
        items: The items; strings are used as they are, other values as compact JSON.
        separator: What goes between items.

    Returns:
        The joined string.

    Raises:
        FunctionCallError: ``items`` is not a list.
    """
    if not isinstance(items, list):
        raise FunctionCallError(f"items must be a list, got {type(items).__name__}")
    separator = _require_str(separator, "separator")
    return separator.join(
        item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items
    )


def length(value: JsonValue) -> int:
    """Counts the characters of a string, items of a list or keys of a dict.

    Args:
        value: The value; None counts as empty.

    Returns:
        The length.

    Raises:
        FunctionCallError: The value is a number or a boolean.
    """
    if value is None:
        return 0
    if isinstance(value, str | list | dict):
        return len(value)
    raise FunctionCallError(f"a {type(value).__name__} has no length")


BUILTINS: Mapping[str, Callable[..., Any]] = types.MappingProxyType(
    {
        function.__name__: function
        for function in (json_parse, json_extract, regex_extract, template, join, length)
    }
)
"""The built-in functions by name; the default registry always holds them."""

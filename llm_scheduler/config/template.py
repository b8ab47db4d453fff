"""`%var%` templates: parsing, the names they use, and rendering.

Syntax:
    ``%name%`` inserts the variable ``name`` (an identifier). ``%name.a.0%`` walks into a JSON
    value (object keys and list indexes; a string variable holding JSON is parsed first). ``%%``
    is a literal ``%``; any other ``%`` that does not start a placeholder is literal too, so
    ``"50% off"`` needs no escaping.

Rendering is one pass: an inserted value is never scanned again, so a variable whose value holds
``%other%`` stays literal (no prompt injection through variables). Strings are inserted as they
are, other values as JSON. A missing variable is an error, never left in the output.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

from llm_scheduler.errors import InterpolationError

__all__ = ["Placeholder", "Template", "format_value", "lookup_path"]

_TOKEN = re.compile(r"%%|%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)%")


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """One ``%...%`` in a template.

    Attributes:
        name: The variable name (the part before the first dot).
        path: The keys and indexes after the name.
        text: The placeholder as written, without the percent signs.
    """

    name: str
    path: tuple[str, ...]
    text: str


@dataclasses.dataclass(frozen=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        """Parses ``source``; every string is a valid template.

        Parsed templates are immutable and cached: a step's templates are parsed once per
        process, not once per use.
        """
        return _parse(source)

    @classmethod
    def _parse_uncached(cls, source: str) -> Template:
        parts: list[str | Placeholder] = []
        literal: list[str] = []
        position = 0
        for match in _TOKEN.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            if match.group(1) is None:
                literal.append("%")
                continue
            text = "".join(literal)
            if text:
                parts.append(text)
            literal = []
            name, *path = match.group(1).split(".")
            parts.append(Placeholder(name=name, path=tuple(path), text=match.group(1)))
        literal.append(source[position:])
        tail = "".join(literal)
        if tail:
            parts.append(tail)
        return cls(source=source, parts=tuple(parts))

    @functools.cached_property
    def placeholders(self) -> tuple[Placeholder, ...]:
        """The placeholders, in order of appearance."""
        return tuple(part for part in self.parts if isinstance(part, Placeholder))

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """The variable names the template uses."""
        return frozenset(placeholder.name for placeholder in self.placeholders)

    @functools.cached_property
    def is_template(self) -> bool:
        """Whether the text holds at least one placeholder."""
        return any(isinstance(part, Placeholder) for part in self.parts)

    def render(self, variables: Mapping[str, Any]) -> str:
        """Renders the template to a string.

        Raises:
            InterpolationError: A placeholder names a missing variable or path.
        """
        return "".join(
            part if isinstance(part, str) else format_value(_resolve(part, variables))
            for part in self.parts
        )

    def render_value(self, variables: Mapping[str, Any]) -> Any:
        """Renders like `render`, but a template that is exactly one placeholder keeps its type.

        ``"%items%"`` gives the list itself rather than its JSON text, so structured values flow
        between steps unchanged.
        """
        if len(self.parts) == 1 and isinstance(self.parts[0], Placeholder):
            return _resolve(self.parts[0], variables)
        return self.render(variables)


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> Template:
    return Template._parse_uncached(source)


def format_value(value: Any) -> str:
    """Formats a value for insertion into text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def lookup_path(value: Any, path: tuple[str, ...], text: str) -> Any:
    """Walks ``path`` into a JSON value; a string holding JSON is parsed on the way.

    Raises:
        InterpolationError: A key or index is missing.
    """
    current = value
    for depth, key in enumerate(path):
        if isinstance(current, str):
            try:
                current = json.loads(current)
            except ValueError:
                where = ".".join((text.split(".")[0], *path[:depth]))
                raise InterpolationError(
                    f"%{text}%: {where!r} is text, not JSON, so it has no field {key!r}"
                ) from None
        if isinstance(current, Mapping) and key in current:
            current = current[key]
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            where = ".".join((text.split(".")[0], *path[:depth]))
            kind = "list" if isinstance(current, list) else type(current).__name__
            raise InterpolationError(f"%{text}%: {where!r} ({kind}) has no field {key!r}")
    return current


def _resolve(placeholder: Placeholder, variables: Mapping[str, Any]) -> Any:
    if placeholder.name not in variables:
        known = ", ".join(sorted(variables)) or "none"
        raise InterpolationError(
            f"%{placeholder.text}%: no variable {placeholder.name!r} (variables here: {known})"
        )
    return lookup_path(variables[placeholder.name], placeholder.path, placeholder.text)

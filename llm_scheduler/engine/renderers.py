"""Templates compiled for the step loop: the same results as `Template`, with fewer calls.

A step renders its prompts or its function request on every run. `Template.render` resolves
each placeholder through two or three calls; most placeholders are a plain ``%name%`` whose
value is a string (or an integer), which plain concatenation inserts. Anything else (a field
path, a filter, a value that is not a string, a missing variable, a scope that is not a plain
dict) renders through the `Template` itself, so results and errors are exactly its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from llm_scheduler.config.template import Placeholder, Template, format_value

__all__ = ["CompiledTemplate", "RequestRenderer", "compile_request", "format_text"]


def format_text(value: Any) -> str:
    """`template.format_value`: a text as it is, an integer as its JSON, without json.dumps."""
    kind = type(value)
    if kind is str:
        text: str = value
        return text
    if kind is int:
        return int.__repr__(value)
    return format_value(value)


class CompiledTemplate:
    """A parsed template with a fast path for plain placeholders holding strings or integers.

    Attributes:
        template: The template it renders like.
    """

    __slots__ = ("_constant", "_segments", "_single", "_tail", "template")

    def __init__(self, template: Template) -> None:
        """Compiles a parsed template."""
        self.template = template
        placeholders = template.placeholders
        plain = all(not p.path and not p.filters and p.apply is None for p in placeholders)
        # The text of a template without placeholders (rendering reads no variable).
        self._constant = None if placeholders else template.render({})
        # The variable a template that is exactly one plain placeholder inserts.
        single = template.parts[0] if len(template.parts) == 1 else None
        self._single = single.name if isinstance(single, Placeholder) and plain else None
        # (literal text before, variable) per placeholder, and the text after the last one.
        segments: list[tuple[str, str]] = []
        literal = ""
        for part in template.parts:
            if isinstance(part, str):
                literal += part
            else:
                segments.append((literal, part.name))
                literal = ""
        self._segments = tuple(segments) if placeholders and plain else None
        self._tail = literal

    def render(self, scope: Mapping[str, Any]) -> str:
        """`Template.render`.

        Raises:
            InterpolationError: As `Template.render`.
        """
        if self._constant is not None:
            return self._constant
        segments = self._segments
        if segments is None or type(scope) is not dict:
            return self.template.render(scope)
        text = ""
        for literal, name in segments:
            value = scope.get(name, _MISSING)
            kind = type(value)
            if kind is not str:
                if kind is not int:  # missing, or a value json.dumps formats: the template
                    return self.template.render(scope)
                value = int.__repr__(value)  # its JSON, as format_value writes it
            text = text + literal + value
        return text + self._tail

    def render_value(self, scope: Mapping[str, Any]) -> Any:
        """`Template.render_value`: a template that is one placeholder keeps the value's type.

        Raises:
            InterpolationError: As `Template.render_value`.
        """
        if self._constant is not None:
            return self._constant
        name = self._single
        if name is not None and type(scope) is dict and name in scope:
            return scope[name]
        if name is None and self._segments is not None:
            return self.render(scope)  # not one placeholder: render_value renders
        return self.template.render_value(scope)


# Stands in for a variable a scope lacks (None is a value).
_MISSING: Any = object()


class RequestRenderer(Protocol):
    """Renders a function request: every string in it a template, the structure kept."""

    def render(self, scope: Mapping[str, Any]) -> Any:
        """The rendered request (`values.render_request`)."""


class _Text:
    __slots__ = ("render",)

    def __init__(self, template: CompiledTemplate) -> None:
        # A method of the template itself: one call less per render.
        self.render: Callable[[Mapping[str, Any]], Any] = template.render_value


class _Dict:
    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, RequestRenderer], ...]) -> None:
        self._items = items

    def render(self, scope: Mapping[str, Any]) -> Any:
        return {key: item.render(scope) for key, item in self._items}


class _List:
    __slots__ = ("_items",)

    def __init__(self, items: tuple[RequestRenderer, ...]) -> None:
        self._items = items

    def render(self, scope: Mapping[str, Any]) -> Any:
        return [item.render(scope) for item in self._items]


class _Constant:
    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def render(self, scope: Mapping[str, Any]) -> Any:
        return self._value


def compile_request(value: Any) -> RequestRenderer:
    """Compiles a function request (a JSON value) for `values.render_request`'s results."""
    if isinstance(value, str):
        return _Text(CompiledTemplate(Template.parse(value)))
    if isinstance(value, dict):
        return _Dict(tuple((key, compile_request(item)) for key, item in value.items()))
    if isinstance(value, list):
        return _List(tuple(compile_request(item) for item in value))
    return _Constant(value)

"""Compiled templates render exactly as `Template` does: the same texts, values and errors."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from typing import Any

import pytest

from llm_scheduler.config.template import Template, format_value
from llm_scheduler.engine.renderers import CompiledTemplate, compile_request, format_text
from llm_scheduler.engine.values import render_request


class _Text(str):
    """A str subclass: rendered through the template, whatever its own formatting says."""

    def __format__(self, spec: str) -> str:
        return "formatted"


SOURCES = [
    "",
    "plain text, 50% off, %% literal",
    "%a%",
    "Step 3: continue from: %a%",
    "%a% and %b% {braces} {0} %%",
    "%a%%b%",
    "%missing%",
    "before %missing% after",
    "%obj.k%",
    "%a|truncate:2%",
    "%a|default:'none'% %missing|default:'none'%",
    "%a | json%",
    "%n% items, %f% each, %t%, %z%",
    "%lst% %obj%",
    "%sub%",
    "%sub% and %a%",
]

VALUES: dict[str, Any] = {
    "a": 'alpha ünï "quoted" {x}',
    "b": "",
    "n": 3,
    "f": 2.5,
    "t": True,
    "z": None,
    "lst": [1, "two", None],
    "obj": {"k": "v", "n": 1},
    "sub": _Text("sub"),
    "big": 2**70,
}


def _outcome(render: Any, scope: Mapping[str, Any]) -> tuple[str, Any]:
    try:
        value = render(scope)
    except Exception as error:
        return "error", (type(error).__name__, str(error))
    return "value", (type(value), repr(value))


SCOPES: list[Mapping[str, Any]] = [
    VALUES,
    {"a": "only a"},
    {"a": 7, "b": -1},
    collections.OrderedDict(VALUES),  # a dict subclass: rendered by the template
    {"a": "x", "n": 2**70},
]


@pytest.mark.parametrize("source", SOURCES)
def test_render_and_render_value_equal_the_templates(source: str) -> None:
    template = Template.parse(source)
    compiled = CompiledTemplate(template)
    for scope in SCOPES:
        assert _outcome(compiled.render, scope) == _outcome(template.render, scope)
        assert _outcome(compiled.render_value, scope) == _outcome(template.render_value, scope)


def test_a_single_placeholder_keeps_the_value_itself() -> None:
    compiled = CompiledTemplate(Template.parse("%lst%"))
    assert compiled.render_value(VALUES) is VALUES["lst"]


REQUESTS: list[Any] = [
    "%a%",
    "text %n%",
    {"items": "%lst%", "separator": ", ", "nested": {"x": ["%a%", 1, None, "%obj.k%"]}},
    ["%n%", "%f% and %t%", 3.5, True],
    7,
    None,
    {"missing": "%missing%"},
]


@pytest.mark.parametrize("request_", REQUESTS, ids=range(len(REQUESTS)))
def test_compiled_requests_render_as_render_request(request_: Any) -> None:
    compiled = compile_request(request_)
    for scope in SCOPES:
        expected = _outcome(lambda s: render_request(request_, s), scope)
        assert _outcome(compiled.render, scope) == expected


@pytest.mark.parametrize(
    "value", ["text", "", 0, -12, 2**70, True, None, 2.5, [1, "é"], {"b": 1, "a": None}]
)
def test_format_text_equals_format_value(value: Any) -> None:
    assert format_text(value) == format_value(value)
    assert type(format_text(value)) is str

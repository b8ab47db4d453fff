from __future__ import annotations

import asyncio

import pytest

from llm_scheduler.errors import FunctionCallError
from llm_scheduler.function_steps import (
    JsonValue,
    default_registry,
    join,
    json_extract,
    json_parse,
    length,
    regex_extract,
    template,
)

# --- json_parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]\n", [1, 2]),
        ("42", 42),
        ('"just a string"', "just a string"),
        ("null", None),
        ('```json\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Here you go:\n```JSON\n{"ok": true}\n```\nAnything else?', {"ok": True}),
        ('```\n["plain fence"]\n```', ["plain fence"]),
        (
            'Sure! The answer is {"name": "x", "tags": ["a"]} as requested.',
            {"name": "x", "tags": ["a"]},
        ),
        ("Result: [1, 2, 3]. Done {not json}", [1, 2, 3]),
        ('I think {this} is it: {"real": 1}', {"real": 1}),
        ('```json\n{broken\n```\nthen {"after": 2}', {"after": 2}),
    ],
)
def test_json_parse(text: str, expected: JsonValue) -> None:
    assert json_parse(text) == expected


@pytest.mark.parametrize("text", ["", "no json here", "{'single': 'quotes'}", "NaN", '{"a": NaN}'])
def test_json_parse_nothing_parses(text: str) -> None:
    with pytest.raises(FunctionCallError, match="no JSON found in the text"):
        json_parse(text)


def test_json_parse_error_shows_an_excerpt_and_the_json_error() -> None:
    with pytest.raises(FunctionCallError) as info:
        json_parse("x" * 200)
    message = str(info.value)
    assert "'" + "x" * 80 + "...'" in message
    assert "Expecting value: line 1 column 1" in message


def test_json_parse_rejects_non_string() -> None:
    with pytest.raises(FunctionCallError, match="text must be a string, got dict"):
        json_parse({"a": 1})  # type: ignore[arg-type]


# --- json_extract


DATA: JsonValue = {"items": [{"name": "first"}, {"name": "second", "n": None}], "count": 2}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("items.0.name", "first"),
        ("items.-1.name", "second"),
        ("items.1.n", None),
        ("count", 2),
        ("items.1", {"name": "second", "n": None}),
        ("", DATA),
    ],
)
def test_json_extract(path: str, expected: JsonValue) -> None:
    assert json_extract(DATA, path) == expected


def test_json_extract_parses_strings() -> None:
    assert json_extract('```json\n{"a": {"b": [10, 20]}}\n```', "a.b.1") == 20


def test_json_extract_string_keys_that_look_like_numbers() -> None:
    assert json_extract({"0": "zero"}, "0") == "zero"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("items.0.title", "path 'items.0.title': no key 'title' at items.0 (keys: name)"),
        ("missing", "path 'missing': no key 'missing' at the top level (keys: count, items)"),
        ("items.5", "path 'items.5': index 5 is out of range at items (length 2)"),
        ("items.first", "path 'items.first': 'first' is not a list index at items"),
        ("count.x", "path 'count.x': cannot look up 'x' in a int at count"),
        ("items..name", "path 'items..name': '' is not a list index at items"),
    ],
)
def test_json_extract_missing_path(path: str, message: str) -> None:
    with pytest.raises(FunctionCallError) as info:
        json_extract(DATA, path)
    assert str(info.value) == message


def test_json_extract_invalid_json_string() -> None:
    with pytest.raises(FunctionCallError, match="no JSON found"):
        json_extract("not json", "a")


# --- regex_extract


def test_regex_extract_first_match() -> None:
    assert regex_extract("order 12 and 34", r"\d+") == "12"
    assert regex_extract("score: 7/10", r"(\d+)/(\d+)", group=2) == "10"
    assert regex_extract("score: 7/10", r"(?P<got>\d+)/(?P<max>\d+)", group="got") == "7"
    assert regex_extract("score: 7/10", r"(\d+)/(\d+)", group="1") == "7"


def test_regex_extract_all_matches() -> None:
    assert regex_extract("a1 b2 c3", r"([a-z])(\d)", group=2, all=True) == ["1", "2", "3"]
    assert regex_extract("a1 b2", r"\w\d", all=True) == ["a1", "b2"]


def test_regex_extract_no_match() -> None:
    assert regex_extract("nothing", r"\d+") is None
    assert regex_extract("nothing", r"\d+", all=True) == []


def test_regex_extract_group_that_did_not_take_part() -> None:
    assert regex_extract("b", r"(a)?b", group=1) is None


@pytest.mark.parametrize(
    ("pattern", "group", "message"),
    [
        ("(unclosed", 0, "invalid regular expression '(unclosed': missing ), unterminated"),
        (r"(\d)", 2, r"pattern '(\\d)' has no group 2"),
        (r"(\d)", -1, "has no group -1"),
        (r"(?P<a>\d)", "b", "has no group named 'b'"),
    ],
)
def test_regex_extract_errors(pattern: str, group: int | str, message: str) -> None:
    with pytest.raises(FunctionCallError) as info:
        regex_extract("1", pattern, group=group)
    assert message in str(info.value)


# --- template, join, length


def test_template_returns_its_text() -> None:
    assert template("Hello, world") == "Hello, world"
    with pytest.raises(FunctionCallError, match="text must be a string"):
        template(3)  # type: ignore[arg-type]


def test_join() -> None:
    assert join(["a", "b"]) == "a\nb"
    assert join(["a", 1, None, {"k": "é"}, [2]], separator=", ") == 'a, 1, null, {"k": "é"}, [2]'
    assert join([]) == ""
    with pytest.raises(FunctionCallError, match="items must be a list, got str"):
        join("abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"), [("abc", 3), ([1, 2], 2), ({"a": 1}, 1), (None, 0), ("", 0)]
)
def test_length(value: JsonValue, expected: int) -> None:
    assert length(value) == expected


@pytest.mark.parametrize("value", [3, 2.5, True])
def test_length_of_a_number_fails(value: JsonValue) -> None:
    with pytest.raises(FunctionCallError, match="has no length"):
        length(value)


# --- through the registry, as steps call them


def test_builtins_through_the_registry() -> None:
    registry = default_registry()

    async def run() -> list[JsonValue]:
        return [
            await registry.call("json_parse", 'ok: {"a": 1}'),
            await registry.call("json_parse", {"text": "[1]"}),
            await registry.call("json_extract", {"data": '{"a": [5]}', "path": "a.0"}),
            await registry.call("regex_extract", {"text": "x=3", "pattern": r"\d", "all": True}),
            await registry.call("template", "rendered"),
            await registry.call("join", {"items": ["a", "b"], "separator": "-"}),
            await registry.call("length", [1, 2, 3]),
        ]

    assert asyncio.run(run()) == [{"a": 1}, [1], 5, ["3"], "rendered", "a-b", 3]


def test_builtin_errors_through_the_registry_name_the_function() -> None:
    registry = default_registry()
    with pytest.raises(FunctionCallError) as info:
        asyncio.run(registry.call("json_extract", {"data": {"a": 1}, "path": "b"}))
    assert str(info.value) == (
        "function 'json_extract' failed: path 'b': no key 'b' at the top level (keys: a)"
    )
    with pytest.raises(FunctionCallError, match=r"signature: json_extract\(data: "):
        asyncio.run(registry.call("json_extract", {"data": {}, "pth": "a"}))

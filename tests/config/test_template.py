from __future__ import annotations

from typing import Any

import pytest

from llm_scheduler.config.template import Placeholder, Template, format_value, lookup_path
from llm_scheduler.errors import InterpolationError


def test_parse_splits_text_and_placeholders() -> None:
    template = Template.parse("Hi %name%, see %doc.title%!")
    assert template.parts == (
        "Hi ",
        Placeholder(name="name", path=(), text="name"),
        ", see ",
        Placeholder(name="doc", path=("title",), text="doc.title"),
        "!",
    )
    assert template.names == {"name", "doc"}
    assert [p.text for p in template.placeholders] == ["name", "doc.title"]
    assert template.is_template


def test_parse_adjacent_placeholders_and_empty_text() -> None:
    assert Template.parse("%a%%b%").names == {"a", "b"}
    empty = Template.parse("")
    assert empty.parts == ()
    assert not empty.is_template
    assert empty.render({}) == ""


def test_double_percent_is_a_literal_percent() -> None:
    template = Template.parse("100%% sure, %%name%% stays")
    assert template.parts == ("100% sure, %name% stays",)
    assert not template.is_template
    assert template.render({"name": "x"}) == "100% sure, %name% stays"


@pytest.mark.parametrize("text", ["50% off", "5% and 10%", "%1st%", "100%", "% spaced %"])
def test_lone_percent_is_literal(text: str) -> None:
    template = Template.parse(text)
    assert not template.is_template
    assert template.render({}) == text


def test_percent_next_to_a_placeholder() -> None:
    assert Template.parse("%pct%% off").render({"pct": 50}) == "50% off"
    assert Template.parse("save 50% on %item%").render({"item": "tea"}) == "save 50% on tea"


def test_dotted_paths_into_dicts_and_lists() -> None:
    variables: dict[str, Any] = {"user": {"name": "Ada", "langs": ["en", "fr"]}}
    assert Template.parse("%user.name% speaks %user.langs.1%").render(variables) == (
        "Ada speaks fr"
    )


def test_dotted_path_into_a_json_string() -> None:
    variables = {"response": '{"answer": {"items": [10, 20]}, "ok": true}'}
    assert Template.parse("%response.answer.items.0%/%response.ok%").render(variables) == (
        "10/true"
    )


def test_rendering_is_one_pass() -> None:
    variables = {"a": "%b%", "b": "secret"}
    assert Template.parse("[%a%]").render(variables) == "[%b%]"
    assert Template.parse("%a%").render_value(variables) == "%b%"


def test_non_string_values_are_inserted_as_json() -> None:
    variables: dict[str, Any] = {
        "n": 3,
        "x": 0.5,
        "flag": True,
        "none": None,
        "obj": {"k": ["v", 1]},
        "word": "café",
        "fancy": {"name": "café"},
    }
    rendered = Template.parse("%n% %x% %flag% %none% %obj% %word% %fancy%").render(variables)
    assert rendered == '3 0.5 true null {"k": ["v", 1]} café {"name": "café"}'
    assert format_value("plain") == "plain"
    assert format_value([1, "a"]) == '[1, "a"]'


def test_missing_variable_error_names_it_and_the_known_ones() -> None:
    with pytest.raises(InterpolationError) as info:
        Template.parse("Hi %nmae%").render({"name": "Ada", "age": 3})
    assert str(info.value) == "%nmae%: no variable 'nmae' (variables here: age, name)"


def test_missing_variable_with_no_variables() -> None:
    with pytest.raises(InterpolationError, match=r"variables here: none"):
        Template.parse("%x%").render({})


def test_missing_key_in_a_path() -> None:
    with pytest.raises(InterpolationError) as info:
        Template.parse("%user.address.city%").render({"user": {"name": "Ada"}})
    assert str(info.value) == "%user.address.city%: 'user' (dict) has no field 'address'"


def test_list_index_out_of_range() -> None:
    with pytest.raises(InterpolationError) as info:
        lookup_path({"items": [1]}, ("items", "5"), "v.items.5")
    assert str(info.value) == "%v.items.5%: 'v.items' (list) has no field '5'"


def test_path_into_text_that_is_not_json() -> None:
    with pytest.raises(InterpolationError) as info:
        Template.parse("%note.title%").render({"note": "just words"})
    assert str(info.value) == "%note.title%: 'note' is text, not JSON, so it has no field 'title'"


def test_render_value_keeps_the_type_of_a_lone_placeholder() -> None:
    items = [1, {"a": 2}]
    variables: dict[str, Any] = {"items": items, "n": 3, "doc": '{"tags": ["x", "y"]}'}
    assert Template.parse("%items%").render_value(variables) is items
    assert Template.parse("%n%").render_value(variables) == 3
    assert Template.parse("%doc.tags%").render_value(variables) == ["x", "y"]
    assert Template.parse(" %n%").render_value(variables) == " 3"
    assert Template.parse("%items%!").render_value(variables) == '[1, {"a": 2}]!'
    assert Template.parse("no vars").render_value(variables) == "no vars"

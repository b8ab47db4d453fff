"""Template filters: ``%answer|truncate:64%``, ``|json``, ``|join:', '``, ``|default:'x'``."""

from __future__ import annotations

import json
import re
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st

from llm_scheduler.config import formats
from llm_scheduler.config.template import FILTERS, Filter, Placeholder, Template
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, ConfigProblem, InterpolationError
from llm_scheduler.v1 import config_pb2

VARIABLES: dict[str, Any] = {
    "answer": "abcdefghij",
    "items": ["a", 1, {"k": 2}],
    "data": {"x": "café", "n": [1, 2]},
    "listing": '["p", "q"]',
    "blank": "",
    "none": None,
    "nothing": [],
    "zero": 0,
    "no": False,
    "space": " ",
}


def render(source: str, variables: dict[str, Any] | None = None) -> str:
    return Template.parse(source).render(VARIABLES if variables is None else variables)


def value(source: str, variables: dict[str, Any] | None = None) -> Any:
    return Template.parse(source).render_value(VARIABLES if variables is None else variables)


# --- parsing -----------------------------------------------------------------------------------


def test_a_filtered_placeholder_keeps_its_filters_and_arguments_as_written() -> None:
    template = Template.parse("Q: %answer.text|default:'n/a'|truncate:64%!")
    [placeholder] = template.placeholders
    assert placeholder.name == "answer"
    assert placeholder.path == ("text",)
    assert placeholder.text == "answer.text|default:'n/a'|truncate:64"
    assert placeholder.filters == (Filter("default", "'n/a'"), Filter("truncate", "64"))
    assert placeholder.optional
    assert placeholder.apply is not None
    assert template.parts[0] == "Q: " and template.parts[2] == "!"
    assert FILTERS == ("default", "join", "json", "truncate")


def test_a_template_without_filters_is_the_plain_template() -> None:
    template = Template.parse("Hi %name%")
    assert type(template) is Template
    assert template.parts[1] == Placeholder(name="name", path=(), text="name")
    assert template.placeholders[0].apply is None
    assert type(Template.parse("Hi %name|json%")) is not Template


@pytest.mark.parametrize(
    "text",
    [
        "50% off",
        "%a | json%",
        "%a|%",
        "%a|json",
        "|json%",
        "%1a|json%",
        "%a|default:'open%",
        "%a|default:x y%",
    ],
)
def test_what_does_not_parse_stays_literal(text: str) -> None:
    template = Template.parse(text)
    assert not template.is_template
    assert template.render({"a": "A"}) == text


def test_double_percent_escapes_a_filtered_placeholder() -> None:
    assert render("%%answer|json%%") == "%answer|json%"


def test_quoted_arguments_may_hold_percent_and_bar() -> None:
    assert render("%missing|default:'50% | off'%") == "50% | off"
    assert render('%missing|default:"100%%"% and %zero%') == "100%% and 0"
    assert render("%items|join:' | '%") == 'a | 1 | {"k": 2}'


def test_single_quotes_are_literal_and_double_quotes_are_json() -> None:
    assert render(r"%items|join:'\n'%") == 'a\\n1\\n{"k": 2}'
    assert render(r'%items|join:"\n"%') == 'a\n1\n{"k": 2}'
    assert render(r'%missing|default:"say \"hi\" \u00e9"%') == 'say "hi" é'


# --- truncate ----------------------------------------------------------------------------------


def test_truncate_keeps_the_first_n_characters_without_an_ellipsis() -> None:
    assert render("%answer|truncate:3%") == "abc"
    assert render("%answer|truncate:0%") == ""
    assert render("%answer|truncate:99%") == "abcdefghij"
    assert render("%data.x|truncate:3%") == "caf"
    assert value("%answer|truncate:3%") == "abc"


def test_truncate_formats_a_non_string_first_as_insertion_does() -> None:
    assert render("%items|truncate:5%") == '["a",'
    assert render("%data|truncate:8%") == '{"x": "c'
    assert value("%zero|truncate:4%") == "0"
    assert value("%none|truncate:2%") == "nu"


# --- json --------------------------------------------------------------------------------------


def test_json_encodes_any_value_strings_included() -> None:
    assert render("%answer|json%") == '"abcdefghij"'
    assert render("%data|json%") == '{"x": "café", "n": [1, 2]}'
    assert render("%none|json%") == "null"
    assert render('{"q": %data.x|json%}') == '{"q": "café"}'
    quoted = {"q": 'she said "hi"\nthen left'}
    assert json.loads(render('{"q": %q|json%}', quoted)) == quoted
    assert value("%items|json%") == '["a", 1, {"k": 2}]'


# --- join --------------------------------------------------------------------------------------


def test_join_formats_each_item_like_insertion() -> None:
    assert render("%items|join:', '%") == 'a, 1, {"k": 2}'
    assert render("%nothing|join:', '%") == ""
    assert render("%data.n|join:'+'%") == "1+2"
    assert render("%items|join:''%") == 'a1{"k": 2}'


def test_join_parses_a_string_holding_a_json_list() -> None:
    assert render("%listing|join:' and '%") == "p and q"


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("%answer|join:','%", "text that is not a JSON list"),
        ("%data|join:','%", "an object"),
        ("%zero|join:','%", "0"),
        ("%none|join:','%", "null"),
    ],
)
def test_join_of_a_non_list_is_a_clear_error(source: str, kind: str) -> None:
    with pytest.raises(InterpolationError) as info:
        render(source)
    assert str(info.value) == f"{source}: join needs a list, but the value is {kind}"


# --- default -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "%missing|default:'anon'%",
        "%data.missing|default:'anon'%",
        "%data.n.7|default:'anon'%",
        "%answer.field|default:'anon'%",  # a path into text that is not JSON
        "%none|default:'anon'%",
        "%blank|default:'anon'%",
        "%nothing|default:'anon'%",
        "%data.missing|default:{}|default:'anon'%",
    ],
)
def test_default_stands_in_for_missing_null_and_empty(source: str) -> None:
    assert render(source) == "anon"


@pytest.mark.parametrize("name", ["zero", "no", "space", "answer", "items"])
def test_default_keeps_values_that_are_not_empty(name: str) -> None:
    assert value(f"%{name}|default:'anon'%") == VARIABLES[name]


def test_default_values_are_json_and_keep_their_type_in_a_whole_value_template() -> None:
    assert value("%missing|default:[]%") == []
    assert value("%missing|default:{}%") == {}
    assert value("%missing|default:0%") == 0
    assert value("%missing|default:-2.5%") == -2.5
    assert value("%missing|default:true%") is True
    assert value("%missing|default:null%") is None
    assert value("%missing|default:'[]'%") == "[]"
    assert render("n=%missing|default:3%, l=%missing|default:[]%") == "n=3, l=[]"


def test_a_missing_variable_without_default_is_still_an_error() -> None:
    with pytest.raises(InterpolationError) as info:
        render("%missing|truncate:3%", {"a": 1})
    assert str(info.value) == "%missing|truncate:3%: no variable 'missing' (variables here: a)"


# --- chaining ----------------------------------------------------------------------------------


def test_filters_apply_left_to_right() -> None:
    assert render("%missing|default:'xyz'|truncate:2%") == "xy"
    assert render("%answer|truncate:2|json%") == '"ab"'
    assert render("%answer|json|truncate:3%") == '"ab'
    assert render("%items|join:'-'|truncate:3%") == "a-1"


def test_a_missing_value_skips_the_filters_before_the_default() -> None:
    assert render("%missing|join:', '|default:'none'%") == "none"
    assert render("%nothing|join:', '|default:'none'%") == "none"
    assert render("%missing|truncate:2|default:'long default'%") == "long default"
    assert render("%items|join:', '|default:'none'%") == 'a, 1, {"k": 2}'


# --- one pass ----------------------------------------------------------------------------------


def test_values_and_arguments_are_never_scanned_again() -> None:
    variables = {"a": "%b|json%", "b": "secret", "l": ["%b%", "%b|json%"]}
    assert render("[%a|truncate:99%]", variables) == "[%b|json%]"
    assert render("%a|json%", variables) == '"%b|json%"'
    assert render("%l|join:' '%", variables) == "%b% %b|json%"
    assert render("%missing|default:'%b%'%", variables) == "%b%"
    assert value("%a|default:'x'%", variables) == "%b|json%"


# --- problems ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("%answer|trunc:3%", "%answer|trunc:3%: unknown filter 'trunc'"),
        ("%answer|truncate:abc%", "%answer|truncate:abc%: truncate:abc is not a length"),
        ("%answer|truncate:-1%", "%answer|truncate:-1%: truncate:-1 is not a length"),
        ("%answer|truncate:1.5%", "%answer|truncate:1.5%: truncate:1.5 is not a length"),
        ("%answer|truncate:'3'%", "%answer|truncate:'3'%: truncate:'3' is not a length"),
        ("%answer|truncate%", "%answer|truncate%: truncate needs a length"),
        ("%answer|json:1%", "%answer|json:1%: json:1 takes no argument"),
        ("%items|join%", "%items|join%: join needs a separator"),
        ("%items|join:1%", "%items|join:1%: join:1 is not a separator (it is not text)"),
        ("%items|join:x%", "%items|join:x%: join:x: x is not a value"),
        ("%a|default%", "%a|default%: default needs a value"),
        ('%a|default:"\\q"%', '%a|default:"\\q"%: default:"\\q": "\\q" is not a value'),
        ("%a|default:NaN%", "%a|default:NaN%: default:NaN: NaN is not a value"),
        ("%a|default:" + "[" * 5000 + "%", "%a|default:" + "[" * 5000 + "%: default:"),
    ],
)
def test_bad_filters_are_problems_and_fail_rendering(source: str, message: str) -> None:
    template = Template.parse(source)  # parsing never raises
    [problem] = template.problems
    assert problem.message.startswith(message)
    assert "filters: default:VALUE, join:SEP, json, truncate:N" in problem.hint
    with pytest.raises(InterpolationError) as info:
        template.render({"answer": "x", "items": [], "a": "y"})
    assert str(info.value) == f"{problem.message} ({problem.hint})"


def test_an_unknown_filter_hint_suggests_the_closest() -> None:
    [problem] = Template.parse("%a|jsn%").problems
    assert problem.hint.startswith("did you mean 'json'? filters:")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("Say %a | json% now", "'%a | json%'"),
        ("%a|default:'it's'% and %b%", "\"%a|default:'it's'%\""),
        ("%a|truncate:64 %", "'%a|truncate:64 %'"),
    ],
)
def test_text_that_nearly_is_a_filtered_placeholder_is_a_problem(
    source: str, fragment: str
) -> None:
    template = Template.parse(source)
    [problem] = template.problems
    assert problem.message == (
        f"{fragment} looks like a placeholder with filters but does not parse, so it would "
        "stay literal text"
    )
    assert "write %% for a literal %" in problem.hint


@pytest.mark.parametrize("source", ["50% off", "%%a|json%%", "100%|x", "a|b %c%|d", "%a%|b%"])
def test_ordinary_text_has_no_problem(source: str) -> None:
    assert Template.parse(source).problems == ()


def test_required_names_leave_out_names_read_with_a_default() -> None:
    template = Template.parse("%a% %b|default:''% %c|truncate:2% %a|default:''% %d.x|default:0%")
    assert template.names == {"a", "b", "c", "d"}
    assert template.required_names == {"a", "c"}


# --- properties --------------------------------------------------------------------------------

# The parser before filters, to check that text without "|" parses exactly as it did.
_OLD_TOKEN = re.compile(r"%%|%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)%")


def _old_parts(source: str) -> tuple[str | Placeholder, ...]:
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    position = 0
    for match in _OLD_TOKEN.finditer(source):
        literal.append(source[position : match.start()])
        position = match.end()
        if match.group(1) is None:
            literal.append("%")
            continue
        if "".join(literal):
            parts.append("".join(literal))
        literal = []
        name, *path = match.group(1).split(".")
        parts.append(Placeholder(name=name, path=tuple(path), text=match.group(1)))
    literal.append(source[position:])
    if "".join(literal):
        parts.append("".join(literal))
    return tuple(parts)


_PIECES = st.sampled_from(
    [
        *("%", "%%", "|", ":", "'", '"', "\\", " ", "\n", ".", "0", "-1", "a", "b_2", "x"),
        *("json", "join", "truncate", "default", "[]", "{", "null", "é", "64"),
    ]
)
_TEXTS = st.lists(_PIECES, max_size=30).map("".join) | st.text(max_size=60)
_SETTINGS = hypothesis.settings(max_examples=400, deadline=None, database=None)


@_SETTINGS
@hypothesis.given(_TEXTS)
def test_any_string_parses_and_renders_or_raises_interpolation_error(source: str) -> None:
    template = Template._parse_uncached(source)
    assert isinstance(template.problems, tuple)
    variables: dict[str, Any] = {"a": "A", "b_2": [1, "2"], "x": None, "json": "", "join": {}}
    try:
        rendered = template.render(variables)
    except InterpolationError:
        return
    assert isinstance(rendered, str)


@_SETTINGS
@hypothesis.given(_TEXTS.map(lambda text: text.replace("|", "")))
def test_text_without_a_bar_parses_exactly_as_before(source: str) -> None:
    template = Template._parse_uncached(source)
    assert type(template) is Template
    assert template.parts == _old_parts(source)
    assert template.problems == ()


@_SETTINGS
@hypothesis.given(st.text(max_size=40))
def test_an_inserted_value_comes_out_as_it_went_in(text: str) -> None:
    assert Template.parse("%v|truncate:100%").render({"v": text}) == text[:100]
    assert Template.parse("%v|default:'d'%").render({"v": text}) == (text or "d")
    assert json.loads(Template.parse("%v|json%").render({"v": text})) == text


# --- validation --------------------------------------------------------------------------------

FILE = "job.json"


def _job(prompt: str, output: str = "") -> config_pb2.JobConfig:
    step: dict[str, Any] = {"model_query_config": {"model_key": "OFFLINE", "user_prompt": prompt}}
    task: dict[str, Any] = {"task_id": "t", "steps": [step]}
    if output:
        task["output_config"] = {"payload": {"out": output}}
    config = {"input_config": {"payload": {"answer": "x"}}, "tasks": [task]}
    return formats.loads(
        json.dumps(config), config_pb2.JobConfig, formats.ConfigFormat.JSON, file=FILE
    )


def _problems(job: config_pb2.JobConfig) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        Validator(file=FILE).check_job(job)
    for problem in info.value.problems:
        assert problem.file == FILE
    return info.value.problems


def test_a_bad_filter_in_a_prompt_is_a_config_error_with_the_field_path_and_the_filters() -> None:
    [problem] = _problems(_job("Say %answer|truncate:abc%"))
    assert problem.path == "tasks[0].steps[0].model_query_config.user_prompt"
    assert problem.message == "%answer|truncate:abc%: truncate:abc is not a length"
    assert "filters: default:VALUE, join:SEP, json, truncate:N" in problem.hint
    assert str(problem).startswith(
        f"{FILE}: tasks[0].steps[0].model_query_config.user_prompt: %answer|truncate:abc%"
    )


def test_every_bad_filter_of_a_job_is_reported_at_once() -> None:
    problems = _problems(_job("%answer|shout% %answer|truncate:-1%", "%response|jsn%"))
    assert [(p.path, p.message) for p in problems] == [
        (
            "tasks[0].steps[0].model_query_config.user_prompt",
            "%answer|shout%: unknown filter 'shout'",
        ),
        (
            "tasks[0].steps[0].model_query_config.user_prompt",
            "%answer|truncate:-1%: truncate:-1 is not a length",
        ),
        ("tasks[0].output_config.payload.out", "%response|jsn%: unknown filter 'jsn'"),
    ]


def test_a_near_miss_is_a_config_error() -> None:
    [problem] = _problems(_job("Say %answer | json%"))
    assert problem.path == "tasks[0].steps[0].model_query_config.user_prompt"
    assert "looks like a placeholder with filters" in problem.message


def test_a_missing_variable_with_a_default_is_valid() -> None:
    job = _job("Hi %name|default:'anonymous'% %answer|json%", "%response|truncate:10%")
    Validator(file=FILE).check_job(job)
    [problem] = _problems(_job("Hi %name|truncate:3%"))
    assert problem.message.startswith("%name% has no value: nothing upstream provides 'name'")


def test_filters_in_a_function_request_and_a_map_are_checked() -> None:
    step = formats.loads(
        json.dumps(
            {
                "step_type": "STEP_TYPE_FUNCTION_CALL",
                "function_call_config": {
                    "function_name": "json_extract",
                    "request": {"data": "%doc|json%", "path": "%where|bogus%"},
                },
            }
        ),
        config_pb2.StepConfig,
        formats.ConfigFormat.JSON,
    )
    with pytest.raises(ConfigError) as info:
        Validator().check_step(step, ["doc", "where"])
    [problem] = info.value.problems
    assert problem.path == "function_call_config.request.path"
    assert problem.message == "%where|bogus%: unknown filter 'bogus'"

    task: dict[str, Any] = {
        "task_id": "m",
        "for_each": {"items": "%sections|default:[]%"},
        "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%item%"}}],
    }
    job = formats.loads(
        json.dumps({"tasks": [task]}), config_pb2.JobConfig, formats.ConfigFormat.JSON
    )
    Validator().check_job(job)  # a map over a missing list with a default is valid
    task["for_each"]["items"] = "%sections|truncate%"
    bad = formats.loads(
        json.dumps({"input_config": {"payload": {"sections": []}}, "tasks": [task]}),
        config_pb2.JobConfig,
        formats.ConfigFormat.JSON,
    )
    with pytest.raises(ConfigError) as info:
        Validator().check_job(bad)
    [problem] = info.value.problems
    assert problem.path == "tasks[0].for_each.items"
    assert problem.message == "%sections|truncate%: truncate needs a length"

from __future__ import annotations

from typing import Any

import pytest

from llm_scheduler.config.parameters import KNOWN_PARAMETERS, coerce_parameters

PATH = "steps[0].model_query_config.parameters"


def test_strings_are_coerced_to_numbers() -> None:
    result, problems = coerce_parameters(
        {
            "temperature": "0.7",
            "top_p": " 0.9 ",
            "max_tokens": "256",
            "top_k": 40.0,
            "seed": "-3",
            "presence_penalty": "-2",
        },
        PATH,
    )
    assert problems == []
    assert result == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 256,
        "top_k": 40,
        "seed": -3,
        "presence_penalty": -2.0,
    }
    assert type(result["max_tokens"]) is int
    assert type(result["top_k"]) is int
    assert type(result["temperature"]) is float


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"max_output_tokens": "100"}, {"max_tokens": 100}),
        ({"max_completion_tokens": 100}, {"max_tokens": 100}),
        ({"stop_sequences": ["END"]}, {"stop": ["END"]}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
    ],
)
def test_aliases_and_stop_forms(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert coerce_parameters(raw, PATH) == (expected, [])


def test_duplicate_through_an_alias() -> None:
    result, [problem] = coerce_parameters({"max_tokens": 10, "max_output_tokens": 20}, PATH)
    assert result == {"max_tokens": 10}
    assert problem.path == f"{PATH}.max_output_tokens"
    assert problem.message == "'max_tokens' is given twice"
    assert problem.hint == "keep one of 'max_tokens' or 'max_output_tokens'"


def test_unknown_parameters_pass_through_unchanged() -> None:
    nested = {"type": "enabled", "budget_tokens": "1024"}
    result, problems = coerce_parameters(
        {"candidate_count": "2", "thinking": nested, "temperature": 1}, PATH
    )
    assert problems == []
    assert result == {"candidate_count": "2", "thinking": nested, "temperature": 1.0}
    assert result["thinking"] is nested


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        ("temperature", "hot", "temperature takes a number from 0 to 2"),
        ("temperature", 3, "temperature takes a number from 0 to 2"),
        ("temperature", True, "temperature takes a number from 0 to 2"),
        ("temperature", "nan", "temperature takes a number from 0 to 2"),
        ("top_p", "1.5", "top_p takes a number from 0 to 1"),
        ("max_tokens", 0, "max_tokens takes an integer of at least 1"),
        ("max_output_tokens", "2.5", "max_output_tokens takes an integer of at least 1"),
        ("top_k", 0, "top_k takes an integer of at least 1"),
        ("seed", [1], "seed takes an integer"),
        ("frequency_penalty", -2.5, "frequency_penalty takes a number from -2 to 2"),
        ("stop", 5, "stop takes a string or a list of strings"),
        ("stop", ["a", 1], "stop takes a string or a list of strings"),
    ],
)
def test_bad_values(name: str, value: Any, hint: str) -> None:
    result, [problem] = coerce_parameters({name: value}, PATH)
    assert result == {}
    assert problem.path == f"{PATH}.{name}"
    assert problem.message == f"bad value {value!r}"
    assert problem.hint == hint


def test_every_problem_is_returned() -> None:
    _, problems = coerce_parameters({"temperature": "hot", "top_p": 2, "top_k": 5}, PATH)
    assert [p.path for p in problems] == [f"{PATH}.temperature", f"{PATH}.top_p"]


def test_known_parameter_names_are_unique() -> None:
    names = [n for spec in KNOWN_PARAMETERS for n in (spec.name, *spec.aliases)]
    assert len(names) == len(set(names))

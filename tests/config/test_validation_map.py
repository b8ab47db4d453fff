"""Validation of maps (`TaskConfig.for_each`): the list, the variables, the limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

FILE = "job.json"


def _job(for_each: dict[str, Any], *, task_input: dict[str, Any] | None = None) -> str:
    """A planner whose output is ``sections``, a map task over ``for_each``, and a join."""
    mapper: dict[str, Any] = {
        "task_id": "write",
        "next_task": "join",
        "for_each": for_each,
        "steps": [
            {
                "model_query_config": {
                    "model_key": "OFFLINE",
                    "user_prompt": "Section %index%: %item%",
                },
                "output_config": {"payload": {"text": "%response%"}},
            }
        ],
    }
    if task_input is not None:
        mapper["input_config"] = {"payload": task_input}
    job = {
        "input_config": {"payload": {"topics": ["a", "b"]}},
        "tasks": [
            {
                "task_id": "plan",
                "next_task": "write",
                "steps": [
                    {
                        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "plan"},
                        "output_config": {"payload": {"sections": "%response%"}},
                    }
                ],
            },
            mapper,
            {
                "task_id": "join",
                "steps": [
                    {"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%text%"}}
                ],
            },
        ],
    }
    return json.dumps(job)


def _check(text: str) -> None:
    job = formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file=FILE)
    Validator(file=FILE).check_job(job)


def _problems(text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        _check(text)
    for problem in info.value.problems:
        assert problem.hint
        assert problem.file == FILE
    return info.value.problems


def _only(text: str) -> ConfigProblem:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("items", ["%sections%", "%sections.parts%", "%topics%"])
def test_a_map_over_a_predecessor_output_or_a_job_input_is_valid(items: str) -> None:
    _check(_job({"items": items}))


def test_item_and_index_variables_are_in_scope_under_their_own_names() -> None:
    text = _job({"items": "%sections%", "item_variable": "section", "index_variable": "i"})
    problems = _problems(text)
    # The prompt uses the default names, which the map no longer binds.
    assert {p.path for p in problems} == {"tasks[1].steps[0].model_query_config.user_prompt"}
    assert {p.message.split(":")[0] for p in problems} == {
        "%index% has no value",
        "%item% has no value",
    }


@pytest.mark.parametrize("items", ["sections", "%sections% and more", "%a%%b%", "list: %sections%"])
def test_items_must_be_exactly_one_placeholder(items: str) -> None:
    problem = _only(_job({"items": items}))
    assert problem.path == "tasks[1].for_each.items"
    assert "not exactly one placeholder" in problem.message
    assert '"%sections%"' in problem.hint


def test_items_missing() -> None:
    problem = _only(_job({"max_in_flight": 2}))
    assert problem.path == "tasks[1].for_each.items"
    assert problem.message == "missing"


def test_items_naming_nothing_upstream() -> None:
    problem = _only(_job({"items": "%chapters%"}))
    assert problem.path == "tasks[1].for_each.items"
    assert "'chapters'" in problem.message
    assert "sections" in problem.hint and "topics" in problem.hint


def test_a_task_input_does_not_provide_the_list() -> None:
    problem = _only(_job({"items": "%mine%"}, task_input={"mine": [1, 2]}))
    assert problem.path == "tasks[1].for_each.items"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("item_variable", "2nd", "'2nd' is not a variable name"),
        ("index_variable", "my-index", "'my-index' is not a variable name"),
        ("index_variable", "item", "'item' is also the item variable"),
    ],
)
def test_bad_variable_names(field: str, value: str, message: str) -> None:
    problems = _problems(_job({"items": "%sections%", field: value}))
    problem = next(p for p in problems if p.path == f"tasks[1].for_each.{field}")
    assert problem.message == message


def test_a_variable_must_not_shadow_a_task_input() -> None:
    problems = _problems(_job({"items": "%sections%"}, task_input={"item": "x"}))
    problem = next(p for p in problems if p.path == "tasks[1].for_each.item_variable")
    assert "shadows the task input" in problem.message


@pytest.mark.parametrize("max_items", [-1, 100_001])
def test_max_items_out_of_range(max_items: int) -> None:
    problem = _only(_job({"items": "%sections%", "max_items": max_items}))
    assert problem.path == "tasks[1].for_each.max_items"
    assert "1 to 100,000" in problem.hint


def test_negative_max_in_flight() -> None:
    problem = _only(_job({"items": "%sections%", "max_in_flight": -3}))
    assert problem.path == "tasks[1].for_each.max_in_flight"


def test_limits_in_range_are_valid() -> None:
    _check(_job({"items": "%sections%", "max_items": 100_000, "max_in_flight": 4}))


def test_successors_see_the_map_outputs_by_their_names() -> None:
    # The join's %text% is the map's output name (a list at run time): it checks as before.
    _check(_job({"items": "%sections%"}))

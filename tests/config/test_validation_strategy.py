"""Validation of strategies (`TaskConfig.strategy`): axes, values, names, only, model keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

FILE = "job.json"


def _axis(name: str, variable: str, *values: Any) -> dict[str, Any]:
    return {
        "name": name,
        "variable": variable,
        "values": [v if isinstance(v, dict) else {"name": v} for v in values],
    }


def _job(
    strategy: dict[str, Any], *, extra: dict[str, Any] | None = None, embedding: bool = False
) -> config_pb2.JobConfig:
    """rewrite (a strategy) -> join, reading ``%tone%`` and ``%text%``."""
    step: dict[str, Any] = {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "%tone%: %text%"},
        "output_config": {"payload": {"draft": "%response%"}},
    }
    if embedding:
        step = {
            "step_type": 2,
            "embedding_config": {"model_key": "offline:embed", "input": "%tone% %text%"},
            "output_config": {"payload": {"draft": "%response%"}},
        }
    task: dict[str, Any] = {
        "task_id": "rewrite",
        "next_task": "join",
        "strategy": strategy,
        "steps": [step],
        **(extra or {}),
    }
    job = {
        "input_config": {"payload": {"text": "hello", "tone": "neutral", "items": [1, 2]}},
        "tasks": [
            task,
            {
                "task_id": "join",
                "steps": [
                    {"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%draft%"}}
                ],
            },
        ],
    }
    return formats.loads(json.dumps(job), config_pb2.JobConfig, formats.ConfigFormat.JSON)


def _problems(job: config_pb2.JobConfig) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as raised:
        Validator(file=FILE).check_job(job)
    return raised.value.problems


def _one(job: config_pb2.JobConfig) -> ConfigProblem:
    problems = _problems(job)
    assert len(problems) == 1, problems
    return problems[0]


MODELS = _axis("model", "model_key", "OFFLINE", "offline:other")
TONES = _axis("tone", "tone", "plain", {"name": "warm", "value": "Warmly"})


def test_a_valid_strategy_passes_and_its_variables_are_in_scope() -> None:
    Validator().check_job(_job({"axes": [MODELS, TONES]}))
    Validator().check_job(_job({"axes": [TONES], "in_series": True}))
    Validator().check_job(
        _job({"axes": [MODELS, TONES], "only": ["rewrite[model=OFFLINE,tone=warm]"]})
    )


def test_an_axis_over_a_variable_no_step_reads_is_an_error() -> None:
    problem = _one(_job({"axes": [_axis("size", "size", "s", "m")]}))
    assert problem.path == "tasks[0].strategy.axes[0].variable"
    assert "no step of task 'rewrite' reads %size%" in problem.message
    assert "model_key" in problem.hint and "tone" in problem.hint


def test_an_empty_strategy_and_an_empty_axis() -> None:
    assert _one(_job({"in_series": True})).path == "tasks[0].strategy.axes"
    problem = _one(_job({"axes": [_axis("tone", "tone")]}))
    assert problem.path == "tasks[0].strategy.axes[0].values"
    assert "no values" in problem.message


def test_duplicate_axis_and_value_names_and_reserved_characters() -> None:
    problem = _one(_job({"axes": [TONES, _axis("tone", "model_key", "OFFLINE")]}))
    assert problem.path == "tasks[0].strategy.axes[1].name"
    assert "duplicate axis name 'tone'" in problem.message
    problem = _one(_job({"axes": [_axis("tone", "tone", "a", "a")]}))
    assert problem.path == "tasks[0].strategy.axes[0].values[1].name"
    assert "duplicate value name 'a'" in problem.message
    problem = _one(_job({"axes": [_axis("tone", "tone", "a=b")]}))
    assert problem.path == "tasks[0].strategy.axes[0].values[0].name"
    assert "'='" in problem.message
    problem = _one(_job({"axes": [_axis("", "tone", "a")]}))
    assert problem.path == "tasks[0].strategy.axes[0].name"


def test_a_name_in_only_the_axes_do_not_produce() -> None:
    problem = _one(_job({"axes": [TONES], "only": ["rewrite[tone=cold]"]}))
    assert problem.path == "tasks[0].strategy.only[0]"
    assert "no variation 'rewrite[tone=cold]'" in problem.message
    assert "rewrite[tone=plain]" in problem.hint


def test_model_key_values_must_be_registered_keys_of_the_right_kind() -> None:
    problem = _one(_job({"axes": [_axis("model", "model_key", "OFFLINE", "NO_SUCH_MODEL")]}))
    assert problem.path == "tasks[0].strategy.axes[0].values[1].name"
    assert "unknown model key 'NO_SUCH_MODEL'" in problem.message
    problem = _one(
        _job({"axes": [_axis("model", "model_key", "GEMINI_FLASH")], "only": []}, embedding=True)
    )
    assert problem.path == "tasks[0].strategy.axes[0].values[0].name"
    assert "chat model" in problem.message
    valued = _axis("model", "model_key", {"name": "small", "value": "NOPE"})
    problem = _one(_job({"axes": [valued]}))
    assert problem.path == "tasks[0].strategy.axes[0].values[0].value"


def test_a_strategy_and_for_each_on_one_task_is_an_error() -> None:
    problem = _one(_job({"axes": [TONES]}, extra={"for_each": {"items": "%items%"}}))
    assert problem.path == "tasks[0].strategy"
    assert "both a map" in problem.message and "sub-job" in problem.hint


def test_too_many_variations() -> None:
    values = [str(i) for i in range(40)]
    problem = _one(_job({"axes": [_axis("a", "tone", *values), _axis("b", "text", *values)]}))
    assert problem.path == "tasks[0].strategy.axes"
    assert "1,600 variations" in problem.message

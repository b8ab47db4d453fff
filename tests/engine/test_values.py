"""A task's starting variables: config defaults lose to values given at run time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from llm_scheduler import ModelClient, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.values import task_variables
from llm_scheduler.v1 import config_pb2, run_pb2


def _task(defaults: dict[str, Any], task_id: str = "t") -> config_pb2.TaskConfig:
    text = json.dumps(
        {
            "task_id": task_id,
            "input_config": {"payload": defaults},
            "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%topic%"}}],
        }
    )
    return loads(text, config_pb2.TaskConfig, ConfigFormat.JSON)


def test_a_run_time_value_wins_over_a_task_default() -> None:
    task = _task({"topic": "computers", "tone": "dry"})
    assert task_variables({"topic": "owls"}, task, []) == {"topic": "owls", "tone": "dry"}


def test_a_task_default_fills_only_what_nothing_else_gives() -> None:
    task = _task({"topic": "computers"})
    assert task_variables({}, task, []) == {"topic": "computers"}


def test_predecessor_outputs_win_over_run_time_values_and_defaults() -> None:
    task = _task({"topic": "computers"})
    variables = task_variables({"topic": "owls"}, task, [("before", {"topic": "bats"})])
    assert variables == {"topic": "bats"}


def test_combine_directives_are_not_defaults() -> None:
    task = _task({"topic": {"$combine": "list"}})
    assert task_variables({"topic": "owls"}, task, []) == {"topic": "owls"}


def test_job_inputs_win_over_a_task_default_in_run_job() -> None:
    job = config_pb2.JobConfig(job_id="j")
    job.tasks.append(_task({"topic": "computers"}, "only"))
    Validator().check_job(job)
    context = RunContext(models=ModelClient(offline=True))
    record = asyncio.run(run_job(job, context, inputs={"topic": "owls"}))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert record.tasks[0].steps[0].user_prompt == "owls"
    assert struct_to_dict(record.tasks[0].inputs) == {"topic": "owls"}

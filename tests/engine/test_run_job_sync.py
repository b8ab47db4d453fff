"""`run_job_sync`: a job run from code that is not async."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm_scheduler import ModelClient, RunContext, loads, run_job_sync, struct_to_dict
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.v1 import config_pb2, run_pb2

_JOB = {
    "job_id": "sync",
    "tasks": [
        {
            "task_id": "greet",
            "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi %who%"}}],
        }
    ],
}


def _job() -> config_pb2.JobConfig:
    return loads(json.dumps(_JOB), config_pb2.JobConfig, ConfigFormat.JSON)


def test_runs_a_job_twice_on_one_context() -> None:
    context = RunContext(models=ModelClient(offline=True))
    first = run_job_sync(_job(), context, inputs={"who": "owls"}, run_id="first")
    second = run_job_sync(_job(), context, inputs={"who": "owls"})  # connections reopened
    assert (first.run_id, first.status) == ("first", run_pb2.RUN_STATUS_SUCCEEDED)
    assert second.status == run_pb2.RUN_STATUS_SUCCEEDED and second.run_id != "first"
    assert "hi owls" in struct_to_dict(first.outputs)["greet"]["response"]
    assert first.outputs == second.outputs


def test_refuses_to_run_inside_a_running_event_loop() -> None:
    context = RunContext(models=ModelClient(offline=True))

    async def inside_a_loop() -> None:
        with pytest.raises(RuntimeError, match="running event loop"):
            run_job_sync(_job(), context)

    asyncio.run(inside_a_loop())

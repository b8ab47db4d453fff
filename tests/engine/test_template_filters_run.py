"""A job whose prompts and outputs use template filters, run end to end offline."""

from __future__ import annotations

import json

from llm_scheduler import ModelClient, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import run_closing as run

JOB = {
    "job_id": "filtered",
    "input_config": {
        "payload": {"topic": "owls of the northern forests", "tags": ["night", "birds"]}
    },
    "tasks": [
        {
            "task_id": "write",
            "next_task": "quote",
            "steps": [
                {
                    "model_query_config": {
                        "model_key": "OFFLINE",
                        "user_prompt": "About %topic|truncate:4% (%tags|join:', '%) "
                        "for %reader|default:'everyone'%",
                    },
                    "output_config": {"payload": {"summary": "%response|truncate:8%"}},
                }
            ],
        },
        {
            "task_id": "quote",
            "steps": [
                {
                    "model_query_config": {
                        "model_key": "OFFLINE",
                        "user_prompt": '{"summary": %summary|json%, "notes": '
                        "%notes|default:[]|json%}",
                    },
                    "output_config": {"payload": {"tags": "%tags|default:[]%"}},
                }
            ],
        },
    ],
}


def _task(job_run: run_pb2.JobRun, task_id: str) -> run_pb2.TaskRun:
    return next(t for t in job_run.tasks if t.task_id == task_id)


def test_a_job_with_filters_in_its_prompts_runs_offline() -> None:
    job = loads(json.dumps(JOB), config_pb2.JobConfig, ConfigFormat.JSON)
    Validator().check_job(job)  # %reader% and %notes% are missing, but have defaults
    context = RunContext(models=ModelClient(offline=True))
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = _task(job_run, "write")
    assert write.steps[0].user_prompt == "About owls (night, birds) for everyone"
    summary = struct_to_dict(write.outputs)["summary"]
    assert summary == write.steps[0].response_text[:8] == "[offline"
    quote = _task(job_run, "quote")
    assert json.loads(quote.steps[0].user_prompt) == {"summary": "[offline", "notes": []}
    # A whole-value template keeps the type the filters give: the list stays a list.
    assert struct_to_dict(quote.outputs) == {"tags": ["night", "birds"]}

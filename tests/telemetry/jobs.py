"""Job configs the telemetry tests run."""

from __future__ import annotations

import json
from typing import Any

from llm_scheduler import loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.v1 import config_pb2


def query(prompt: str, outputs: dict[str, Any], model_key: str = "OFFLINE") -> dict[str, Any]:
    return {
        "model_query_config": {
            "model_key": model_key,
            "system_prompt": "You are terse.",
            "user_prompt": prompt,
        },
        "output_config": {"payload": outputs},
    }


def fan_out_job(branches: int = 4, model_key: str = "OFFLINE") -> config_pb2.JobConfig:
    """start -> branch0..branchN-1 (one step each) -> join (two steps)."""
    names = [f"branch{i}" for i in range(branches)]
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [query("start %topic%", {"a": ""}, model_key)],
            "next_tasks": names,
        }
    ]
    for i, name in enumerate(names):
        tasks.append(
            {
                "task_id": name,
                "steps": [query(f"branch {i} of %a%", {f"out{i}": ""}, model_key)],
                "next_task": "join",
            }
        )
    outs = " | ".join(f"%out{i}%" for i in range(branches))
    tasks.append(
        {
            "task_id": "join",
            "steps": [
                query(f"join {outs}", {"joined": ""}, model_key),
                query("shorten %joined%", {"final": ""}, model_key),
            ],
        }
    )
    config = {"job_id": "fan", "tasks": tasks, "input_config": {"payload": {"topic": "owls"}}}
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def failing_function_job() -> config_pb2.JobConfig:
    """ask (a model step) -> broken (a function step whose function raises)."""
    config = {
        "job_id": "broken",
        "tasks": [
            {"task_id": "ask", "steps": [query("hello", {"a": ""})], "next_task": "broken"},
            {
                "task_id": "broken",
                "steps": [
                    {
                        "id": "boom",
                        "step_type": "STEP_TYPE_FUNCTION_CALL",
                        "function_call_config": {
                            "function_name": "json_extract",
                            "request": {"data": "%a%", "path": "no.such.path"},
                        },
                        "output_config": {"payload": {"b": ""}},
                    }
                ],
            },
        ],
    }
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)

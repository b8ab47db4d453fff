"""Jobs and runs for the run-page tests: offline runs executed in process through a store."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from llm_scheduler import loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.function_steps import FunctionRegistry
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import Store
from llm_scheduler.v1 import config_pb2

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
XSS = f"{SCRIPT} {IMG}"


def model_step(step_id: str, prompt: str, output: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": f"ask {step_id}",
        "model_query_config": {
            "model_key": "GEMINI_FLASH",
            "system_prompt": "You are terse.",
            "user_prompt": prompt,
            "parameters": {"temperature": 0.5},
        },
        "output_config": {"payload": {output: ""}},
        **extra,
    }


def function_step(step_id: str, text: str, output: str) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": f"template {step_id}",
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "template", "request": {"text": text}},
        "output_config": {"payload": {output: "%response%"}},
    }


def job_from(data: dict[str, Any]) -> config_pb2.JobConfig:
    return loads(json.dumps(data), config_pb2.JobConfig, ConfigFormat.JSON)


def chain_job(job_id: str = "chain") -> config_pb2.JobConfig:
    """first (a model step, a function step) -> second (a model step)."""
    return job_from(
        {
            "job_id": job_id,
            "name": "A chain",
            "input_config": {"payload": {"topic": "owls"}},
            "tasks": [
                {
                    "task_id": "first",
                    "name": "First task",
                    "steps": [
                        model_step("ask", "Tell me about %topic%.", "fact"),
                        function_step("fmt", "fact: %fact%", "line"),
                    ],
                    "next_task": "second",
                },
                {
                    "task_id": "second",
                    "steps": [model_step("again", "Rephrase: %line%", "final")],
                },
            ],
        }
    )


def xss_job() -> config_pb2.JobConfig:
    """A job whose model answer, function output and task name hold HTML."""
    return job_from(
        {
            "job_id": "xss",
            "name": f"Job {SCRIPT}",
            "input_config": {"payload": {"evil": XSS}},
            "tasks": [
                {
                    "task_id": "evil",
                    "name": f"Task {IMG}",
                    "steps": [
                        model_step("ask", "Repeat %evil%", "answer"),
                        function_step("fn", "%evil%", "echo"),
                    ],
                }
            ],
        }
    )


def offline_context(functions: FunctionRegistry | None = None) -> RunContext:
    context = RunContext(models=ModelClient(offline=True))
    if functions is not None:
        context.functions = functions
    return context


def dispatch(store: Store, functions: FunctionRegistry | None = None) -> None:
    """Runs every runnable task run of the store here, until none is left."""
    context = offline_context(functions)

    async def body() -> None:
        try:
            await Dispatcher(store, context, workers=2).run(until_idle=True)
        finally:
            await context.models.aclose()

    asyncio.run(body())


def run_offline(
    store: Store, job: config_pb2.JobConfig, functions: FunctionRegistry | None = None
) -> str:
    """Submits ``job`` (offline) and runs it to the end here; returns the run id."""
    run_id = submit_job(store, job, offline=True)
    dispatch(store, functions)
    return run_id

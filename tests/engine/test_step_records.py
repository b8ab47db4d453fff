"""Step and task records stay byte for byte what they were before the step loop was optimized.

Replays, resumes, the response cache and traces read these records, so the way a step fills
its record (fields merged from serialized parts, `Struct`s and `Value`s filled in place, usage
summed per task) must not change a byte. The digests below were computed by the field-by-field
implementation (commit cdbdcad) from the same jobs, with the times taken out.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

from llm_scheduler import ConfigFormat, ModelClient, ModelRegistry, RunContext, loads, run_job
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.step import run_step
from llm_scheduler.function_steps import FunctionRegistry
from llm_scheduler.v1 import config_pb2, run_pb2

_TIMES = ("started_at", "finished_at", "latency_seconds")


def _keyword(a: int, b: int = 2) -> dict[str, Any]:
    return {"sum": a + b, "list": [a, b, None, True, 1.5, "é"]}


async def _shout(text: str) -> str:
    return text.upper()


def _not_json(text: str) -> float:
    return float("nan")


def functions() -> FunctionRegistry:
    """The built-in functions and three of a user's."""
    registry = FunctionRegistry.with_builtins()
    for function, name in ((_keyword, "keyword"), (_shout, "shout"), (_not_json, "not_json")):
        registry.register(function, name)
    return registry


def _query(prompt: str, outputs: dict[str, Any], **config: Any) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": prompt, **config},
        "output_config": {"payload": outputs},
    }


def _call(name: str, request: Any, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": name, "request": request},
    }
    if outputs is not None:
        step["output_config"] = {"payload": outputs}
    return step


def _job(
    job_id: str, steps: list[dict[str, Any]], task: dict[str, Any] | None = None, **extra: Any
) -> config_pb2.JobConfig:
    data = {"job_id": job_id, "tasks": [{"task_id": "t", "steps": steps, **(task or {})}], **extra}
    return loads(json.dumps(data), config_pb2.JobConfig, ConfigFormat.JSON)


def jobs() -> dict[str, config_pb2.JobConfig]:
    """Jobs whose records cover each way a step fills its record, failures included."""
    inputs = {"topic": 'cats é "q"\n', "n": 3, "obj": {"k": [1, 2.5, None, True]}}
    mixed = [
        _query(
            "Tell %topic% %n% %obj%",
            {"t1": ""},
            system_prompt="Sys %topic%",
            parameters={"temperature": "0.2", "max_tokens": 5},
        ),
        _query("J %t1%", {"j": ""}, response_format={"type": "TYPE_JSON"}),
        _query(
            "S %j%",
            {"s": "", "keep": "%t1% / %response%", "n": ""},
            response_format={
                "type": "TYPE_JSON_SCHEMA",
                "json_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
            },
        ),
        _call("length", "%s%", {"len": ""}),
        _call("template", "pre %len% %topic%"),
        _call("keyword", {"a": "%len%", "b": 3}, {"res": ""}),
        _call("json_extract", {"data": "%res%", "path": "list.5"}, {"e": ""}),
        _call("join", {"items": ["%e%", "%len%", "%obj%"], "separator": ", "}, {"joined": ""}),
        _call("shout", "%joined%", {"up": ""}),
        {"input_config": {"payload": {"dd": {"x": [1]}}}, **_query("D %dd%", {"z": "%dd.x.0%"})},
        {"id": "sid", "name": "named", **_call("regex_extract", {"text": "%up%", "pattern": "É"})},
    ]
    return {
        "mixed": _job(
            "mixed",
            mixed,
            {"output_config": {"payload": {"final": "%response% / %up%"}}},
            input_config={"payload": inputs},
        ),
        "bad_arguments": _job("bad", [_call("keyword", {"c": 1}, {"x": ""})]),
        "not_json": _job("nan", [_query("x", {"y": ""}), _call("not_json", "%y%", {"x": ""})]),
        "missing": _job("missing", [_query("x", {"y": ""}), _query("a %nope% b", {"z": ""})]),
        "bad_output": _job("out", [_query("x", {"y": "%response.q%"})]),
    }


def normalized(message: Any) -> Any:
    """The message without its times (they differ per run), recursively, in place."""
    for field in message.DESCRIPTOR.fields:
        if field.name in _TIMES:
            message.ClearField(field.name)
        elif field.message_type is not None and field.message_type.name in (
            "StepRun",
            "TaskRun",
            "JobRun",
        ):
            if field.is_repeated:
                for item in getattr(message, field.name):
                    normalized(item)
            elif message.HasField(field.name):
                normalized(getattr(message, field.name))
    return message


def digest_of(message: Any) -> str:
    data = normalized(message).SerializeToString(deterministic=True)
    return hashlib.sha256(data).hexdigest()[:16]


def record_digests() -> dict[str, str]:
    """The digest of each job's record, of its replay's, and of one `run_step` record."""
    context = RunContext(
        models=ModelClient(ModelRegistry(), offline=True, credentials={}), functions=functions()
    )

    async def main() -> dict[str, str]:
        found: dict[str, str] = {}
        for name, job in jobs().items():
            run = await run_job(job, context, run_id=f"run-{name}")
            replay = RunContext(
                models=context.models, functions=context.functions, replay=ReplaySource(run)
            )
            replayed = await run_job(job, replay, run_id=f"replay-{name}")
            found[name] = digest_of(run)
            found[f"{name} replayed"] = digest_of(replayed)
        step = jobs()["mixed"].tasks[0].steps[0]
        result = await run_step(step, {"topic": "t", "n": 1, "obj": {}}, context, index=4)
        found["run_step"] = digest_of(result.record)
        return found

    return asyncio.run(main())


PINNED = {
    "mixed": "bff8c29eda38a768",
    "mixed replayed": "da2a318402234175",
    "bad_arguments": "75d6b4ce5e555f1a",
    "bad_arguments replayed": "dad65283092ee014",
    "not_json": "49b665d010e9a03e",
    "not_json replayed": "c17975fc3c4efbd3",
    "missing": "c11c214418a556c9",
    "missing replayed": "00a1f2e4e04aeee4",
    "bad_output": "392ae20dd376b89a",
    "bad_output replayed": "06c41a1a69a5efb1",
    "run_step": "495b8934ab9c7faf",
}


@pytest.fixture(scope="module")
def digests() -> dict[str, str]:
    return record_digests()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_records_are_byte_identical_to_the_field_by_field_ones(
    name: str, digests: dict[str, str]
) -> None:
    assert digests[name] == PINNED[name]


def test_the_pinned_jobs_cover_successes_and_failures() -> None:
    runs = {name: asyncio.run(_run(job)) for name, job in jobs().items()}
    assert runs["mixed"].status == run_pb2.RUN_STATUS_SUCCEEDED, runs["mixed"].error.message
    failed = [name for name, run in runs.items() if run.status == run_pb2.RUN_STATUS_FAILED]
    assert sorted(failed) == ["bad_arguments", "bad_output", "missing", "not_json"]


async def _run(job: config_pb2.JobConfig) -> run_pb2.JobRun:
    models = ModelClient(ModelRegistry(), offline=True, credentials={})
    return await run_job(job, RunContext(models=models, functions=functions()))

"""The in-process engine against the fake provider server, through the real SDKs over HTTP."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import Any, TypeVar

import pytest

from llm_scheduler import (
    ModelClient,
    ModelRegistry,
    RunContext,
    Validator,
    loads,
    run_job,
    run_step,
    run_task,
)
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict, to_struct
from llm_scheduler.errors import MissingApiKeyError
from llm_scheduler.function_steps import FunctionRegistry
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import (
    FAKE_CREDENTIALS,
    FAKE_MODEL_KEYS,
    REPO_ROOT,
    context_for,
    write_models_file,
)
from tests.conftest import run_closing as run

T = TypeVar("T")


def two_step_task(model_key: str) -> config_pb2.TaskConfig:
    text = json.dumps(
        {
            "task_id": "chain",
            "input_config": {"payload": {"topic": "owls"}},
            "steps": [
                {
                    "id": "first",
                    "model_query_config": {
                        "model_key": model_key,
                        "parameters": {"temperature": "0.2", "max_tokens": 50},
                        "system_prompt": "You are terse.",
                        "user_prompt": "Name a fact about %topic%.",
                    },
                    "output_config": {"payload": {"fact": ""}},
                },
                {
                    "id": "second",
                    "model_query_config": {
                        "model_key": model_key,
                        "user_prompt": "Rephrase: %fact%",
                    },
                    "output_config": {"payload": {"rephrased": ""}},
                },
            ],
        }
    )
    return loads(text, config_pb2.TaskConfig, ConfigFormat.JSON)


@pytest.mark.parametrize("model_key", FAKE_MODEL_KEYS)
def test_two_step_task_chains_output_through_each_sdk(
    model_key: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    task = two_step_task(model_key)
    Validator(fake_registry).check_tasks([task])
    context = context_for(fake_registry)

    task_run = run(context, run_task(task, {"topic": "owls"}, context))

    assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED, task_run.error.message
    assert fake_server.count() == 2
    provider = fake_registry.resolve(model_key).provider
    first, second = task_run.steps
    assert first.user_prompt == "Name a fact about owls."
    assert first.response_text == f"fake {provider} reply to: Name a fact about owls."
    assert second.user_prompt == f"Rephrase: {first.response_text}"
    outputs = struct_to_dict(task_run.outputs)
    assert outputs == {"fact": first.response_text, "rephrased": second.response_text}
    assert first.provider == provider
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.cost_usd > 0
    assert task_run.usage.input_tokens == first.usage.input_tokens + second.usage.input_tokens


def test_fan_out_runs_tasks_concurrently_and_join_sees_every_branch(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    branches = ["a", "b", "c", "d"]
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [_query("Start %idea%", {"idea_summary": ""})],
            "next_tasks": branches,
        }
    ]
    for name in branches:
        tasks.append(
            {
                "task_id": name,
                "steps": [_query(f"Branch {name}: %idea_summary%", {f"out_{name}": ""})],
                "next_task": "join",
            }
        )
    join_prompt = " | ".join(f"%out_{name}%" for name in branches)
    tasks.append({"task_id": "join", "steps": [_query(join_prompt, {"final": ""})]})
    job = loads(
        json.dumps({"job_id": "fan", "tasks": tasks, "input_config": {"payload": {"idea": "x"}}}),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    Validator(fake_registry).check_job(job)
    fake_server.latency_seconds = 0.4
    context = context_for(fake_registry)

    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 6
    # The four branches were in flight together (what concurrency means here; no wall-clock
    # bound, which a busy machine breaks).
    assert fake_server.max_in_flight == 4
    join_run = next(t for t in job_run.tasks if t.task_id == "join")
    prompt = join_run.steps[0].user_prompt
    for name in branches:
        branch = next(t for t in job_run.tasks if t.task_id == name)
        assert branch.steps[0].response_text in prompt
    assert list(struct_to_dict(job_run.outputs)) == ["join"]
    assert sorted(join_run.predecessors) == branches


def _query(prompt: str, outputs: dict[str, Any], model_key: str = "FAKE_OPENAI") -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": model_key, "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def test_join_combines_a_name_from_several_predecessors(fake_registry: ModelRegistry) -> None:
    job = loads(
        json.dumps(
            {
                "job_id": "combine",
                "tasks": [
                    {"task_id": "s", "steps": [_query("go", {"x": ""})], "next_tasks": ["l", "r"]},
                    {"task_id": "l", "steps": [_query("left", {"note": ""})], "next_task": "j"},
                    {"task_id": "r", "steps": [_query("right", {"note": ""})], "next_task": "j"},
                    {
                        "task_id": "j",
                        "input_config": {"payload": {"note": {"$combine": "by_task"}}},
                        "steps": [_query("%note.l% / %note.r%", {"both": ""})],
                    },
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    join = job_run.tasks[3]
    assert struct_to_dict(join.inputs)["note"] == {
        "l": "fake openai reply to: left",
        "r": "fake openai reply to: right",
    }
    assert join.steps[0].user_prompt == "fake openai reply to: left / fake openai reply to: right"


def test_retries_429_honouring_retry_after_then_succeeds(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(2, status=429, retry_after=0)
    task = two_step_task("FAKE_OPENAI")
    context = context_for(fake_registry)
    task_run = run(context, run_task(task, {}, context))
    assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert task_run.steps[0].attempts == 3
    assert task_run.steps[1].attempts == 1
    assert fake_server.count() == 4


def test_failure_after_retries_fails_the_job_and_skips_downstream(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = loads(
        json.dumps(
            {
                "job_id": "failing",
                "tasks": [
                    {"task_id": "a", "steps": [_query("a", {"x": ""})], "next_task": "b"},
                    {"task_id": "b", "steps": [_query("%x%", {"y": ""})], "next_task": "c"},
                    {"task_id": "c", "steps": [_query("%y%", {"z": ""})]},
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    context = context_for(fake_registry)
    fake_server.fail_next(10, status=500)
    job_run = run(context, run_job(job, context))
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    statuses = [t.status for t in job_run.tasks]
    assert statuses == [
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_STATUS_SKIPPED,
        run_pb2.RUN_STATUS_SKIPPED,
    ]
    step = job_run.tasks[0].steps[0]
    assert step.attempts == 3
    assert step.error.type == "ProviderError"
    assert step.error.retryable
    assert step.error.http_status == 500
    assert "task 'a' failed" in job_run.error.message
    assert fake_server.count() == 3


def test_client_error_is_not_retried(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(1, status=400)
    context = context_for(fake_registry)
    task_run = run(context, run_task(two_step_task("FAKE_GEMINI"), {}, context))
    assert task_run.status == run_pb2.RUN_STATUS_FAILED
    assert task_run.steps[0].attempts == 1
    assert not task_run.steps[0].error.retryable
    assert fake_server.count() == 1


def test_concurrency_limit_per_model_entry(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    registry = ModelRegistry.with_models_file(
        write_models_file(tmp_path / "m.json", fake_server, max_concurrency=2)
    )
    tasks = [
        loads(
            json.dumps({"task_id": f"t{i}", "steps": [_query(f"q{i}", {"o": ""})]}),
            config_pb2.TaskConfig,
            ConfigFormat.JSON,
        )
        for i in range(6)
    ]
    fake_server.latency_seconds = 0.1
    context = context_for(registry)

    async def all_tasks() -> list[run_pb2.TaskRun]:
        return list(await asyncio.gather(*(run_task(task, {}, context) for task in tasks)))

    runs = run(context, all_tasks())
    assert all(r.status == run_pb2.RUN_STATUS_SUCCEEDED for r in runs)
    assert fake_server.count() == 6
    assert fake_server.max_in_flight == 2


def test_function_step_and_json_response_fields(fake_registry: ModelRegistry) -> None:
    step = loads(
        json.dumps(
            {
                "id": "fn",
                "step_type": "STEP_TYPE_FUNCTION_CALL",
                "function_call_config": {
                    "function_name": "json_extract",
                    "request": {"data": "%doc%", "path": "items.1"},
                },
                "output_config": {"payload": {"second": "%response.name%", "raw": ""}},
            }
        ),
        config_pb2.StepConfig,
        ConfigFormat.JSON,
    )
    variables = {"doc": '{"items": [{"name": "a"}, {"name": "b"}]}'}
    Validator(fake_registry).check_step(step, variables)
    context = context_for(fake_registry)
    result = run(context, run_step(step, variables, context))
    assert result.ok, result.record.error.message
    assert result.outputs == {"second": "b", "raw": {"name": "b"}}
    assert result.record.function_name == "json_extract"


def test_missing_variable_at_run_time_is_recorded(fake_registry: ModelRegistry) -> None:
    task = two_step_task("FAKE_OPENAI")
    task.input_config.Clear()
    context = context_for(fake_registry)
    task_run = run(context, run_task(task, {}, context))
    assert task_run.status == run_pb2.RUN_STATUS_FAILED
    assert task_run.steps[0].error.type == "InterpolationError"
    assert "topic" in task_run.steps[0].error.message


def test_missing_api_key_names_the_variable_and_offline(fake_registry: ModelRegistry) -> None:
    client = ModelClient(fake_registry, offline=False, credentials={})
    with pytest.raises(MissingApiKeyError) as caught:
        client.check_credentials(["FAKE_ANTHROPIC", "GEMINI_FLASH"])
    message = str(caught.value)
    assert "ANTHROPIC_API_KEY" in message and "--offline" in message


def test_offline_mode_never_calls_the_network(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    client = ModelClient(fake_registry, offline=True, credentials={})
    client.check_credentials(FAKE_MODEL_KEYS)  # offline needs no keys
    context = RunContext(models=client)
    task_run = run(context, run_task(two_step_task("FAKE_OPENAI"), {}, context))
    assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert fake_server.count() == 0
    for step in task_run.steps:
        assert step.provider == "offline"
        assert step.response_text.startswith("[offline FAKE_OPENAI")


def test_seed_sample_step_runs_offline() -> None:
    from llm_scheduler.config import formats

    step = formats.load(REPO_ROOT / "examples" / "sample_step_config.json", config_pb2.StepConfig)
    Validator().check_step(step)
    context = RunContext(models=ModelClient(offline=True))
    result = run(context, run_step(step, {}, context))
    assert result.ok
    assert result.record.user_prompt == "Tell me a joke!"  # %user_prompt% from input_config
    assert result.record.parameters.fields["temperature"].number_value == 0.7
    # The seed's output rule: a key that is also an input passes through.
    assert result.outputs == {"user_prompt": "Tell me a joke!"}


def test_api_keys_never_reach_the_run_record(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(1, status=401)
    context = context_for(fake_registry)
    failed = run(context, run_task(two_step_task("FAKE_ANTHROPIC"), {}, context))
    context = context_for(fake_registry)
    succeeded = run(context, run_task(two_step_task("FAKE_OPENAI"), {}, context))
    for record in (failed, succeeded):
        text = str(record)
        for key in FAKE_CREDENTIALS.values():
            assert key not in text
    assert failed.status == run_pb2.RUN_STATUS_FAILED


def test_keyless_entry_never_sends_the_providers_real_key(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "key": "LOCAL",
                        "provider": "openai",
                        "model": "local-model",
                        "base_url": fake_server.openai_base_url,
                        "no_api_key": True,
                    }
                ]
            }
        )
    )
    registry = ModelRegistry.with_models_file(path)
    context = context_for(registry)  # OPENAI_API_KEY is among the credentials
    task_run = run(context, run_task(two_step_task("LOCAL"), {}, context))
    assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    for request in fake_server.requests:
        assert FAKE_CREDENTIALS["OPENAI_API_KEY"] not in str(request.headers)


def test_missing_sdk_is_reported_before_any_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_scheduler.errors import MissingDependencyError
    from llm_scheduler.models import providers

    monkeypatch.setitem(providers._SDKS, "openai", ("no_such_sdk_module", "openai", "openai"))
    client = ModelClient(offline=False, credentials=FAKE_CREDENTIALS)
    with pytest.raises(MissingDependencyError, match=r"pip install 'llm-scheduler\[openai\]'"):
        client.check_credentials(["GPT_4O_MINI"])


def test_a_wide_job_keeps_at_most_max_concurrency_tasks_alive_and_finishes_all() -> None:
    items = [f"w{i:03d}" for i in range(40)]
    job = loads(
        json.dumps(
            {
                "job_id": "wide",
                "tasks": [
                    {
                        "task_id": "start",
                        "steps": [
                            {"model_query_config": {"model_key": "OFFLINE", "user_prompt": "go"}}
                        ],
                        "next_tasks": items,
                    },
                    *(
                        {
                            "task_id": item,
                            "steps": [
                                {
                                    "model_query_config": {
                                        "model_key": "OFFLINE",
                                        "user_prompt": item,
                                    }
                                }
                            ],
                        }
                        for item in items
                    ),
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    started: list[str] = []
    alive = 0
    most_alive = 0

    def on_event(event: Any) -> None:
        nonlocal alive, most_alive
        if event.kind.value == "task_started":
            started.append(event.task_id)
            alive += 1
            most_alive = max(most_alive, alive)
        elif event.kind.value == "task_finished":
            alive -= 1

    context = RunContext(models=ModelClient(offline=True), max_concurrency=3, on_event=on_event)
    record = asyncio.run(run_job(job, context))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert started == ["start", *items]  # in the job's order
    assert most_alive <= 3


def test_an_unexpected_error_in_a_task_ends_the_run_at_once() -> None:
    # A failing step is recorded; an exception escaping a task (here from the progress
    # listener) is a bug: run_job raises it without waiting for the other tasks.
    job = loads(
        json.dumps(
            {
                "job_id": "j",
                "tasks": [
                    {
                        "task_id": "start",
                        "steps": [
                            {"model_query_config": {"model_key": "OFFLINE", "user_prompt": "a"}}
                        ],
                        "next_tasks": ["slow", "broken"],
                    },
                    {
                        "task_id": "slow",
                        "steps": [
                            {
                                "step_type": "STEP_TYPE_FUNCTION_CALL",
                                "function_call_config": {"function_name": "sleep_long"},
                            }
                        ],
                    },
                    {
                        "task_id": "broken",
                        "steps": [
                            {"model_query_config": {"model_key": "OFFLINE", "user_prompt": "b"}}
                        ],
                    },
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )

    def on_event(event: Any) -> None:
        if event.kind.value == "task_started" and event.task_id == "broken":
            raise RuntimeError("listener bug")

    async def sleep_long(_: Any) -> str:
        await asyncio.sleep(30)
        return "late"

    functions = FunctionRegistry()
    functions.register(sleep_long)
    context = RunContext(models=ModelClient(offline=True), functions=functions, on_event=on_event)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="listener bug"):
        asyncio.run(run_job(job, context))
    assert time.monotonic() - started < 10


def _gated_wide_job(width: int) -> config_pb2.JobConfig:
    """``start`` -> ``width`` tasks, each one awaiting step (function ``gate``), -> ``end``."""
    items = [f"w{i:03d}" for i in range(width)]
    gate = {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "gate", "request": {"name": "%name%"}},
        "output_config": {"payload": {"part": ""}},
    }
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "go"}}],
            "next_tasks": items,
        },
        *(
            {
                "task_id": item,
                "input_config": {"payload": {"name": item}},
                "steps": [gate],
                "next_task": "end",
            }
            for item in items
        ),
        {
            "task_id": "end",
            "input_config": {"payload": {"part": {"$combine": "list"}}},
            "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%part%"}}],
        },
    ]
    return loads(
        json.dumps({"job_id": "gated", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )


def test_tasks_that_wait_run_max_concurrency_at_a_time_and_each_exactly_once() -> None:
    # Every task suspends in its step until released: the job keeps exactly max_concurrency
    # of them waiting at once (neither more, nor fewer while more are ready), runs each once
    # and the join still sees every branch in the job's order.
    in_flight: set[str] = set()
    most = 0
    calls: list[str] = []

    async def gate(name: str) -> str:
        nonlocal most
        in_flight.add(name)
        most = max(most, len(in_flight))
        calls.append(name)
        await asyncio.sleep(0.001)
        assert len(in_flight) == 4 or len(calls) > 40 - 4  # full while enough are ready
        in_flight.discard(name)
        return name.upper()

    functions = FunctionRegistry.with_builtins()
    functions.register(gate, "gate")
    job = _gated_wide_job(40)
    context = RunContext(models=ModelClient(offline=True), functions=functions, max_concurrency=4)
    record = asyncio.run(run_job(job, context))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert most == 4
    assert sorted(calls) == [f"w{i:03d}" for i in range(40)]
    end = next(task for task in record.tasks if task.task_id == "end")
    assert struct_to_dict(end.inputs)["part"] == [f"W{i:03d}" for i in range(40)]


def test_a_task_raising_while_others_wait_ends_the_run_and_cancels_them() -> None:
    cancelled: list[str] = []

    async def gate(name: str) -> str:
        if name == "w002":  # among the first 4 to start
            raise ValueError("a failed step")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    functions = FunctionRegistry.with_builtins()
    functions.register(gate, "gate")
    job = _gated_wide_job(10)

    # A function raising is a failed step (recorded); a listener raising is a bug.
    def on_event(event: Any) -> None:
        if event.kind.value == "step_failed":
            raise RuntimeError("the listener broke")

    context = RunContext(
        models=ModelClient(offline=True), functions=functions, max_concurrency=4, on_event=on_event
    )
    with pytest.raises(RuntimeError, match="the listener broke"):
        asyncio.run(run_job(job, context))
    # Those asleep were cancelled, not left to sleep their 30 s (w003 may not have started).
    assert {"w000", "w001"} <= set(cancelled) <= {"w000", "w001", "w003"}


def test_the_jobs_outputs_are_its_sinks_outputs_and_shared_outputs_reach_each_reader() -> None:
    # `run_job` fills the job's outputs one sink at a time and drops a task's converted outputs
    # once its last successor read them: the record is what converting them all at once gave.
    def data(name: str) -> dict[str, Any]:
        return {"name": name, "n": 3, "x": 0.5, "ok": True, "none": None, "list": [1, "a", {}]}

    functions = FunctionRegistry.with_builtins()
    functions.register(data, "data")
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [
                {
                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                    "function_call_config": {"function_name": "data", "request": {"name": "s"}},
                    "output_config": {"payload": {"value": ""}},
                }
            ],
            "next_tasks": ["left", "right"],
        },
        *(
            {
                "task_id": side,
                "steps": [
                    {
                        "step_type": "STEP_TYPE_FUNCTION_CALL",
                        "function_call_config": {
                            "function_name": "data",
                            "request": {"name": f"{side} %value.name%"},
                        },
                        "output_config": {"payload": {side: ""}},
                    }
                ],
            }
            for side in ("left", "right")
        ),
    ]
    job = loads(
        json.dumps({"job_id": "sinks", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )
    registry = ModelRegistry()
    Validator(registry, functions=functions).check_job(job)
    context = RunContext(models=ModelClient(registry, offline=True), functions=functions)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    by_id = {task.task_id: task for task in job_run.tasks}
    assert struct_to_dict(job_run.outputs) == {
        "left": {"left": data("left s")},
        "right": {"right": data("right s")},
    }
    expected = to_struct({t: struct_to_dict(by_id[t].outputs) for t in ("left", "right")})
    assert job_run.outputs.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert job_run.HasField("outputs")

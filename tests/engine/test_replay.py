"""Replays: unchanged steps are reused, edits re-run exactly what they change (counted)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from llm_scheduler import ModelClient, ModelRegistry, RetryPolicy, RunContext, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict, to_struct
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS

CHAIN = 25  # steps per branch: 2 branches + a join step = 51 steps


def two_chain_job() -> config_pb2.JobConfig:
    """Two independent chains of CHAIN steps (each step uses the previous output), joined."""

    def chain(name: str) -> list[dict[str, Any]]:
        steps = []
        for i in range(CHAIN):
            source = "%seed%" if i == 0 else f"%{name}{i - 1}%"
            steps.append(
                {
                    "id": f"{name}{i}",
                    "model_query_config": {
                        "model_key": "FAKE_OPENAI",
                        "user_prompt": f"{name} step {i}: {source}",
                    },
                    "output_config": {"payload": {f"{name}{i}": "%response.0%"}},
                }
            )
        return steps

    tasks = [
        {"task_id": "start", "steps": [_fn("seed", "%topic%")], "next_tasks": ["a", "b"]},
        {
            "task_id": "a",
            "steps": chain("a"),
            "output_config": {"payload": {"a_last": f"%a{CHAIN - 1}%"}},
            "next_task": "join",
        },
        {
            "task_id": "b",
            "steps": chain("b"),
            "output_config": {"payload": {"b_last": f"%b{CHAIN - 1}%"}},
            "next_task": "join",
        },
        {
            "task_id": "join",
            "steps": [
                {
                    "id": "join",
                    "model_query_config": {
                        "model_key": "FAKE_OPENAI",
                        "user_prompt": "join %a_last% | %b_last%",
                    },
                }
            ],
        },
    ]
    job = {"job_id": "chains", "tasks": tasks, "input_config": {"payload": {"topic": "t"}}}
    return loads(json.dumps(job), config_pb2.JobConfig, ConfigFormat.JSON)


def _fn(output: str, text: str) -> dict[str, Any]:
    return {
        "id": output,
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "template", "request": {"text": text}},
        "output_config": {"payload": {output: "%response%"}},
    }


def short_responses(provider: str, body: dict[str, Any]) -> str:
    # Short, and different for any change in the request (prompt or parameters), like a model
    # whose answer could change: a JSON list whose first item is a hash of the request.
    request = json.dumps(body, sort_keys=True)
    return json.dumps([f"r{hashlib.sha256(request.encode()).hexdigest()[:10]}"])


def restart(server: FakeProviderServer) -> None:
    """Forgets the requests seen so far (reset also clears the responder: set it again)."""
    server.reset()
    server.responder = short_responses


def run(
    job: config_pb2.JobConfig,
    registry: ModelRegistry,
    replay: run_pb2.JobRun | None = None,
    inputs: dict[str, Any] | None = None,
) -> run_pb2.JobRun:
    client = ModelClient(
        registry,
        offline=False,
        credentials=FAKE_CREDENTIALS,
        retry_policy=RetryPolicy(max_attempts=2, initial_backoff=0.001),
    )
    context = RunContext(models=client, replay=ReplaySource(replay) if replay else None)

    async def body() -> run_pb2.JobRun:
        try:
            return await run_job(job, context, inputs=inputs)
        finally:
            await client.aclose()

    result = asyncio.run(body())
    assert result.status == run_pb2.RUN_STATUS_SUCCEEDED, result.error.message
    return result


def step_of(job_run: run_pb2.JobRun, task_id: str, step_id: str) -> run_pb2.StepRun:
    task = next(t for t in job_run.tasks if t.task_id == task_id)
    return next(s for s in task.steps if s.step_id == step_id)


def reran(job_run: run_pb2.JobRun) -> list[str]:
    return [
        s.step_id
        for t in job_run.tasks
        for s in t.steps
        if not s.reused_from_run_id and s.step_type == config_pb2.STEP_TYPE_MODEL_QUERY
    ]


def through_json(job_run: run_pb2.JobRun) -> run_pb2.JobRun:
    """Exports and re-reads the record, as a person editing a trace file would."""
    from google.protobuf import json_format

    copy = run_pb2.JobRun()
    json_format.Parse(json_format.MessageToJson(job_run), copy)
    return copy


def test_replaying_an_unchanged_job_makes_no_calls(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    assert fake_server.count() == 2 * CHAIN + 1
    restart(fake_server)

    replayed = run(two_chain_job(), fake_registry, replay=through_json(original))

    assert fake_server.count() == 0
    assert struct_to_dict(replayed.outputs) == struct_to_dict(original.outputs)
    assert replayed.run_id != original.run_id
    assert reran(replayed) == []
    assert all(s.attempts == 0 for t in replayed.tasks for s in t.steps if s.model_key)


def test_editing_a_step_output_reruns_exactly_its_downstream_steps(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = through_json(run(two_chain_job(), fake_registry))
    restart(fake_server)
    k = 10
    edited = step_of(original, "a", f"a{k}")
    edited.outputs.CopyFrom(to_struct({f"a{k}": "EDITED"}))

    replayed = run(two_chain_job(), fake_registry, replay=original)

    downstream = [f"a{i}" for i in range(k + 1, CHAIN)] + ["join"]
    assert reran(replayed) == downstream
    assert fake_server.count() == len(downstream)
    assert "EDITED" in step_of(replayed, "a", f"a{k + 1}").user_prompt
    assert struct_to_dict(step_of(replayed, "a", f"a{k}").outputs) == {f"a{k}": "EDITED"}


def test_editing_a_response_recomputes_outputs_and_reruns_downstream(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = through_json(run(two_chain_job(), fake_registry))
    restart(fake_server)
    step_of(original, "b", f"b{CHAIN - 2}").response_text = json.dumps(["NEW"])

    replayed = run(two_chain_job(), fake_registry, replay=original)

    assert reran(replayed) == [f"b{CHAIN - 1}", "join"]
    assert struct_to_dict(step_of(replayed, "b", f"b{CHAIN - 2}").outputs) == {
        f"b{CHAIN - 2}": "NEW"
    }


def test_editing_a_prompt_reruns_that_step_and_its_downstream_only(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    restart(fake_server)
    job = two_chain_job()
    k = 20
    task_b = next(t for t in job.tasks if t.task_id == "b")
    task_b.steps[k].model_query_config.user_prompt = f"b step {k} (rephrased): %b{k - 1}%"

    replayed = run(job, fake_registry, replay=original)

    expected = [f"b{i}" for i in range(k, CHAIN)] + ["join"]
    assert reran(replayed) == expected
    assert fake_server.count() == len(expected)


def test_editing_parameters_or_job_input_reruns_what_they_change(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    restart(fake_server)
    job = two_chain_job()
    task_a = next(t for t in job.tasks if t.task_id == "a")
    task_a.steps[CHAIN - 1].model_query_config.parameters.CopyFrom(to_struct({"temperature": 0}))
    replayed = run(job, fake_registry, replay=original)
    assert reran(replayed) == [f"a{CHAIN - 1}", "join"]

    restart(fake_server)
    everything = run(two_chain_job(), fake_registry, replay=original, inputs={"topic": "new"})
    assert len(reran(everything)) == 2 * CHAIN + 1  # the seed feeds every step


def test_editing_task_inputs_in_the_trace_reruns_that_task(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = through_json(run(two_chain_job(), fake_registry))
    restart(fake_server)
    join = next(t for t in original.tasks if t.task_id == "join")
    inputs = struct_to_dict(join.inputs)
    inputs["a_last"] = "hand-written"
    join.inputs.CopyFrom(to_struct(inputs))

    replayed = run(two_chain_job(), fake_registry, replay=original)

    assert reran(replayed) == ["join"]
    assert step_of(replayed, "join", "join").user_prompt.startswith("join hand-written | ")


def test_adding_and_removing_steps_reuses_the_rest(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    restart(fake_server)
    job = two_chain_job()
    join = next(t for t in job.tasks if t.task_id == "join")
    extra = join.steps.add()
    extra.CopyFrom(join.steps[0])
    extra.id = "summary"
    extra.model_query_config.user_prompt = "summarise: %response%"
    task_a = next(t for t in job.tasks if t.task_id == "a")
    del task_a.steps[CHAIN - 1]  # the last step of chain a goes away
    task_a.output_config.CopyFrom(
        config_pb2.DataConfig(payload=to_struct({"a_last": f"%a{CHAIN - 2}%"}))
    )

    replayed = run(job, fake_registry, replay=original)

    assert reran(replayed) == ["join", "summary"]
    assert fake_server.count() == 2

"""Embedding steps in the engine: through the SDKs over HTTP, offline, cached and replayed."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import pytest
from google.protobuf import json_format

from llm_scheduler import ModelClient, ModelRegistry, RunContext, Validator, loads, run_job
from llm_scheduler.cache import StoreResponseCache
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.fingerprint import (
    embedding_fingerprint,
    embedding_request_key,
    query_fingerprint,
    request_key,
)
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.engine.what_if import apply_edits, edits_from_json
from llm_scheduler.errors import UserError
from llm_scheduler.models.base import EmbeddingRequest, ModelRequest
from llm_scheduler.models.offline import offline_vector
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS, FAKE_EMBEDDING_KEYS, FAST_RETRIES


def embed_job(
    embedding_key: str, dimensions: int = 0, outputs: bool = True
) -> config_pb2.JobConfig:
    """A query's answer embedded, then a function step reading the vector's first number."""
    embed: dict[str, Any] = {
        "id": "embed",
        "step_type": "STEP_TYPE_EMBEDDING",
        "embedding_config": {"model_key": embedding_key, "input": "Summary: %summary%"},
    }
    if dimensions:
        embed["embedding_config"]["dimensions"] = dimensions
    if outputs:
        embed["output_config"] = {"payload": {"vector": "%response%"}}
    steps = [
        {
            "id": "summarize",
            "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": "Sum up %note%"},
            "output_config": {"payload": {"summary": ""}},
        },
        embed,
    ]
    if outputs:
        steps.append(
            {
                "id": "first",
                "step_type": "STEP_TYPE_FUNCTION_CALL",
                "function_call_config": {
                    "function_name": "json_extract",
                    "request": {"data": "%vector%", "path": "0"},
                },
                "output_config": {"payload": {"first": "%response%"}},
            }
        )
    job = {
        "job_id": "embed",
        "tasks": [{"task_id": "note", "steps": steps}],
        "input_config": {"payload": {"note": "the tides follow the moon"}},
    }
    return loads(json.dumps(job), config_pb2.JobConfig, ConfigFormat.JSON)


def context(registry: ModelRegistry, **kwargs: Any) -> RunContext:
    client = ModelClient(
        registry,
        offline=kwargs.pop("offline", False),
        credentials=FAKE_CREDENTIALS,
        retry_policy=FAST_RETRIES,
    )
    return RunContext(models=client, **kwargs)


def run(
    job: config_pb2.JobConfig,
    registry: ModelRegistry,
    *,
    inputs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> run_pb2.JobRun:
    run_context = context(registry, **kwargs)

    async def body() -> run_pb2.JobRun:
        try:
            return await run_job(job, run_context, inputs=inputs)
        finally:
            await run_context.models.aclose()

    return asyncio.run(body())


def step(job_run: run_pb2.JobRun, step_id: str) -> run_pb2.StepRun:
    return next(s for t in job_run.tasks for s in t.steps if s.step_id == step_id)


def embedding_requests(server: FakeProviderServer) -> list[str]:
    return [r.path for r in server.requests if "mbed" in r.path]


@pytest.mark.parametrize("key", FAKE_EMBEDDING_KEYS)
def test_embedding_step_through_each_sdk_records_vector_usage_and_cost(
    key: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job(key, dimensions=6)
    Validator(fake_registry).check_job(job)

    job_run = run(job, fake_registry)

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    summary = step(job_run, "summarize").response_text
    record = step(job_run, "embed")
    spec = fake_registry.resolve(key)
    assert record.step_type == config_pb2.STEP_TYPE_EMBEDDING
    assert record.model_key == key
    assert (record.provider, record.provider_model) == (spec.provider, spec.model)
    assert record.embedding_input == f"Summary: {summary}"
    assert list(record.embedding) == list(offline_vector(spec.model, record.embedding_input, 6))
    assert struct_to_dict(record.parameters) == {"dimensions": 6}
    assert record.usage.input_tokens == len(record.embedding_input.split())
    assert record.usage.output_tokens == 0
    assert record.cost_usd == pytest.approx(record.usage.input_tokens * 1.0 / 1e6)
    assert record.attempts == 1
    assert record.response_text == ""
    outputs = struct_to_dict(record.outputs)
    assert outputs == {"vector": list(record.embedding)}
    assert step(job_run, "first").outputs["first"] == record.embedding[0]
    assert job_run.usage.input_tokens == sum(
        s.usage.input_tokens for t in job_run.tasks for s in t.steps
    )
    assert job_run.cost_usd == pytest.approx(sum(s.cost_usd for s in job_run.tasks[0].steps))
    assert len(embedding_requests(fake_server)) == 1


def test_an_embedding_step_outputs_response_by_default() -> None:
    job = embed_job("OFFLINE_EMBEDDING", outputs=False)
    job.tasks[0].steps[0].model_query_config.model_key = "OFFLINE"
    registry = ModelRegistry()
    Validator(registry).check_job(job)

    first = run(job, registry)
    again = run(job, registry)

    record = step(first, "embed")
    assert struct_to_dict(record.outputs) == {"response": list(record.embedding)}
    assert len(record.embedding) == 8
    assert list(record.embedding) == list(step(again, "embed").embedding)
    assert record.fingerprint == step(again, "embed").fingerprint
    assert struct_to_dict(first.outputs)["note"]["response"] == list(record.embedding)


def test_offline_mode_answers_embedding_keys_with_offline_vectors(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_OPENAI_EMBEDDING", dimensions=3)

    job_run = run(job, fake_registry, offline=True)

    record = step(job_run, "embed")
    assert record.provider == "offline"
    expected = offline_vector("FAKE_OPENAI_EMBEDDING", record.embedding_input, 3)
    assert list(record.embedding) == list(expected)
    assert fake_server.count() == 0


def test_an_input_that_renders_empty_fails_before_any_call(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_OPENAI_EMBEDDING")
    job.tasks[0].steps[1].embedding_config.input = "%note%"

    job_run = run(job, fake_registry, inputs={"note": "  "})

    record = step(job_run, "embed")
    assert record.status == run_pb2.RUN_STATUS_FAILED
    assert record.error.type == "RunError"
    assert "renders to an empty text" in record.error.message
    assert embedding_requests(fake_server) == []


def test_a_provider_failure_is_retried_and_counted(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_GEMINI_EMBEDDING")
    fake_server.fail_next(1, status=500, provider="google")

    job_run = run(job, fake_registry)

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert step(job_run, "embed").attempts == 2


def test_a_repeated_embedding_is_answered_from_the_cache(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_OPENAI_EMBEDDING", dimensions=4)
    with open_store(f"sqlite:///{tmp_path / 'cache.db'}") as store:
        cache = StoreResponseCache(store)
        first = run(
            job, fake_registry, cache=cache, default_cache_policy=config_pb2.CACHE_POLICY_USE
        )
        calls = fake_server.count()
        second = run(
            job, fake_registry, cache=cache, default_cache_policy=config_pb2.CACHE_POLICY_USE
        )

    assert calls == 2
    assert fake_server.count() == 2  # neither the query nor the embedding called again
    hit = step(second, "embed")
    assert hit.cache_hit
    assert list(hit.embedding) == list(step(first, "embed").embedding)
    assert hit.usage.input_tokens == step(first, "embed").usage.input_tokens
    assert (hit.attempts, hit.cost_usd) == (0, 0)
    assert struct_to_dict(hit.outputs) == struct_to_dict(step(first, "embed").outputs)


def test_replay_reuses_an_unchanged_embedding_and_reruns_an_edited_input(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_GEMINI_EMBEDDING")
    recorded = run(job, fake_registry)
    fake_server.reset()

    unchanged = run(job, fake_registry, replay=ReplaySource(recorded))

    assert fake_server.count() == 0
    reused = step(unchanged, "embed")
    assert reused.reused_from_run_id == recorded.run_id
    assert list(reused.embedding) == list(step(recorded, "embed").embedding)
    assert reused.attempts == 0
    assert struct_to_dict(unchanged.outputs) == struct_to_dict(recorded.outputs)

    edited = run(
        job, fake_registry, replay=ReplaySource(recorded), inputs={"note": "the sun, not tides"}
    )

    # The note changes the summary's prompt, so the summary and the embedding run again.
    assert len(embedding_requests(fake_server)) == 1
    assert fake_server.count() == 2
    rerun = step(edited, "embed")
    assert not rerun.reused_from_run_id
    assert rerun.embedding_input != step(recorded, "embed").embedding_input


def test_an_edited_embedding_in_a_trace_is_the_replayed_response(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = embed_job("FAKE_OPENAI_EMBEDDING", dimensions=2)
    recorded = run(job, fake_registry)
    trace = run_pb2.JobRun()
    json_format.Parse(json_format.MessageToJson(recorded), trace)
    trace.tasks[0].steps[1].embedding[:] = [0.25, -0.5]
    fake_server.reset()

    replayed = run(job, fake_registry, replay=ReplaySource(trace))

    assert fake_server.count() == 0
    assert list(step(replayed, "embed").embedding) == [0.25, -0.5]
    assert struct_to_dict(step(replayed, "embed").outputs) == {"vector": [0.25, -0.5]}
    assert step(replayed, "first").outputs["first"] == 0.25


def test_what_if_edits_and_the_replay_plan_of_an_embedding(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    recorded = run(embed_job("FAKE_OPENAI_EMBEDDING"), fake_registry)
    plan_context = context(fake_registry)

    unchanged = plan_replay(recorded.config, recorded, plan_context)
    edit = [{"kind": "step_response", "task_id": "note", "step_index": 1, "value": [1, 0.5]}]
    edited = apply_edits(recorded, edits_from_json(edit))
    with_vector = plan_replay(edited.config, edited, plan_context)
    changed_job = embed_job("FAKE_OPENAI_EMBEDDING", dimensions=3)
    other = plan_replay(changed_job, recorded, plan_context)

    assert [(s.step_type, s.action) for s in unchanged.steps] == [
        ("model", "reuse"),
        ("embedding", "reuse"),
        ("function", "reuse"),
    ]
    assert unchanged.steps[1].model_key == "FAKE_OPENAI_EMBEDDING"
    assert list(edited.tasks[0].steps[1].embedding) == [1.0, 0.5]
    assert with_vector.steps[1].reason == "recorded result reused, with the edited response"
    assert with_vector.steps[2].action == "run"  # it reads the edited vector
    assert other.steps[1].action == "run"
    assert other.steps[1].reason == "dimensions changed"
    assert other.model_calls == 1
    assert other.steps[1].estimated_input_tokens == step(recorded, "embed").usage.input_tokens
    for bad in ("text", [], ["a"], [True]):
        wrong = [{"kind": "step_response", "task_id": "note", "step_index": 1, "value": bad}]
        with pytest.raises(UserError, match="a list of numbers"):
            apply_edits(recorded, edits_from_json(wrong))
    prompt = [
        {"kind": "step_prompt", "task_id": "note", "step_index": 1, "value": {"user_prompt": "x"}}
    ]
    with pytest.raises(UserError, match="an embedding step has no prompt"):
        apply_edits(recorded, edits_from_json(prompt))


def test_the_replay_plan_says_why_a_function_step_runs_again(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    recorded = run(embed_job("FAKE_OPENAI_EMBEDDING"), fake_registry)
    job = embed_job("FAKE_OPENAI_EMBEDDING")
    job.tasks[0].steps[2].function_call_config.request.struct_value["path"] = "1"

    plan = plan_replay(job, recorded, context(fake_registry))

    assert [step.action for step in plan.steps] == ["reuse", "reuse", "run"]
    assert plan.steps[2].reason == "function request changed"


def test_embedding_fingerprints_and_cache_keys_are_their_own() -> None:
    request = EmbeddingRequest(model="m", input="hello", dimensions=0)
    fingerprint = embedding_fingerprint("KEY", "openai", request)

    assert fingerprint == embedding_fingerprint("KEY", "openai", request)
    for changed in (
        embedding_fingerprint("OTHER", "openai", request),
        embedding_fingerprint("KEY", "google", request),
        embedding_fingerprint("KEY", "openai", EmbeddingRequest("m2", "hello")),
        embedding_fingerprint("KEY", "openai", EmbeddingRequest("m", "hello!")),
        embedding_fingerprint("KEY", "openai", EmbeddingRequest("m", "hello", 8)),
    ):
        assert changed != fingerprint
    query = ModelRequest(model="m", system_prompt="", user_prompt="hello")
    assert fingerprint != query_fingerprint("KEY", "openai", query)
    assert embedding_request_key("openai", request) != request_key("openai", query)
    # The model key is not part of the cache key: keys naming the same model share entries.
    assert embedding_request_key("openai", request) == embedding_request_key(
        "openai", EmbeddingRequest("m", "hello")
    )

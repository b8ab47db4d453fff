"""Strategies in process (`TaskConfig.strategy`): one task run per named variation."""

from __future__ import annotations

import json
from typing import Any

from llm_scheduler import ModelRegistry, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.strategies import variation_run_id, variations
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for
from tests.conftest import run_closing as run

MODELS = ["FAKE_OPENAI", "FAKE_GEMINI", "FAKE_ANTHROPIC"]
PROMPTS = {"concise": "Say it briefly", "formal": "Say it formally"}


def strategy_job(
    models: list[str] = MODELS,
    *,
    in_series: bool = False,
    only: list[str] | None = None,
    steps: int = 1,
) -> config_pb2.JobConfig:
    """rewrite (a strategy of models x prompts, ``steps`` model steps each) -> compare."""
    rewrite_steps: list[dict[str, Any]] = [
        {
            "model_query_config": {"model_key": models[0], "user_prompt": "%prompt%: %text%"},
            "output_config": {"payload": {"draft": "%response%"}},
        }
    ]
    rewrite_steps += [
        {
            "model_query_config": {
                "model_key": models[0],
                "user_prompt": f"Polish {i}: %draft%",
            },
            "output_config": {"payload": {"draft": "%response%"}},
        }
        for i in range(1, steps)
    ]
    strategy: dict[str, Any] = {
        "axes": [
            {"name": "model", "variable": "model_key", "values": [{"name": m} for m in models]},
            {
                "name": "prompt",
                "variable": "prompt",
                "values": [{"name": name, "value": text} for name, text in PROMPTS.items()],
            },
        ],
        "in_series": in_series,
    }
    if only is not None:
        strategy["only"] = only
    config = {
        "job_id": "strategy",
        "input_config": {"payload": {"text": "The cat sat on the mat."}},
        "tasks": [
            {
                "task_id": "rewrite",
                "next_task": "compare",
                "strategy": strategy,
                "steps": rewrite_steps,
                "output_config": {"payload": {"draft": "%draft%"}},
            },
            {
                "task_id": "compare",
                "steps": [
                    {
                        "step_type": 1,
                        "function_call_config": {
                            "function_name": "template",
                            "request": "All: %draft%",
                        },
                        "output_config": {"payload": {"all": "%response%"}},
                    }
                ],
            },
        ],
    }
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def names(models: list[str] = MODELS) -> list[str]:
    return [f"rewrite[model={m},prompt={p}]" for m in models for p in PROMPTS]


def _task(job_run: run_pb2.JobRun, task_id: str) -> run_pb2.TaskRun:
    return next(t for t in job_run.tasks if t.task_id == task_id)


def test_variations_are_the_product_named_by_their_values() -> None:
    job = strategy_job()
    found = variations(job.tasks[0])
    assert [v.name for v in found] == names()
    assert [v.index for v in found] == list(range(6))
    assert found[1].bindings == {"model_key": "FAKE_OPENAI", "prompt": PROMPTS["formal"]}
    assert found[0].values == (("model", "FAKE_OPENAI"), ("prompt", "concise"))
    assert found[0].run_id.startswith("rewrite~v-model_FAKE_OPENAI_prompt_concise-")
    assert len({v.run_id for v in found}) == 6


def test_a_run_id_is_store_safe_and_apart_for_names_that_slug_alike() -> None:
    first = variation_run_id("t", "t[a=x/y]")
    second = variation_run_id("t", "t[a=x.y]")
    assert "/" not in first and first != second
    long = variation_run_id("t", "t[a=" + "x" * 500 + "]")
    assert len(long) <= len("t~v-") + 60 + 9


def test_only_keeps_the_listed_variations_in_product_order() -> None:
    wanted = [names()[4], names()[1]]
    found = variations(strategy_job(only=wanted).tasks[0])
    assert [v.name for v in found] == [names()[1], names()[4]]
    assert [v.index for v in found] == [0, 1]


def test_a_strategy_runs_every_variation_and_the_downstream_task_sees_them_keyed(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = lambda provider, body: f"{provider}: {json.dumps(body)[-60:]}"
    job = strategy_job(steps=2)
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 6 * 2
    rewrite = _task(job_run, "rewrite")
    assert rewrite.items_total == 6
    assert [item.variation for item in rewrite.items] == names()
    assert [item.item_index for item in rewrite.items] == list(range(6))
    assert [item.task_run_id for item in rewrite.items] == [
        v.run_id for v in variations(job.tasks[0])
    ]
    first = rewrite.items[0]
    assert struct_to_dict(first.inputs) == {
        "model_key": "FAKE_OPENAI",
        "prompt": PROMPTS["concise"],
    }
    # Each variation ran its own model: the model key axis overrides the steps' key.
    assert [item.steps[0].model_key for item in rewrite.items] == [
        m for m in MODELS for _ in PROMPTS
    ]
    assert [item.steps[1].model_key for item in rewrite.items] == [
        m for m in MODELS for _ in PROMPTS
    ]
    assert rewrite.items[1].steps[0].user_prompt == "Say it formally: The cat sat on the mat."
    outputs = struct_to_dict(rewrite.outputs)["draft"]
    assert sorted(outputs) == sorted(names())
    assert outputs[names()[0]] == struct_to_dict(first.outputs)["draft"]
    compare = _task(job_run, "compare")
    assert sorted(struct_to_dict(compare.inputs)["draft"]) == sorted(names())
    shown = json.loads(struct_to_dict(compare.outputs)["all"].removeprefix("All: "))
    assert shown == outputs
    assert rewrite.usage.input_tokens == sum(i.usage.input_tokens for i in rewrite.items) > 0


def test_in_series_runs_one_variation_at_a_time(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    job = strategy_job(in_series=True)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.max_in_flight == 1
    assert fake_server.count() == 6


def test_a_failed_variation_fails_the_task_naming_it(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(100, status=400, provider="google")
    job = strategy_job(in_series=True)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    rewrite = _task(job_run, "rewrite")
    assert rewrite.error.message.startswith("rewrite[model=FAKE_GEMINI,prompt=concise]: ")
    statuses = [item.status for item in rewrite.items]
    assert statuses[:3] == [run_pb2.RUN_STATUS_SUCCEEDED] * 2 + [run_pb2.RUN_STATUS_FAILED]
    assert statuses[3:] == [run_pb2.RUN_STATUS_SKIPPED] * 3
    assert [item.variation for item in rewrite.items] == names()
    assert _task(job_run, "compare").status == run_pb2.RUN_STATUS_SKIPPED


def test_adding_a_model_and_replaying_calls_only_the_new_variations(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = strategy_job(MODELS[:2])
    context = context_for(fake_registry)
    first = run(context, run_job(job, context))
    assert first.status == run_pb2.RUN_STATUS_SUCCEEDED, first.error.message
    assert fake_server.count() == 4

    grown = strategy_job(MODELS)
    Validator(fake_registry).check_job(grown)
    plan = plan_replay(grown, first, context_for(fake_registry))
    assert [(p.task_id, p.action) for p in plan.steps if p.task_id != "compare"] == [
        (name, "run" if "ANTHROPIC" in name else "reuse") for name in names()
    ]
    context = context_for(fake_registry, replay=ReplaySource(first))
    again = run(context, run_job(grown, context))
    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == 4 + 2  # the two new variations only
    assert fake_server.count("anthropic") == 2
    items = _task(again, "rewrite").items
    reused = [item.variation for item in items if item.steps[0].reused_from_run_id == first.run_id]
    assert reused == names(MODELS[:2])
    assert sorted(struct_to_dict(_task(again, "rewrite").outputs)["draft"]) == sorted(names())


def test_a_model_key_axis_varies_the_model_of_embedding_steps(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    keys = ["FAKE_OPENAI_EMBEDDING", "FAKE_GEMINI_EMBEDDING"]
    config = {
        "job_id": "embeddings",
        "input_config": {"payload": {"text": "tide pools"}},
        "tasks": [
            {
                "task_id": "embed",
                "strategy": {
                    "axes": [
                        {
                            "name": "model",
                            "variable": "model_key",
                            "values": [{"name": k} for k in keys],
                        }
                    ]
                },
                "steps": [
                    {
                        "step_type": 2,
                        "embedding_config": {"model_key": keys[0], "input": "%text%"},
                        "output_config": {"payload": {"vector": "%response%"}},
                    }
                ],
            }
        ],
    }
    job = loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count("openai") == fake_server.count("google") == 1
    embed = _task(job_run, "embed")
    assert [item.steps[0].model_key for item in embed.items] == keys
    vectors = struct_to_dict(embed.outputs)["vector"]
    assert sorted(vectors) == sorted(f"embed[model={k}]" for k in keys)
    assert all(len(vector) == 8 for vector in vectors.values())


def test_a_fourth_model_on_a_3x2_strategy_replays_with_only_its_2_variations_run(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    """Issue 13's case exactly: 3 models x 2 prompts, then a fourth model (the offline one)."""
    context = context_for(fake_registry)
    first = run(context, run_job(strategy_job(MODELS), context))
    assert first.status == run_pb2.RUN_STATUS_SUCCEEDED, first.error.message
    assert fake_server.count() == 6

    grown = strategy_job([*MODELS, "offline:delta"])
    Validator(fake_registry).check_job(grown)
    context = context_for(fake_registry, replay=ReplaySource(first))
    again = run(context, run_job(grown, context))
    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == 6  # the six recorded variations are reused
    items = _task(again, "rewrite").items
    ran = [item.variation for item in items if not item.steps[0].reused_from_run_id]
    assert ran == names(["offline:delta"])  # the two new variations, and only they, ran
    assert all(item.steps[0].provider == "offline" for item in items if item.variation in ran)
    assert len(struct_to_dict(_task(again, "rewrite").outputs)["draft"]) == 8

"""Strategies in a store: each variation a task run of its own, on every store backend."""

from __future__ import annotations

import json

from llm_scheduler import ModelRegistry
from llm_scheduler.config.strategies import variations
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.replay_run import submit_replay
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import run_pb2
from tests.conftest import context_for
from tests.engine.test_strategy import MODELS, PROMPTS, names, strategy_job
from tests.execution.test_map_runs import deliver_every_event_twice, run_dispatchers, task_of


def assert_strategy(store: Store, run_id: str, models: list[str] = MODELS) -> run_pb2.JobRun:
    """The run succeeded with a variation per model and prompt, seen keyed downstream."""
    job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    rewrite = task_of(job_run, "rewrite")
    expected = names(models)
    assert rewrite.items_total == len(expected)
    assert [item.variation for item in rewrite.items] == expected
    assert [item.task_run_id for item in rewrite.items] == [
        v.run_id for v in variations(job_run.config.tasks[0])
    ]
    assert all(item.status == run_pb2.RUN_STATUS_SUCCEEDED for item in rewrite.items)
    assert [struct_to_dict(item.inputs) for item in rewrite.items] == [
        {"model_key": m, "prompt": text} for m in models for text in PROMPTS.values()
    ]
    assert [item.steps[-1].model_key for item in rewrite.items] == [
        m for m in models for _ in PROMPTS
    ]
    drafts = struct_to_dict(rewrite.outputs)["draft"]
    assert sorted(drafts) == sorted(expected)
    assert drafts == {
        item.variation: struct_to_dict(item.outputs)["draft"] for item in rewrite.items
    }
    compare = task_of(job_run, "compare")
    assert json.loads(struct_to_dict(compare.outputs)["all"].removeprefix("All: ")) == drafts
    doc = store.get(docs.job_run_path(run_id))
    assert doc is not None and doc["tasks_succeeded"] == 2
    return job_run


def test_a_strategy_of_three_models_and_two_prompts_on_three_racing_dispatchers(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    with open_store(store_url) as store:
        run_id = submit_job(store, strategy_job(steps=2))
        run_dispatchers(store_url, fake_registry, 3)
        assert_strategy(store, run_id)
    assert fake_server.count() == 6 * 2
    assert {p: fake_server.count(p) for p in ("openai", "google", "anthropic")} == {
        "openai": 4,
        "google": 4,
        "anthropic": 4,
    }


def test_every_event_delivered_twice_calls_each_variation_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    with open_store(store_url) as store:
        run_id = submit_job(store, strategy_job(steps=2))
        deliver_every_event_twice(store_url, fake_registry)
        assert_strategy(store, run_id)
    assert fake_server.count() == 6 * 2


def test_in_series_in_a_store_runs_one_variation_at_a_time(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    with open_store(store_url) as store:
        run_id = submit_job(store, strategy_job(in_series=True))
        run_dispatchers(store_url, fake_registry, 2, workers=4)
        assert_strategy(store, run_id)
    assert fake_server.max_in_flight == 1
    assert fake_server.count() == 6


def test_a_failed_variation_fails_the_task_naming_it_in_a_store(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(100, status=400, provider="anthropic")
    with open_store(store_url) as store:
        run_id = submit_job(store, strategy_job())
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    rewrite = task_of(job_run, "rewrite")
    # Both variations of the failing model fail; the first to be counted names the task.
    assert rewrite.error.message.startswith("rewrite[model=FAKE_ANTHROPIC,prompt=")
    assert task_of(job_run, "compare").status == run_pb2.RUN_STATUS_SKIPPED


def test_a_resumed_strategy_runs_only_the_variations_that_did_not_succeed(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.fail_next(100, status=400, provider="anthropic")
    with open_store(store_url) as store:
        # In series, so the variations of the first two models all succeed before one fails.
        run_id = submit_job(store, strategy_job(in_series=True))
        run_dispatchers(store_url, fake_registry, 1)
        failed = read_job_run(store, run_id)
        assert failed is not None and failed.status == run_pb2.RUN_STATUS_FAILED
        calls_before = fake_server.count("openai") + fake_server.count("google")
        assert calls_before == 4
        fake_server.reset()
        assert resume_run(store, run_id)
        run_dispatchers(store_url, fake_registry, 2)
        assert_strategy(store, run_id)
    # The four variations that succeeded are not called again.
    assert fake_server.count() == fake_server.count("anthropic") == 2


def test_adding_a_model_and_replaying_in_a_store_calls_only_the_new_variations(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        first_id = submit_job(store, strategy_job(MODELS[:2]))
        run_dispatchers(store_url, fake_registry, 1)
        first = assert_strategy(store, first_id, MODELS[:2])
        assert fake_server.count() == 4
        source = run_pb2.JobRun()
        source.CopyFrom(first)
        source.config.CopyFrom(strategy_job(MODELS))
        again_id = submit_replay(store, source, context_for(fake_registry))
        run_dispatchers(store_url, fake_registry, 2)
        again = assert_strategy(store, again_id)
    assert fake_server.count() == 4 + 2
    assert fake_server.count("anthropic") == 2
    items = task_of(again, "rewrite").items
    reused = [item.variation for item in items if item.steps[0].reused_from_run_id == first_id]
    assert reused == names(MODELS[:2])

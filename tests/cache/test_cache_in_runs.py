"""The response cache in runs: the engine, the local runners and event-driven runs."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from llm_scheduler import (
    EngineEvent,
    EventKind,
    ModelRegistry,
    loads,
    run_task,
)
from llm_scheduler.cache import CACHE_COLLECTION, StoreResponseCache
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, context_for, write_models_file
from tests.conftest import run_closing as run

T = TypeVar("T")


def query(model_key: str, prompt: str, output: str) -> dict[str, Any]:
    return {
        "model_query_config": {
            "model_key": model_key,
            "parameters": {"temperature": "0.2"},
            "user_prompt": prompt,
        },
        "output_config": {"payload": {output: ""}},
    }


def two_step_task(model_key: str = "FAKE_OPENAI") -> config_pb2.TaskConfig:
    task = {
        "task_id": "chain",
        "input_config": {"payload": {"topic": "owls"}},
        "steps": [
            query(model_key, "Name a fact about %topic%.", "fact"),
            query(model_key, "Rephrase: %fact%", "rephrased"),
        ],
    }
    return loads(json.dumps(task), config_pb2.TaskConfig, ConfigFormat.JSON)


def two_task_job() -> dict[str, Any]:
    return {
        "job_id": "cached",
        "input_config": {"payload": {"topic": "owls"}},
        "tasks": [
            {
                "task_id": "draft",
                "steps": [query("FAKE_OPENAI", "Name a fact about %topic%.", "fact")],
                "next_task": "polish",
            },
            {
                "task_id": "polish",
                "steps": [
                    query("FAKE_OPENAI", "Rephrase: %fact%", "rephrased"),
                    query("FAKE_OPENAI", "Shorten: %rephrased%", "short"),
                ],
            },
        ],
    }


@pytest.fixture
def sqlite_store(tmp_path: pathlib.Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'cache.db'}") as store:
        yield store


def run_twice(
    task: config_pb2.TaskConfig,
    registry: ModelRegistry,
    store: Store,
    policy: config_pb2.CachePolicy = config_pb2.CACHE_POLICY_USE,
) -> tuple[run_pb2.TaskRun, run_pb2.TaskRun, list[EngineEvent]]:
    task_runs = []
    events: list[EngineEvent] = []
    for _ in range(2):
        context = context_for(
            registry,
            cache=StoreResponseCache(store),
            default_cache_policy=policy,
            on_event=events.append,
        )
        task_run = run(context, run_task(task, {}, context))
        assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED, task_run.error.message
        task_runs.append(task_run)
    return task_runs[0], task_runs[1], events


# -- the engine ------------------------------------------------------------------------------


def test_the_same_task_run_twice_calls_the_model_once(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry, sqlite_store: Store
) -> None:
    first, second, events = run_twice(two_step_task(), fake_registry, sqlite_store)

    assert fake_server.count() == 2
    assert [step.cache_hit for step in first.steps] == [False, False]
    assert [step.cache_hit for step in second.steps] == [True, True]
    assert all(step.cost_usd == 0 and step.attempts == 0 for step in second.steps)
    assert second.cost_usd == 0 and first.cost_usd > 0
    assert [s.response_text for s in second.steps] == [s.response_text for s in first.steps]
    assert struct_to_dict(second.outputs) == struct_to_dict(first.outputs)
    # The usage of the original response is kept, so the record still shows its size.
    assert second.steps[0].usage == first.steps[0].usage
    assert [e.kind for e in events].count(EventKind.CACHE_HIT) == 2
    assert len(sqlite_store.list(CACHE_COLLECTION)) == 2


def test_model_keys_resolving_to_the_same_model_share_entries(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, sqlite_store: Store
) -> None:
    models = write_models_file(tmp_path / "models.json", fake_server)
    entries = json.loads(models.read_text().split("\n", 1)[1])
    alias = {**entries["models"][0], "key": "FAKE_OPENAI_ALIAS"}
    models.write_text(json.dumps({"models": [*entries["models"], alias]}))
    registry = ModelRegistry.with_models_file(models)
    for model_key in ("FAKE_OPENAI", "FAKE_OPENAI_ALIAS"):
        context = context_for(
            registry,
            cache=StoreResponseCache(sqlite_store),
            default_cache_policy=config_pb2.CACHE_POLICY_USE,
        )
        task_run = run(context, run_task(two_step_task(model_key), {}, context))
        assert task_run.status == run_pb2.RUN_STATUS_SUCCEEDED, task_run.error.message
    assert fake_server.count() == 2
    assert all(step.cache_hit for step in task_run.steps)


def test_refresh_on_a_step_calls_the_model_again_and_stores_the_new_answer(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry, sqlite_store: Store
) -> None:
    task = two_step_task()
    task.steps[0].cache = config_pb2.CACHE_POLICY_REFRESH
    # The second prompt does not depend on the first answer, so it can hit after a refresh.
    task.steps[1].model_query_config.user_prompt = "Rephrase: %topic%"
    answers = iter(["answer 1", "answer 2", "answer 3"])
    fake_server.responder = lambda provider, body: next(answers)

    first, second, _ = run_twice(task, fake_registry, sqlite_store)

    assert fake_server.count() == 3  # the refreshed step twice, the other one once
    assert [step.cache_hit for step in second.steps] == [False, True]
    assert [s.response_text for s in first.steps] == ["answer 1", "answer 2"]
    assert [s.response_text for s in second.steps] == ["answer 3", "answer 2"]
    task.steps[0].cache = config_pb2.CACHE_POLICY_DEFAULT
    context = context_for(
        fake_registry,
        cache=StoreResponseCache(sqlite_store),
        default_cache_policy=config_pb2.CACHE_POLICY_USE,
    )
    again = run(context, run_task(task, {}, context))
    assert again.steps[0].cache_hit
    assert again.steps[0].response_text == "answer 3"  # the refreshed entry
    assert fake_server.count() == 3


def test_off_never_reads_or_writes_the_cache(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry, sqlite_store: Store
) -> None:
    task = two_step_task()
    for step in task.steps:
        step.cache = config_pb2.CACHE_POLICY_OFF

    _, second, _ = run_twice(task, fake_registry, sqlite_store)

    assert fake_server.count() == 4
    assert not any(step.cache_hit for step in second.steps)
    assert sqlite_store.list(CACHE_COLLECTION) == []


def test_the_context_default_applies_to_default_steps_only(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry, sqlite_store: Store
) -> None:
    task = two_step_task()
    task.steps[1].cache = config_pb2.CACHE_POLICY_USE

    _, second, _ = run_twice(task, fake_registry, sqlite_store, config_pb2.CACHE_POLICY_OFF)

    assert fake_server.count() == 3  # step 1 follows the OFF default; step 2 opted in
    assert [step.cache_hit for step in second.steps] == [False, True]


# -- the local runners -----------------------------------------------------------------------


def tool_env(models_file: pathlib.Path) -> dict[str, str]:
    return {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}


def test_job_runner_twice_answers_the_second_run_from_the_cache(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(two_task_job()))
    store = f"--store=sqlite:///{tmp_path / 'state.db'}"
    env = tool_env(models_file)

    first = run_tool("job_runner", f"--input_path={job}", store, env=env)
    assert first.code == 0, first.stderr
    assert fake_server.count() == 3
    assert "cache hit" not in first.stderr

    second = run_tool("job_runner", f"--input_path={job}", store, env=env)
    assert second.code == 0, second.stderr
    assert fake_server.count() == 3  # no provider call
    assert "3 cache hits" in second.stderr
    assert "cost: $0.000000" in second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)

    off = run_tool("job_runner", f"--input_path={job}", store, "--cache=off", env=env)
    assert off.code == 0, off.stderr
    assert fake_server.count() == 6
    assert "cache hit" not in off.stderr


def test_step_and_task_runners_use_the_default_store_and_show_hits(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    task = two_step_task()
    task_path = tmp_path / "task.json"
    task_path.write_text(json.dumps(docs.record_to_doc(task)))
    step_path = tmp_path / "step.json"
    step_path.write_text(json.dumps(docs.record_to_doc(task.steps[0])))
    state = tmp_path / "default.db"
    env = {**tool_env(models_file), "LLM_SCHEDULER_STORE": f"sqlite:///{state}"}

    first = run_tool("task_runner", f"--input_path={task_path}", env=env)
    assert first.code == 0, first.stderr
    assert fake_server.count() == 2
    assert state.exists()

    second = run_tool("task_runner", f"--input_path={task_path}", env=env)
    assert second.code == 0, second.stderr
    assert "2 cache hits" in second.stderr

    step = run_tool("step_runner", f"--input_path={step_path}", "--var", "topic=owls", env=env)
    assert step.code == 0, step.stderr
    assert "(cached)" in step.stderr

    refresh = run_tool(
        "step_runner",
        f"--input_path={step_path}",
        "--var",
        "topic=owls",
        "--cache=refresh",
        env=env,
    )
    assert refresh.code == 0, refresh.stderr
    assert "(cached)" not in refresh.stderr
    assert fake_server.count() == 3


def test_offline_runs_do_not_open_the_cache_unless_asked(tmp_path: pathlib.Path) -> None:
    task_path = tmp_path / "task.json"
    task_path.write_text(json.dumps(docs.record_to_doc(two_step_task("GEMINI_FLASH"))))
    state = tmp_path / "state.db"

    result = run_tool(
        "task_runner", f"--input_path={task_path}", "--offline", f"--store=sqlite:///{state}"
    )
    assert result.code == 0, result.stderr
    assert not state.exists()

    for _ in range(2):
        result = run_tool(
            "task_runner",
            f"--input_path={task_path}",
            "--offline",
            "--cache=use",
            f"--store=sqlite:///{state}",
        )
        assert result.code == 0, result.stderr
    assert "2 cache hits" in result.stderr


# -- event-driven runs -----------------------------------------------------------------------


def dispatch(store: Store, registry: ModelRegistry) -> None:
    context = context_for(registry)

    async def body() -> None:
        try:
            await Dispatcher(store, context, workers=2).run(until_idle=True)
        finally:
            await context.models.aclose()

    asyncio.run(body())


def job_config() -> config_pb2.JobConfig:
    return loads(json.dumps(two_task_job()), config_pb2.JobConfig, ConfigFormat.JSON)


def run_job_twice(store: Store, registry: ModelRegistry, policy: str = "") -> list[run_pb2.JobRun]:
    job_runs = []
    for _ in range(2):
        run_id = submit_job(store, job_config(), default_cache_policy=policy)
        dispatch(store, registry)
        job_run = read_job_run(store, run_id)
        assert job_run is not None
        assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
        job_runs.append(job_run)
    return job_runs


def test_a_run_submitted_with_the_cache_answers_from_it(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        first, second = run_job_twice(store, fake_registry, "CACHE_POLICY_USE")
        doc = store.get(docs.job_run_path(second.run_id))
        assert doc is not None and doc["default_cache_policy"] == "CACHE_POLICY_USE"
    assert fake_server.count() == 3
    assert not any(step.cache_hit for task in first.tasks for step in task.steps)
    steps = [step for task in second.tasks for step in task.steps]
    assert len(steps) == 3 and all(step.cache_hit for step in steps)
    assert second.cost_usd == 0


def test_event_driven_runs_do_not_use_the_cache_by_default(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        _, second = run_job_twice(store, fake_registry)
        doc = store.get(docs.job_run_path(second.run_id))
        assert doc is not None and "default_cache_policy" not in doc
        assert store.list(CACHE_COLLECTION) == []
    assert fake_server.count() == 6
    assert not any(step.cache_hit for task in second.tasks for step in task.steps)


def test_job_submitter_stores_the_policy_only_when_cache_is_given(
    tmp_path: pathlib.Path, models_file: pathlib.Path
) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps(two_task_job()))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    policies = {}
    for extra in ([], ["--cache=use"], ["--cache=refresh"]):
        result = run_tool(
            "job_submitter",
            f"--input_path={job}",
            f"--store={url}",
            *extra,
            env=tool_env(models_file),
        )
        assert result.code == 0, result.stderr
        with open_store(url) as store:
            doc = store.get(docs.job_run_path(result.stdout.strip()))
        assert doc is not None
        policies[tuple(extra)] = doc.get("default_cache_policy")
    assert policies == {
        (): None,
        ("--cache=use",): "CACHE_POLICY_USE",
        ("--cache=refresh",): "CACHE_POLICY_REFRESH",
    }

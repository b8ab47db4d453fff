"""Map tasks in a store (`execution.map_runs`): items as task runs, on every store backend."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from llm_scheduler import ModelRegistry, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.completion import reconcile_run
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import handle_task_run, run_config
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS, REPO_ROOT, context_for

PLAN_PROMPT = "Plan the sections"


def query(prompt: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def map_job(
    for_each: dict[str, Any] | None = None,
    *,
    plan: bool = True,
    item_prompt: str = "Section %index%: %item%",
    inputs: dict[str, Any] | None = None,
) -> config_pb2.JobConfig:
    """plan (the model answers a JSON list) -> write (a map over it) -> join."""
    tasks: list[dict[str, Any]] = []
    if plan:
        tasks.append(
            {
                "task_id": "plan",
                "next_task": "write",
                "steps": [query(PLAN_PROMPT, {"sections": ""})],
            }
        )
    tasks += [
        {
            "task_id": "write",
            "next_task": "join",
            "for_each": for_each or {"items": "%sections%"},
            "steps": [query(item_prompt, {"text": ""})],
        },
        {"task_id": "join", "steps": [query("All: %text%", {"final": ""})]},
    ]
    config: dict[str, Any] = {"job_id": "mapped", "tasks": tasks}
    if inputs is not None:
        config["input_config"] = {"payload": inputs}
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def plan_with(fake_server: FakeProviderServer, count: int) -> None:
    """The plan step answers a JSON list of ``count`` sections; other prompts are echoed."""

    def responder(provider: str, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if prompt == PLAN_PROMPT:
            return json.dumps([f"section {i}" for i in range(count)])
        return f"wrote {prompt}"

    fake_server.responder = responder


def run_dispatchers(store_url: str, registry: ModelRegistry, count: int, workers: int = 3) -> None:
    """``count`` dispatchers, each on its own store connection, racing until idle."""

    async def body() -> None:
        stores = [open_store(store_url) for _ in range(count)]
        contexts = [context_for(registry) for _ in range(count)]
        try:
            await asyncio.gather(
                *(
                    Dispatcher(store, context, workers=workers).run(until_idle=True)
                    for store, context in zip(stores, contexts, strict=True)
                )
            )
        finally:
            for context in contexts:
                await context.models.aclose()
            for store in stores:
                store.close()

    asyncio.run(body())


def deliver_every_event_twice(store_url: str, registry: ModelRegistry) -> None:
    """Delivers each PENDING task run's event twice at once, to two connections, until none.

    A task run written PENDING again (a waiting task woken, a map ready to collect) is a new
    event, delivered twice again.
    """

    async def body() -> None:
        context = context_for(registry)
        with open_store(store_url) as store, open_store(store_url) as other:
            delivered: set[tuple[str, str]] = set()
            try:
                while True:
                    found = store.find("task_runs", "status", [Status.PENDING])
                    keys = [(path, str(doc.get("pending_since"))) for path, doc in found]
                    keys = [key for key in keys if key not in delivered]
                    if not keys:
                        return
                    deliveries = []
                    for key in keys:
                        delivered.add(key)
                        parsed = docs.parse_task_run_path(key[0])
                        assert parsed is not None
                        for target in (store, other):
                            deliveries.append(handle_task_run(target, *parsed, context))
                    await asyncio.gather(*deliveries)
            finally:
                await context.models.aclose()

    asyncio.run(body())


def task_of(job_run: run_pb2.JobRun, task_id: str) -> run_pb2.TaskRun:
    return next(t for t in job_run.tasks if t.task_id == task_id)


def assert_mapped(store: Store, run_id: str, count: int) -> run_pb2.JobRun:
    """The run succeeded with ``count`` items, and the join saw their outputs in order."""
    job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = task_of(job_run, "write")
    assert write.items_total == count
    assert [item.task_run_id for item in write.items] == [f"write~{i:06d}" for i in range(count)]
    assert [item.item_index for item in write.items] == list(range(count))
    assert all(item.status == run_pb2.RUN_STATUS_SUCCEEDED for item in write.items)
    assert [struct_to_dict(item.inputs) for item in write.items] == [
        {"item": f"section {i}", "index": i} for i in range(count)
    ]
    texts = [f"wrote Section {i}: section {i}" for i in range(count)]
    assert struct_to_dict(write.outputs) == {"text": texts}
    join = task_of(job_run, "join")
    assert join.steps[0].user_prompt == f"All: {json.dumps(texts)}"
    assert write.usage.input_tokens == sum(item.usage.input_tokens for item in write.items) > 0
    doc = store.get(docs.job_run_path(run_id))
    assert doc is not None and doc["tasks_succeeded"] == 3
    return job_run


def prompts(fake_server: FakeProviderServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in fake_server.requests if not r.failed]


def test_a_map_decided_at_run_time_runs_on_three_racing_dispatchers_each_call_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = random.randint(5, 12)
    plan_with(fake_server, count)
    fake_server.latency_seconds = 0.02
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job())
        run_dispatchers(store_url, fake_registry, 3)
        assert_mapped(store, run_id, count)
    seen = prompts(fake_server)
    assert len(seen) == 1 + count + 1
    assert len(set(seen)) == len(seen)


def test_every_event_delivered_twice_calls_each_model_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = 6
    plan_with(fake_server, count)
    fake_server.latency_seconds = 0.02
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job({"items": "%sections%", "max_in_flight": 2}))
        deliver_every_event_twice(store_url, fake_registry)
        assert_mapped(store, run_id, count)
    assert fake_server.count() == 1 + count + 1


def test_an_empty_list_succeeds_the_map_with_empty_outputs(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    plan_with(fake_server, 0)
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job())
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = task_of(job_run, "write")
    assert write.items_total == 0 and not write.items
    assert struct_to_dict(write.outputs) == {"text": []}
    assert task_of(job_run, "join").steps[0].user_prompt == "All: []"
    assert fake_server.count() == 2


def test_max_in_flight_items_are_started_by_the_items_before_them(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = 7
    plan_with(fake_server, count)
    fake_server.latency_seconds = 0.05
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job({"items": "%sections%", "max_in_flight": 2}))
        run_dispatchers(store_url, fake_registry, 2, workers=4)
        assert_mapped(store, run_id, count)
    assert fake_server.max_in_flight <= 2
    assert fake_server.count() == count + 2


def test_a_failed_item_fails_the_map_naming_it_and_skips_what_follows(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    rows = [{"x": "a"}, {"x": "b"}, {"y": "no x here"}, {"x": "d"}, {"x": "e"}]
    job = map_job(
        {"items": "%rows%", "item_variable": "row", "max_in_flight": 1},
        plan=False,
        item_prompt="Row %row.x%",
        inputs={"rows": rows},
    )
    with open_store(store_url) as store:
        run_id = submit_job(store, job)
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert job_run.HasField("finished_at")  # finished by the failed item's worker
    write = task_of(job_run, "write")
    assert write.status == run_pb2.RUN_STATUS_FAILED
    assert write.error.message.startswith("write[2]: ")
    assert "row.x" in write.error.message
    assert "task 'write' failed: write[2]: " in job_run.error.message
    statuses = [item.status for item in write.items]
    assert statuses == [run_pb2.RUN_STATUS_SUCCEEDED] * 2 + [run_pb2.RUN_STATUS_FAILED]
    assert task_of(job_run, "join").status == run_pb2.RUN_STATUS_SKIPPED
    assert fake_server.count() == 2  # one item at a time: nothing after the failed one ran


def test_a_failed_map_resumes_from_its_failed_item(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    rows = [{"x": "a"}, {"x": "b"}, {"x": "c"}, {"x": "d"}]
    job = map_job(
        {"items": "%rows%", "item_variable": "row", "max_in_flight": 2},
        plan=False,
        item_prompt="Row %row.x%",
        inputs={"rows": rows},
    )
    attempts = {"n": 0}

    def responder(provider: str, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if prompt == "Row c":
            attempts["n"] += 1
            if attempts["n"] <= 3:  # every attempt of the first run
                raise ValueError("not now")
        return f"wrote {prompt}"

    fake_server.responder = responder
    with open_store(store_url) as store:
        run_id = submit_job(store, job)
        run_dispatchers(store_url, fake_registry, 1)
        failed = read_job_run(store, run_id)
        assert failed is not None and failed.status == run_pb2.RUN_STATUS_FAILED
        assert task_of(failed, "write").error.message.startswith("write[2]: ")
        calls_before = fake_server.count()
        assert resume_run(store, run_id)
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = task_of(job_run, "write")
    assert struct_to_dict(write.outputs) == {"text": [f"wrote Row {x}" for x in "abcd"]}
    done_before = [p for p in prompts(fake_server)[:calls_before] if p in ("Row a", "Row b")]
    # Items that succeeded before the failure are not called again.
    assert prompts(fake_server).count("Row a") == done_before.count("Row a") == 1
    assert prompts(fake_server).count("Row b") == 1


def test_a_waiting_map_whose_counter_died_is_moved_on_by_reconcile(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    plan_with(fake_server, 3)
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job())
        context = context_for(fake_registry)

        async def deliver(task_id: str) -> str:
            return (await handle_task_run(store, run_id, task_id, context)).action

        async def steps() -> list[str]:
            try:
                actions = [await deliver("plan"), await deliver("write")]
                # The items run, but their counting is lost (as if each died after its
                # commit): the map is put back to WAITING once they are done.
                actions += [await deliver(f"write~{i:06d}") for i in range(3)]
                return actions
            finally:
                await context.models.aclose()

        assert asyncio.run(steps()) == ["succeeded", "waiting"] + ["succeeded"] * 3
        write_path = docs.task_run_path(run_id, "write")
        store.update_if(write_path, lambda doc: {"status": Status.WAITING, "map_ready": None})
        run = run_config(store, run_id)
        assert run is not None
        assert reconcile_run(store, run, 0.0) == "repaired"
        doc = store.get(write_path)
        assert doc is not None and doc["status"] == Status.PENDING and doc["map_ready"]
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert fake_server.count() == 5


def test_cancelling_a_run_cancels_its_waiting_map_and_its_items(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    plan_with(fake_server, 4)
    with open_store(store_url) as store:
        run_id = submit_job(store, map_job())
        context = context_for(fake_registry)

        async def expand() -> list[str]:
            try:
                return [
                    (await handle_task_run(store, run_id, task_id, context)).action
                    for task_id in ("plan", "write")
                ]
            finally:
                await context.models.aclose()

        assert asyncio.run(expand()) == ["succeeded", "waiting"]
        stopped = cancel_run(store, run_id)
        assert sorted(stopped) == ["write", *(f"write~{i:06d}" for i in range(4))]
        run_dispatchers(store_url, fake_registry, 1)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_CANCELLED
    write = task_of(job_run, "write")
    assert write.status == run_pb2.RUN_STATUS_CANCELLED
    assert {item.status for item in write.items} == {run_pb2.RUN_STATUS_CANCELLED}
    assert fake_server.count() == 1


@pytest.mark.timeout(120)
def test_a_sigkilled_dispatcher_mid_map_repeats_at_most_the_calls_in_flight(
    tmp_path: pathlib.Path,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
) -> None:
    """On SQLite (the kill and restart are the store's business, tested on both elsewhere)."""
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    count = 50
    fake_server.latency_seconds = 0.1
    job = map_job(
        {"items": "%rows%", "item_variable": "row"},
        plan=False,
        item_prompt="Row %row%",
        inputs={"rows": [f"r{i}" for i in range(count)]},
    )
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        "LLM_SCHEDULER_MODELS_FILE": str(models_file),
        "LLM_SCHEDULER_STORE": store_url,
    }
    command = [
        sys.executable,
        "-m",
        "llm_scheduler.runner.dispatcher",
        "--until_idle",
        "--lease_seconds=1",
        "--quiet",
    ]
    with open_store(store_url) as store:
        run_id = submit_job(store, job)
        first = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

        def items_with(status: str) -> list[str]:
            found = store.query(docs.task_runs_collection(run_id), "status", [status])
            return [str(doc["task_run_id"]) for _, doc in found if doc.get("map_task")]

        kill_after = random.randint(5, 30)
        deadline = time.monotonic() + 60
        while len(items_with(Status.SUCCEEDED)) < kill_after:
            assert time.monotonic() < deadline, "the first dispatcher made no progress"
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.stderr is not None
        first.stderr.close()
        succeeded = items_with(Status.SUCCEEDED)
        in_flight = len(items_with(Status.RUNNING))
        calls_at_kill = fake_server.count()

        second = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, timeout=90)
        assert second.returncode == 0, second.stderr.decode()
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = task_of(job_run, "write")
    assert struct_to_dict(write.outputs) == {
        "text": [f"fake openai reply to: Row r{i}" for i in range(count)]
    }
    seen = prompts(fake_server)
    for item_id in succeeded:  # items done before the kill were not called again
        index = int(item_id.split("~")[1])
        assert seen.count(f"Row r{index}") == 1
    # Calls beyond the logical count: at most those in flight at the kill.
    assert calls_at_kill <= len(seen) <= count + 1 + in_flight

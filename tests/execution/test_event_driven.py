"""Event-driven runs end to end on every store backend, with duplicate deliveries and crashes."""

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
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, Transaction, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS, REPO_ROOT, context_for


def query(prompt: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def chain_fan_join_job() -> config_pb2.JobConfig:
    """start -> middle (chain) -> left, right (fan-out) -> join (join)."""
    tasks = [
        {"task_id": "start", "steps": [query("start %topic%", {"a": ""})], "next_task": "middle"},
        {
            "task_id": "middle",
            "steps": [query("middle %a%", {"b": ""}), query("middle two %b%", {"b2": ""})],
            "next_tasks": ["left", "right"],
        },
        {"task_id": "left", "steps": [query("left %b2%", {"l": ""})], "next_task": "join"},
        {"task_id": "right", "steps": [query("right %b2%", {"r": ""})], "next_task": "join"},
        {"task_id": "join", "steps": [query("join %l% | %r%", {"final": ""})]},
    ]
    text = json.dumps(
        {"job_id": "cfj", "tasks": tasks, "input_config": {"payload": {"topic": "owls"}}}
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def long_task_job(steps: int) -> config_pb2.JobConfig:
    chain = [query(f"step {i} %v{i}%", {f"v{i + 1}": ""}) for i in range(steps)]
    text = json.dumps(
        {
            "job_id": "long",
            "tasks": [{"task_id": "only", "steps": chain}],
            "input_config": {"payload": {"v0": "seed"}},
        }
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def deliver(store: Store, run_id: str, task_id: str, registry: ModelRegistry) -> str:
    """Delivers one task-run event and returns the outcome's action."""
    context = context_for(registry)

    async def body() -> str:
        try:
            return (await handle_task_run(store, run_id, task_id, context)).action
        finally:
            await context.models.aclose()

    return asyncio.run(body())


def run_dispatcher(store: Store, registry: ModelRegistry, workers: int = 4) -> None:
    context = context_for(registry)

    async def body() -> None:
        try:
            await Dispatcher(store, context, workers=workers).run(until_idle=True)
        finally:
            await context.models.aclose()

    asyncio.run(body())


def assert_chain_fan_join_succeeded(store: Store, run_id: str) -> run_pb2.JobRun:
    job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert [t.task_id for t in job_run.tasks] == ["start", "middle", "left", "right", "join"]
    assert all(t.status == run_pb2.RUN_STATUS_SUCCEEDED for t in job_run.tasks)
    by_id = {t.task_id: t for t in job_run.tasks}
    left = struct_to_dict(by_id["left"].outputs)["l"]
    right = struct_to_dict(by_id["right"].outputs)["r"]
    assert by_id["join"].steps[0].user_prompt == f"join {left} | {right}"
    assert sorted(by_id["join"].predecessors) == ["left", "right"]
    final = struct_to_dict(job_run.outputs)
    assert final == {"join": {"final": f"fake openai reply to: join {left} | {right}"}}
    doc = store.get(docs.job_run_path(run_id))
    assert doc is not None
    assert doc["tasks_succeeded"] == 5 and doc["tasks_total"] == 5
    assert int(doc["usage"]["input_tokens"]) > 0
    return job_run


def prompts_seen(server: FakeProviderServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in server.requests if not r.failed]


def test_chain_fan_out_and_join_complete_with_each_call_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_fan_join_job())
        run_dispatcher(store, fake_registry)
        assert_chain_fan_join_succeeded(store, run_id)
    prompts = prompts_seen(fake_server)
    assert len(prompts) == 6
    assert len(set(prompts)) == 6


def test_submitting_the_same_run_id_twice_starts_it_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        first = submit_job(store, chain_fan_join_job(), run_id="fixed-run")
        second = submit_job(store, chain_fan_join_job(), run_id="fixed-run")
        assert first == second == "fixed-run"
        run_dispatcher(store, fake_registry)
        assert_chain_fan_join_succeeded(store, "fixed-run")
    assert fake_server.count() == 6


def test_every_event_delivered_twice_concurrently_calls_each_model_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.05
    with open_store(store_url) as store, open_store(store_url) as other:
        run_id = submit_job(store, chain_fan_join_job())
        context = context_for(fake_registry)

        async def deliver_all_twice() -> list[str]:
            actions: list[str] = []
            delivered: set[str] = set()
            try:
                while True:
                    runnable = [
                        path
                        for path, doc in store.find("task_runs", "status", [Status.PENDING])
                        if path not in delivered
                    ]
                    if not runnable:
                        return actions
                    deliveries = []
                    for path in runnable:
                        delivered.add(path)
                        parsed = docs.parse_task_run_path(path)
                        assert parsed is not None
                        # Two deliveries of the same event, to two workers on two connections.
                        for target in (store, other):
                            deliveries.append(
                                handle_task_run(target, parsed[0], parsed[1], context)
                            )
                    outcomes = await asyncio.gather(*deliveries)
                    actions += [o.action for o in outcomes]
            finally:
                await context.models.aclose()

        actions = asyncio.run(deliver_all_twice())
        assert sorted(actions) == ["noop"] * 5 + ["succeeded"] * 5
        assert_chain_fan_join_succeeded(store, run_id)
        # A late redelivery of a finished task's event does nothing either.
        assert deliver(store, run_id, "start", fake_registry) == "noop"
    assert fake_server.count() == 6


def test_two_dispatchers_on_one_store_never_run_a_task_twice(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.05
    with open_store(store_url) as first, open_store(store_url) as second:
        run_ids = [submit_job(first, chain_fan_join_job()) for _ in range(3)]

        async def both() -> None:
            contexts = [context_for(fake_registry), context_for(fake_registry)]
            try:
                await asyncio.gather(
                    Dispatcher(first, contexts[0], workers=3).run(until_idle=True),
                    Dispatcher(second, contexts[1], workers=3).run(until_idle=True),
                )
            finally:
                for context in contexts:
                    await context.models.aclose()

        asyncio.run(both())
        for run_id in run_ids:
            assert_chain_fan_join_succeeded(first, run_id)
    prompts = prompts_seen(fake_server)
    assert len(prompts) == 18
    assert len(set(prompts)) == 6  # the same 6 prompts per run, each once per run


def test_deadline_hands_the_rest_of_a_task_to_a_new_invocation(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.05
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(4))

        async def invocations() -> list[str]:
            actions = []
            context = context_for(fake_registry)
            try:
                for _ in range(10):
                    # Less than the margin is always left, so each invocation runs exactly
                    # one step (every invocation makes progress) and hands the rest off.
                    outcome = await handle_task_run(
                        store,
                        run_id,
                        "only",
                        context,
                        deadline=time.monotonic() + 100.0,
                        handoff_margin=1000.0,
                    )
                    actions.append(outcome.action)
                    if outcome.action == "succeeded":
                        break
            finally:
                await context.models.aclose()
            return actions

        actions = asyncio.run(invocations())
        assert actions == ["handed_off", "handed_off", "handed_off", "succeeded"]
        doc = store.get(docs.task_run_path(run_id, "only"))
        assert doc is not None and doc["handoffs"] == 3 and doc["attempt"] == 4
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        assert len(job_run.tasks[0].steps) == 4
    assert fake_server.count() == 4


def test_expired_lease_of_a_dead_worker_is_picked_up(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(2))
        path = docs.task_run_path(run_id, "only")
        # A worker claimed the task and died: its lease runs out 0.5 s from now.
        store.run_transaction(
            lambda tx: tx.update(
                path,
                {
                    "status": Status.RUNNING,
                    "attempt": 1,
                    "lease_owner": "dead-worker",
                    "lease_expires_at": time.time() + 0.5,
                },
            )
        )
        assert deliver(store, run_id, "only", fake_registry) == "noop"  # the lease is live
        run_dispatcher(store, fake_registry)  # --until_idle waits for the lease, then runs it
        doc = store.get(path)
        assert doc is not None
        assert doc["status"] == Status.SUCCEEDED and doc["attempt"] == 2
    assert fake_server.count() == 2


def test_failed_task_fails_the_job_and_skips_what_can_no_longer_run(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_fan_join_job())

        async def run_until_branch() -> None:
            context = context_for(fake_registry)
            try:
                for task in ("start", "middle"):
                    await handle_task_run(store, run_id, task, context)
                fake_server.fail_next(3, status=500)
                outcome = await handle_task_run(store, run_id, "left", context)
                assert outcome.action == "failed"
                assert (await handle_task_run(store, run_id, "right", context)).action == (
                    "succeeded"
                )
            finally:
                await context.models.aclose()

        asyncio.run(run_until_branch())
        job_run = read_job_run(store, run_id)
        assert job_run is not None
        statuses = {t.task_id: t.status for t in job_run.tasks}
        assert statuses == {
            "start": run_pb2.RUN_STATUS_SUCCEEDED,
            "middle": run_pb2.RUN_STATUS_SUCCEEDED,
            "left": run_pb2.RUN_STATUS_FAILED,
            "right": run_pb2.RUN_STATUS_SUCCEEDED,
            "join": run_pb2.RUN_STATUS_SKIPPED,
        }
        assert job_run.status == run_pb2.RUN_STATUS_FAILED
        assert "task 'left' failed" in job_run.error.message
        left = next(t for t in job_run.tasks if t.task_id == "left")
        assert left.steps[-1].error.http_status == 500
        doc = store.get(docs.job_run_path(run_id))
        assert doc is not None
        assert (doc["tasks_succeeded"], doc["tasks_failed"], doc["tasks_skipped"]) == (3, 1, 1)
        assert "finished_at" in doc


@pytest.mark.timeout(90)
def test_sigkilled_dispatcher_resumes_without_repeating_persisted_steps(
    store_url: str,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    steps = 6
    kill_after = random.randint(1, steps - 2)
    fake_server.latency_seconds = 0.2
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(steps))
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
        first = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        steps_collection = docs.step_runs_collection(run_id, "only")
        deadline = time.monotonic() + 30
        while len(store.list(steps_collection)) < kill_after:
            assert time.monotonic() < deadline, "the first dispatcher made no progress"
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.stderr is not None
        first.stderr.close()
        persisted = len(store.list(steps_collection))
        assert kill_after <= persisted < steps

        second = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, timeout=60)
        assert second.returncode == 0, second.stderr.decode()
        job_run = read_job_run(store, run_id)
        assert job_run is not None
        assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
        assert len(job_run.tasks[0].steps) == steps
    prompts = prompts_seen(fake_server)
    for index in range(persisted):
        calls = [p for p in prompts if p.startswith(f"step {index} ")]
        assert len(calls) == 1, f"persisted step {index} was called {len(calls)} times"
    assert len(prompts) <= steps + 1  # at most the step in flight at the kill is repeated


def test_sweeper_requeues_only_expired_leases_and_the_trigger_resumes_them(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    from llm_scheduler.execution.sweeper import requeue_expired_leases

    with open_store(store_url) as store:
        dead = submit_job(store, long_task_job(1))
        alive = submit_job(store, long_task_job(1))
        for run_id, expiry in ((dead, time.time() - 1), (alive, time.time() + 60)):
            path = docs.task_run_path(run_id, "only")
            fields = {"status": Status.RUNNING, "lease_owner": "w", "lease_expires_at": expiry}

            def lease(tx: Transaction, path: str = path, fields: dict[str, Any] = fields) -> None:
                tx.update(path, fields)

            store.run_transaction(lease)
        assert requeue_expired_leases(store) == [docs.task_run_path(dead, "only")]
        assert requeue_expired_leases(store) == []  # idempotent
        doc = store.get(docs.task_run_path(dead, "only"))
        assert doc is not None and doc["status"] == Status.PENDING
        # The requeue is a write: its event (here, a direct delivery) runs the task.
        assert deliver(store, dead, "only", fake_registry) == "succeeded"
        still = store.get(docs.task_run_path(alive, "only"))
        assert still is not None and still["status"] == Status.RUNNING


def test_task_outputs_larger_than_one_document_are_stored_out_of_line(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # The responses are stored out of line (tests/execution/test_blobs.py), and so are the
    # task's outputs holding both (2.2 MB, over one document): large values work in a store as
    # they do in process, and the task-run document stays small.
    fake_server.responder = lambda provider, body: "x" * 1_100_000
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(2))
        assert deliver(store, run_id, "only", fake_registry) == "succeeded"
        task_doc = store.get(docs.task_run_path(run_id, "only"))
        assert task_doc is not None and "outputs" in task_doc["$blobs"]
        assert len(json.dumps(task_doc)) < docs.INLINE_FIELD_BYTES * 2
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        outputs = struct_to_dict(job_run.tasks[0].outputs)
        assert sorted(len(str(v)) for v in outputs.values())[-2:] == [1_100_000] * 2
        assert [len(s.response_text) for s in job_run.tasks[0].steps[:2]] == [1_100_000] * 2
        assert struct_to_dict(job_run.outputs)["only"] == outputs
    assert fake_server.count() == 2


def test_a_20_mb_answer_works_under_a_store_as_in_process(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # It used to succeed in process and fail the task under a store (1 MiB per document).
    answer = "z" * 20_000_000
    fake_server.responder = lambda provider, body: answer
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_id = submit_job(store, long_task_job(1))
        assert deliver(store, run_id, "only", fake_registry) == "succeeded"
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        assert job_run.tasks[0].steps[0].response_text == answer
        assert struct_to_dict(job_run.outputs)["only"] == {"v1": answer}


def embedding_job() -> config_pb2.JobConfig:
    """A query, then an embedding of its answer (a long vector) and one of the next task."""

    def embed(key: str, text: str, dimensions: int, output: str) -> dict[str, Any]:
        return {
            "step_type": "STEP_TYPE_EMBEDDING",
            "embedding_config": {"model_key": key, "input": text, "dimensions": dimensions},
            "output_config": {"payload": {output: "%response%"}},
        }

    tasks = [
        {
            "task_id": "first",
            "steps": [
                query("summarize %topic%", {"summary": ""}),
                embed("FAKE_GEMINI_EMBEDDING", "%summary%", 4000, "long"),
            ],
            "output_config": {"payload": {"summary": "", "long": ""}},
            "next_task": "second",
        },
        {
            "task_id": "second",
            "steps": [embed("FAKE_OPENAI_EMBEDDING", "again: %summary%", 3, "short")],
        },
    ]
    text = json.dumps(
        {"job_id": "emb", "tasks": tasks, "input_config": {"payload": {"topic": "tides"}}}
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def test_embedding_steps_run_event_driven_with_vectors_usage_and_cost(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, embedding_job())
        run_dispatcher(store, fake_registry)
        # A redelivered event finds the work done: no model is called again.
        assert deliver(store, run_id, "first", fake_registry) != "succeeded"
        assert deliver(store, run_id, "second", fake_registry) != "succeeded"
        # The 4,000 numbers (over 64 KiB of JSON) went out of line, as large responses do.
        step_doc = store.get(docs.step_run_path(run_id, "first", 1))
        assert step_doc is not None and "embedding" in step_doc["$blobs"]
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    long, short = job_run.tasks[0].steps[1], job_run.tasks[1].steps[0]
    assert len(long.embedding) == 4000 and len(short.embedding) == 3
    assert short.embedding_input == f"again: {job_run.tasks[0].steps[0].response_text}"
    for record in (long, short):
        assert record.step_type == config_pb2.STEP_TYPE_EMBEDDING
        assert record.usage.input_tokens > 0 and record.cost_usd > 0
        assert record.attempts == 1
    assert struct_to_dict(job_run.outputs)["second"] == {"short": list(short.embedding)}
    assert struct_to_dict(job_run.tasks[0].outputs)["long"] == list(long.embedding)
    assert job_run.cost_usd == pytest.approx(
        sum(s.cost_usd for t in job_run.tasks for s in t.steps)
    )
    assert [r.path.rsplit("/", 1)[-1] for r in fake_server.requests] == [
        "completions",
        "gemini-embedding-fake:batchEmbedContents",
        "embeddings",
    ]

"""Cancelling event-driven runs: pending, mid-step and completing tasks; idempotence; resume."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from typing import Any

import pytest

from llm_scheduler import FunctionRegistry, ModelClient, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.errors import UserError
from llm_scheduler.execution import cancel, completion
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.events import read_events
from llm_scheduler.execution.protocol import Outcome, handle_task_run, run_config
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.execution.sweeper import sweep
from llm_scheduler.store import Store, open_store
from llm_scheduler.v1 import config_pb2, run_pb2


class Gate:
    """A function step that counts its calls and can hold one of them until released."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.held = ""
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def hold(self, key: str) -> None:
        """Holds the call for ``key`` (events made in the running loop)."""
        self.held = key
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, key: str) -> str:
        self.calls[key] += 1
        if key == self.held:
            self.held = ""
            self.entered.set()
            await self.release.wait()
        return f"done {key}"


def gate_step(key: str) -> dict[str, Any]:
    return {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "gate", "request": {"key": key}},
        "output_config": {"payload": {key.replace("-", "_"): "%response%"}},
    }


def gate_job(first_steps: int, *, fan_out: int = 0) -> config_pb2.JobConfig:
    """``first`` (``first_steps`` steps) then ``after``, or ``fan_out`` tasks after it."""
    after = [f"after{i}" for i in range(fan_out)] if fan_out else ["after"]
    tasks = [
        {
            "task_id": "first",
            "steps": [gate_step(f"first-{i}") for i in range(first_steps)],
            "next_tasks": after,
        },
        *({"task_id": task_id, "steps": [gate_step(f"{task_id}-0")]} for task_id in after),
    ]
    return loads(
        json.dumps({"job_id": "gated", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )


def gate_context(gate: Gate) -> RunContext:
    functions = FunctionRegistry.with_builtins()
    functions.register(gate, "gate")
    return RunContext(models=ModelClient(offline=True), functions=functions)


def dispatch(store: Store, gate: Gate) -> None:
    asyncio.run(Dispatcher(store, gate_context(gate), workers=4).run(until_idle=True))


def job_doc(store: Store, run_id: str) -> dict[str, Any]:
    doc = store.get(docs.job_run_path(run_id))
    assert doc is not None
    return doc


def task_doc(store: Store, run_id: str, task_id: str) -> dict[str, Any] | None:
    return store.get(docs.task_run_path(run_id, task_id))


async def run_held(
    store: Store, run_id: str, gate: Gate, key: str, lease_seconds: float
) -> tuple[asyncio.Task[Outcome], str]:
    """Starts task ``first`` in the background; returns once the step ``key`` is in flight."""
    gate.hold(key)
    worker = asyncio.create_task(
        handle_task_run(
            store,
            run_id,
            "first",
            gate_context(gate),
            worker_id="worker-held",
            lease_seconds=lease_seconds,
        )
    )
    await gate.entered.wait()
    return worker, "worker-held"


def test_a_pending_run_is_cancelled_and_nothing_of_it_runs(store_url: str) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(2))
        assert cancel_run(store, run_id, reason="not today") == ["first"]
        job = job_doc(store, run_id)
        assert job["status"] == Status.CANCELLED and job["finished_at"]
        assert job["error"] == {"type": "Cancelled", "message": "not today"}
        assert job["tasks_cancelled"] == 1 and job["tasks_succeeded"] == 0
        task = task_doc(store, run_id, "first")
        assert task is not None and task["status"] == Status.CANCELLED
        assert task["error"]["message"] == "not today"

        dispatch(store, gate)  # finds nothing to run
        later = time.time() + 10_000
        swept = sweep(store, clock=lambda: later)
        assert (swept.expired, swept.stale, swept.reconciled) == ([], [], [])
        assert gate.calls == {}
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_CANCELLED
        assert [t.status for t in job_run.tasks] == [run_pb2.RUN_STATUS_CANCELLED]
        assert job_run.error.message == "not today"

        # Cancelling again is a no-op.
        assert cancel_run(store, run_id) == []
        assert job_doc(store, run_id) == job


def test_cancelling_a_finished_or_unknown_run_is_a_user_error(store_url: str) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        done = submit_job(store, gate_job(1))
        dispatch(store, gate)
        assert job_doc(store, done)["status"] == Status.SUCCEEDED
        with pytest.raises(UserError, match=f"job run '{done}' already succeeded"):
            cancel_run(store, done)
        assert job_doc(store, done)["status"] == Status.SUCCEEDED

        failing = loads(
            json.dumps(
                {
                    "job_id": "bad",
                    "tasks": [
                        {
                            "task_id": "parse",
                            "steps": [
                                {
                                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                                    "function_call_config": {
                                        "function_name": "json_parse",
                                        "request": "not json",
                                    },
                                }
                            ],
                        }
                    ],
                }
            ),
            config_pb2.JobConfig,
            ConfigFormat.JSON,
        )
        failed = submit_job(store, failing)
        dispatch(store, gate)
        with pytest.raises(UserError, match="already failed"):
            cancel_run(store, failed)
        with pytest.raises(UserError, match="no job run 'nope'"):
            cancel_run(store, "nope")


def test_a_running_task_stops_before_its_next_step_and_resume_finishes_the_run(
    store_url: str,
) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(3))
        path = docs.task_run_path(run_id, "first")

        async def cancel_mid_step() -> Outcome:
            # A short lease: renewed every 0.1 s, which is when the worker learns of the cancel.
            worker, owner = await run_held(store, run_id, gate, "first-0", lease_seconds=0.3)
            assert await asyncio.to_thread(cancel_run, store, run_id) == ["first"]
            cancelled = await store.call(store.get, path)
            assert cancelled is not None and cancelled["status"] == Status.CANCELLED
            assert cancelled["lease_owner"] == owner  # kept: the cancel is meant for it
            # Wait for a renewal to see the cancel (it renews the CANCELLED task's lease).
            seen = cancelled["lease_expires_at"]
            while (await store.call(store.get, path) or {})["lease_expires_at"] == seen:
                await asyncio.sleep(0.01)
            gate.release.set()  # the step in flight finishes
            return await worker

        outcome = asyncio.run(cancel_mid_step())
        assert outcome.action == "cancelled"
        assert gate.calls == {"first-0": 1}  # no step started after the cancel was seen
        steps = store.list(docs.step_runs_collection(run_id, "first"))
        assert len(steps) == 1  # the step in flight is kept
        task = task_doc(store, run_id, "first")
        assert task is not None and task["status"] == Status.CANCELLED
        assert task["lease_owner"] == "" and task["lease_expires_at"] == 0.0
        assert task_doc(store, run_id, "after") is None
        assert job_doc(store, run_id)["status"] == Status.CANCELLED
        finished = [e for _, e in read_events(store, run_id) if e.kind == "task_finished"]
        assert [e.detail for e in finished] == ["cancelled"]

        # Resume: the task continues after its kept step, and the run finishes.
        assert resume_run(store, run_id) == ["first"]
        resumed = task_doc(store, run_id, "first")
        assert resumed is not None and resumed["status"] == Status.PENDING
        dispatch(store, gate)
        job_run = read_job_run(store, run_id)
        assert job_run is not None
        assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
        assert [len(t.steps) for t in job_run.tasks] == [3, 1]
        job = job_doc(store, run_id)
        assert job["tasks_succeeded"] == 2 and job.get("tasks_cancelled") is None
    assert gate.calls == {"first-0": 1, "first-1": 1, "first-2": 1, "after-0": 1}


def test_a_task_completing_after_the_cancel_keeps_its_step_and_starts_no_successor(
    store_url: str,
) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(1))

        async def cancel_last_step() -> Outcome:
            # A long lease: no renewal sees the cancel; the completion itself is refused.
            worker, _ = await run_held(store, run_id, gate, "first-0", lease_seconds=60)
            assert await asyncio.to_thread(cancel_run, store, run_id) == ["first"]
            gate.release.set()
            return await worker

        assert asyncio.run(cancel_last_step()).action == "cancelled"
        assert len(store.list(docs.step_runs_collection(run_id, "first"))) == 1
        task = task_doc(store, run_id, "first")
        assert task is not None and task["status"] == Status.CANCELLED
        assert task["lease_owner"] == ""
        assert task_doc(store, run_id, "after") is None
        run = run_config(store, run_id)
        assert run is not None
        assert completion.reconcile_run(store, run, time.time()) == "done"
        assert job_doc(store, run_id)["status"] == Status.CANCELLED

        assert resume_run(store, run_id) == ["first"]
        dispatch(store, gate)
        assert job_doc(store, run_id)["status"] == Status.SUCCEEDED
    assert gate.calls == {"first-0": 1, "after-0": 1}  # the kept step was not called again


def test_a_resume_while_the_step_is_still_in_flight_gives_the_task_back_to_its_worker(
    store_url: str,
) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(2))

        async def cancel_and_resume() -> Outcome:
            worker, owner = await run_held(store, run_id, gate, "first-0", lease_seconds=60)
            assert await asyncio.to_thread(cancel_run, store, run_id) == ["first"]
            assert await asyncio.to_thread(resume_run, store, run_id) == ["first"]
            task = await store.call(store.get, docs.task_run_path(run_id, "first"))
            assert task is not None and task["status"] == Status.RUNNING
            assert task["lease_owner"] == owner  # not PENDING: nobody else starts the step
            gate.release.set()
            return await worker

        assert asyncio.run(cancel_and_resume()).action == "succeeded"
        dispatch(store, gate)
        assert job_doc(store, run_id)["status"] == Status.SUCCEEDED
    assert gate.calls == {"first-0": 1, "first-1": 1, "after-0": 1}


def test_a_join_released_after_the_cancel_is_created_cancelled(store_url: str) -> None:
    gate = Gate()
    tasks = [
        {"task_id": "start", "steps": [gate_step("start-0")], "next_tasks": ["left", "right"]},
        {"task_id": "left", "steps": [gate_step("left-0")], "next_task": "join"},
        {"task_id": "right", "steps": [gate_step("right-0")], "next_task": "join"},
        {"task_id": "join", "steps": [gate_step("join-0")]},
    ]
    job = loads(
        json.dumps({"job_id": "j", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )
    with open_store(store_url) as store:
        run_id = submit_job(store, job)

        async def deliver(task_id: str) -> str:
            return (await handle_task_run(store, run_id, task_id, gate_context(gate))).action

        for task_id in ("start", "left", "right"):
            assert asyncio.run(deliver(task_id)) == "succeeded"
        # As if "right" had committed its completion and not yet released the join.
        join_path = docs.task_run_path(run_id, "join")
        store.run_transaction(lambda tx: tx.set(join_path, {"status": Status.RESET}))
        assert cancel_run(store, run_id) == []
        run = run_config(store, run_id)
        assert run is not None
        # Not repaired as a stalled run would be (that would create the join PENDING).
        assert completion.reconcile_run(store, run, time.time()) == "done"
        assert (store.get(join_path) or {})["status"] == Status.RESET
        assert completion.release_joins(store, run, "right", time.time()) == []
        join = store.get(join_path)
        assert join is not None and join["status"] == Status.CANCELLED
        assert job_doc(store, run_id)["status"] == Status.CANCELLED

        assert resume_run(store, run_id) == ["join"]
        dispatch(store, gate)
        assert job_doc(store, run_id)["status"] == Status.SUCCEEDED
    assert gate.calls == {"start-0": 1, "left-0": 1, "right-0": 1, "join-0": 1}


def test_many_pending_tasks_are_cancelled_in_batches(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cancel, "BATCH", 2)  # Firestore's limit is 500 writes; here 2 tasks
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(1, fan_out=5))
        action = asyncio.run(handle_task_run(store, run_id, "first", gate_context(gate))).action
        assert action == "succeeded"
        stopped = cancel_run(store, run_id)
        assert stopped == [f"after{i}" for i in range(5)]
        statuses = {
            path.rsplit("/", 1)[1]: d["status"]
            for path, d in store.list(docs.task_runs_collection(run_id))
        }
        assert statuses == {"first": Status.SUCCEEDED} | {
            f"after{i}": Status.CANCELLED for i in range(5)
        }
        job = job_doc(store, run_id)
        assert (job["tasks_succeeded"], job["tasks_cancelled"]) == (1, 5)


def test_the_sweeper_cancels_what_an_interrupted_cancel_left_runnable(store_url: str) -> None:
    gate = Gate()
    with open_store(store_url) as store:
        run_id = submit_job(store, gate_job(1, fan_out=2))
        assert asyncio.run(handle_task_run(store, run_id, "first", gate_context(gate))).action == (
            "succeeded"
        )
        assert cancel_run(store, run_id) == ["after0", "after1"]
        # As if the cancel had been interrupted before these: one pending, one whose worker died.
        now = time.time()
        for task_id, fields in (
            ("after0", {"status": Status.PENDING, "pending_since": now}),
            (
                "after1",
                {"status": Status.RUNNING, "lease_owner": "dead", "lease_expires_at": now + 60},
            ),
        ):
            path = docs.task_run_path(run_id, task_id)
            store.set(path, {**(store.get(path) or {}), **fields})
        later = now + 10_000
        swept = sweep(store, clock=lambda: later)
        assert (swept.expired, swept.stale) == ([], [])
        for task_id in ("after0", "after1"):
            doc = task_doc(store, run_id, task_id)
            assert doc is not None and doc["status"] == Status.CANCELLED
        assert job_doc(store, run_id)["status"] == Status.CANCELLED
    assert gate.calls == {"first-0": 1}


def test_a_run_still_going_after_a_failed_task_can_be_cancelled(store_url: str) -> None:
    gate = Gate()
    bad_step = {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "json_parse", "request": "not json"},
    }
    tasks = [
        {"task_id": "first", "steps": [gate_step("first-0")], "next_tasks": ["bad", "good"]},
        {"task_id": "bad", "steps": [bad_step]},
        {"task_id": "good", "steps": [gate_step("good-0")]},
    ]
    job = loads(
        json.dumps({"job_id": "b", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )
    with open_store(store_url) as store:
        run_id = submit_job(store, job)

        async def deliver(task_id: str) -> str:
            return (await handle_task_run(store, run_id, task_id, gate_context(gate))).action

        assert asyncio.run(deliver("first")) == "succeeded"
        assert asyncio.run(deliver("bad")) == "failed"
        failed = job_doc(store, run_id)
        assert failed["status"] == Status.FAILED and not failed.get("finished_at")
        assert cancel_run(store, run_id) == ["good"]
        cancelled = job_doc(store, run_id)
        assert cancelled["status"] == Status.CANCELLED and cancelled["finished_at"]
        message = cancelled["error"]["message"]
        assert message.startswith("cancelled by user (after: task 'bad' failed: ")
        counts = [cancelled[f"tasks_{s}"] for s in ("succeeded", "failed", "cancelled")]
        assert counts == [1, 1, 1]
    assert gate.calls == {"first-0": 1}

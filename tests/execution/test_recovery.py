"""Recovery: lost triggers, errors outside the steps, runs stopped between two writes, bad ids."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from llm_scheduler import ModelClient, ModelRegistry, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.errors import UserError
from llm_scheduler.execution import blobs, completion
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import handle_task_run, run_config
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import DEFAULT_MAX_ATTEMPTS, submit_job
from llm_scheduler.execution.sweeper import requeue_stale_pending, sweep
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for
from tests.execution.test_event_driven import (
    assert_chain_fan_join_succeeded,
    chain_fan_join_job,
    deliver,
    long_task_job,
    run_dispatcher,
)


def one_function_task_job() -> config_pb2.JobConfig:
    text = json.dumps(
        {
            "job_id": "fn",
            "tasks": [
                {
                    "task_id": "only",
                    "steps": [
                        {
                            "step_type": "STEP_TYPE_FUNCTION_CALL",
                            "function_call_config": {
                                "function_name": "template",
                                "request": {"text": "hello %who%"},
                            },
                            "output_config": {"payload": {"greeting": "%response%"}},
                        }
                    ],
                }
            ],
            "input_config": {"payload": {"who": "owls"}},
        }
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def _offline_dispatch(store: Store) -> None:
    context = RunContext(models=ModelClient(offline=True))
    asyncio.run(Dispatcher(store, context, workers=4).run(until_idle=True))


def test_a_task_pending_past_the_grace_period_is_triggered_again_and_runs_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # The trigger of the start task was lost: nothing ran it. The sweep rewrites it (which is
    # what triggers it again in the cloud); it never touches a task that is young or claimed.
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_fan_join_job())
        path = docs.task_run_path(run_id, "start")
        before = store.get(path)
        assert before is not None
        assert requeue_stale_pending(store, grace=300) == []  # too young
        later = time.time() + 301
        assert requeue_stale_pending(store, grace=300, clock=lambda: later) == [path]
        after = store.get(path)
        assert after is not None and after["status"] == Status.PENDING
        assert after["requeues"] == 1 and after["pending_since"] == later
        # A second sweeper that read the old version changes nothing more.
        assert requeue_stale_pending(store, grace=300, clock=lambda: later) == []

        # The re-triggered delivery and a late original one arrive together: one runs it.
        async def both() -> list[str]:
            contexts = [context_for(fake_registry), context_for(fake_registry)]
            try:
                outcomes = await asyncio.gather(
                    *(handle_task_run(store, run_id, "start", c) for c in contexts)
                )
            finally:
                for c in contexts:
                    await c.models.aclose()
            return sorted(o.action for o in outcomes)

        assert asyncio.run(both()) == ["noop", "succeeded"]
        assert fake_server.count() == 1
        run_dispatcher(store, fake_registry)
        assert_chain_fan_join_succeeded(store, run_id)
        # Finished tasks are never re-triggered.
        much_later = time.time() + 10_000
        assert sweep(store, clock=lambda: much_later).stale == []
    assert fake_server.count() == 6


def test_an_error_outside_the_steps_is_recorded_and_attempts_are_bounded(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # A persisted step whose blob went missing cannot be read back: each claim records the
    # error and gives the task back, and once its attempts are used up the task fails with
    # that error. The dispatcher then finds nothing left and exits.
    fake_server.responder = lambda provider, body: "y" * 100_000  # stored as a blob
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(2))
        path = docs.task_run_path(run_id, "only")
        store.set(path, {**(store.get(path) or {}), "status": Status.RUNNING})
        # Persist step 0 as a crashed worker would have, then lose its blob.
        record = run_pb2.StepRun(step_id="0", index=0, status=run_pb2.RUN_STATUS_SUCCEEDED)
        record.response_text = "y" * 100_000
        record.outputs.update({"v1": "y" * 100_000})
        blobs.put_step(store, docs.step_run_path(run_id, "only", 0), docs.record_to_doc(record))
        step = store.get(docs.step_run_path(run_id, "only", 0)) or {}
        sha = step["$blobs"]["response_text"]
        store.set(path, {**(store.get(path) or {}), "status": Status.PENDING})
        store.set(blobs.blob_path(sha), {"size": 1, "content": "tampered"})

        actions = [
            deliver(store, run_id, "only", fake_registry) for _ in range(DEFAULT_MAX_ATTEMPTS)
        ]
        assert actions == ["released"] * (DEFAULT_MAX_ATTEMPTS - 1) + ["failed"]
        doc = store.get(path)
        assert doc is not None and doc["status"] == Status.FAILED
        assert "does not match its hash" in doc["error"]["message"]
        assert deliver(store, run_id, "only", fake_registry) == "noop"
        run_dispatcher(store, fake_registry)  # returns: nothing is left to run
        job = store.get(docs.job_run_path(run_id))
        assert job is not None and job["status"] == Status.FAILED and job["finished_at"]
        assert "does not match its hash" in job["error"]["message"]
    assert fake_server.count() == 0  # step 1 never ran: step 0 could not be read back


def test_a_task_whose_workers_keep_dying_fails_after_its_attempts(store_url: str) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, long_task_job(1))
        path = docs.task_run_path(run_id, "only")
        doc = store.get(path) or {}
        # Every claim so far ended with the worker gone (the lease expired).
        store.set(
            path,
            {
                **doc,
                "status": Status.RUNNING,
                "attempt": DEFAULT_MAX_ATTEMPTS,
                "lease_owner": "worker-dead",
                "lease_expires_at": time.time() - 1,
                "last_error": "lease expired",
            },
        )
        _offline_dispatch(store)
        final = store.get(path)
        assert final is not None and final["status"] == Status.FAILED
        assert f"gave up after {DEFAULT_MAX_ATTEMPTS} attempts" in final["error"]["message"]
        job = store.get(docs.job_run_path(run_id))
        assert job is not None and job["status"] == Status.FAILED and job["finished_at"]


def test_a_run_stopped_between_a_completion_and_its_join_is_finished(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # The worker that completed the last branch died after its commit and before it created
    # the join: every branch succeeded, the join has no run, nothing is PENDING. An idle
    # dispatcher (or the sweeper) creates the join, and the run finishes.
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_fan_join_job())
        for task_id in ("start", "middle", "left", "right"):
            assert deliver(store, run_id, task_id, fake_registry) == "succeeded"
        join_path = docs.task_run_path(run_id, "join")
        assert store.get(join_path) is not None  # released by "right"
        # Undo the release, as if the process had died before it.
        store.run_transaction(lambda tx: tx.set(join_path, {"status": Status.RESET}))
        run = run_config(store, run_id)
        assert run is not None
        assert completion.reconcile_run(store, run, time.time()) == "repaired"
        doc = store.get(join_path)
        assert doc is not None and doc["status"] == Status.PENDING
        run_dispatcher(store, fake_registry)
        assert_chain_fan_join_succeeded(store, run_id)
        assert completion.reconcile_run(store, run, time.time()) == "done"
    assert fake_server.count() == 6


def test_a_run_stopped_before_its_job_was_finished_is_finished_by_the_sweeper(
    store_url: str,
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, one_function_task_job())
        _offline_dispatch(store)
        job_path = docs.job_run_path(run_id)
        finished = store.get(job_path) or {}
        assert finished["status"] == Status.SUCCEEDED
        # As if the worker died after the task's commit, before the job's.
        store.set(job_path, {**finished, "status": Status.RUNNING, "finished_at": None})
        assert sweep(store).reconciled == []  # young: left to a live worker
        later = time.time() + 3600
        assert sweep(store, clock=lambda: later).reconciled == [run_id]
        again = store.get(job_path)
        assert again is not None and again["status"] == Status.SUCCEEDED
        assert again["outputs"] == finished["outputs"] == {"only": {"greeting": "hello owls"}}


@pytest.mark.parametrize(
    ("run_id", "task_id"),
    [("victim/task_runs/evil", "t"), ("ok", "a/b"), ("..", "t"), ("__x__", "t"), ("", "t")],
)
def test_ids_can_never_change_the_shape_of_a_path(run_id: str, task_id: str) -> None:
    with pytest.raises(UserError, match="ids become store paths"):
        docs.task_run_path(run_id, task_id)


def test_a_submitted_run_id_that_is_not_a_path_segment_is_refused(store_url: str) -> None:
    with open_store(store_url) as store:
        with pytest.raises(UserError, match="invalid run id"):
            submit_job(store, long_task_job(1), run_id="victim/task_runs/evil")
        assert store.find("task_runs", "status", [Status.PENDING]) == []


def test_a_run_submitted_offline_runs_offline_on_every_worker(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    # The dispatcher's own context calls the (fake) provider; the run says offline, so not one
    # call is made.
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_fan_join_job(), offline=True)
        run_dispatcher(store, fake_registry)
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        responses = [s.response_text for t in job_run.tasks for s in t.steps]
        assert responses and all(r.startswith("[offline") for r in responses)
    assert fake_server.count() == 0

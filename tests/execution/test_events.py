"""Progress events of event-driven runs: persisted in order, followed live, paged, never fatal."""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import threading
import time
from collections.abc import Sequence

import pytest

from llm_scheduler import ModelRegistry, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.errors import StoreError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.events import (
    event_document,
    event_from_record,
    event_to_record,
    follow_events,
    read_events,
)
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.base import Usage
from llm_scheduler.store import Store, open_store
from llm_scheduler.store.base import Doc
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for
from tests.execution.test_event_driven import query


def two_task_job() -> config_pb2.JobConfig:
    """first (two steps) -> second (one step)."""
    tasks = [
        {
            "task_id": "first",
            "steps": [query("one %topic%", {"a": ""}), query("two %a%", {"b": ""})],
            "next_task": "second",
        },
        {"task_id": "second", "steps": [query("three %b%", {"c": ""})]},
    ]
    text = json.dumps(
        {"job_id": "two", "tasks": tasks, "input_config": {"payload": {"topic": "owls"}}}
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def dispatch(store: Store, context: RunContext) -> None:
    async def body() -> None:
        try:
            await Dispatcher(store, context).run(until_idle=True)
        finally:
            await context.models.aclose()

    asyncio.run(body())


def kinds_of(events: list[run_pb2.RunEvent], task_id: str) -> list[str]:
    return [e.kind for e in events if e.task_id == task_id]


def test_events_are_persisted_in_order_with_usage_and_cost_and_page_by_id(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    heard: list[EngineEvent] = []
    context = context_for(fake_registry)
    context.on_event = heard.append
    with open_store(store_url) as store:
        run_id = submit_job(store, two_task_job())
        dispatch(store, context)
        pairs = read_events(store, run_id)

        ids = [event_id for event_id, _ in pairs]
        assert len(set(ids)) == len(ids) and ids == sorted(ids)
        events = [event for _, event in pairs]
        assert events[0].kind == "job_started"
        assert kinds_of(events, "first") == [
            "task_started",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "task_finished",
        ]
        assert kinds_of(events, "second") == [
            "task_started",
            "step_started",
            "step_finished",
            "task_finished",
        ]
        finished = [e for e in events if e.kind == "task_finished"]
        assert [(e.task_id, e.detail) for e in finished] == [
            ("first", "succeeded"),
            ("second", "succeeded"),
        ]
        # The second task starts only once the first one's completion was committed.
        order = [(e.task_id, e.kind) for e in events]
        assert order.index(("first", "task_finished")) < order.index(("second", "task_started"))
        for event in events:
            assert event.run_id == run_id and event.worker_id.startswith("worker-")
        times = [e.time.ToNanoseconds() for e in events]
        assert times == sorted(times)
        steps = [e for e in events if e.kind == "step_finished"]
        assert [(e.task_id, e.step_index, e.step_count) for e in steps] == [
            ("first", 0, 2),
            ("first", 1, 2),
            ("second", 0, 1),
        ]
        for step in steps:
            assert step.usage.input_tokens > 0 and step.usage.output_tokens > 0
            assert step.cost_usd > 0
        job_run = read_job_run(store, run_id)
        assert job_run is not None
        assert sum(s.cost_usd for s in steps) == pytest.approx(job_run.cost_usd)
        # The context's own listener still heard every event.
        assert [e.kind.value for e in heard] == [e.kind for e in events]

        # Pages: everything after an id, and nothing after the last one.
        assert read_events(store, run_id, after=ids[3]) == pairs[4:]
        assert read_events(store, run_id, after=ids[-1]) == []
        paged: list[str] = []
        after = ""
        while page := read_events(store, run_id, after=after)[:3]:
            paged += [event_id for event_id, _ in page]
            after = page[-1][0]
        assert paged == ids


def test_follow_events_yields_them_live_and_stops_once_the_run_finished(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.2
    received: list[tuple[float, run_pb2.RunEvent]] = []
    errors: list[BaseException] = []
    with open_store(store_url) as store, open_store(store_url) as watcher_store:
        run_id = submit_job(store, two_task_job())

        def follow() -> None:
            try:
                for event in follow_events(watcher_store, run_id, poll_timeout=0.2):
                    received.append((time.monotonic(), event))
            except BaseException as error:
                errors.append(error)

        follower = threading.Thread(target=follow)
        follower.start()
        dispatch(store, context_for(fake_registry))
        dispatched_at = time.monotonic()
        follower.join(timeout=30)
        assert not follower.is_alive(), "follow_events did not stop after the run finished"
        assert errors == []
        recorded = [event for _, event in read_events(store, run_id)]
    assert [event for _, event in received] == recorded
    # Live: the first events arrived while the dispatcher was still running the steps.
    assert received[0][0] < dispatched_at - 0.2
    assert received[-1][1].kind == "task_finished"


def test_a_failed_task_records_its_failure_and_following_a_finished_run_stops(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, two_task_job())
        fake_server.fail_next(3, status=500)
        dispatch(store, context_for(fake_registry))
        events = [event for _, event in read_events(store, run_id)]
        assert kinds_of(events, "first") == [
            "task_started",
            "step_started",
            "step_failed",
            "task_finished",
        ]
        assert events[-1].detail == "failed"
        assert "500" in events[-2].detail
        assert kinds_of(events, "second") == []  # skipped: it never ran
        started = time.monotonic()
        assert list(follow_events(store, run_id, poll_timeout=5.0)) == events
        assert time.monotonic() - started < 2.0  # no wait: every finished task has its event


class _RefusingEvents(SqliteStore):
    """An SQLite store that refuses to write progress events."""

    def create(self, path: str, data: Doc) -> bool:
        if "/events/" in path:
            raise StoreError(f"refusing {path}")
        return super().create(path, data)

    def create_all(self, items: Sequence[tuple[str, Doc]]) -> int:
        refused = [path for path, _ in items if "/events/" in path]
        if refused:
            raise StoreError(f"refusing {refused[0]}")
        return super().create_all(items)


def test_events_that_cannot_be_written_are_counted_and_logged_not_fatal(
    tmp_path: pathlib.Path,
    fake_server: FakeProviderServer,
    fake_registry: ModelRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="llm_scheduler.execution.events")
    with _RefusingEvents(tmp_path / "state.db") as store:
        run_id = submit_job(store, two_task_job())
        dispatch(store, context_for(fake_registry))
        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        assert read_events(store, run_id) == []
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cannot record the progress events" in m for m in messages) == 2  # one per task
    assert any("refusing job_runs/" in m for m in messages)
    counted = [m for m in messages if "could not be recorded" in m]
    assert counted == [
        f"7 progress events of run {run_id}, task first, could not be recorded",
        f"4 progress events of run {run_id}, task second, could not be recorded",
    ]


def test_a_record_round_trips_to_an_engine_event() -> None:
    event = EngineEvent(
        EventKind.STEP_FINISHED,
        "draft",
        1,
        3,
        "outline",
        "0.52s",
        "run-1",
        usage=Usage(10, 5, 2),
        cost_usd=0.25,
    )
    record = event_to_record(event, "worker-x")
    assert record.kind == "step_finished" and record.worker_id == "worker-x"
    assert abs(record.time.ToNanoseconds() - time.time_ns()) < 5 * 10**9
    assert event_from_record(record) == event
    assert event_from_record(run_pb2.RunEvent(kind="from_the_future")) is None


@pytest.mark.parametrize(
    "event",
    [
        EngineEvent(EventKind.TASK_STARTED, "t", name="T", detail="attempt 1", run_id="r"),
        EngineEvent(EventKind.STEP_STARTED, "t", 0, 3, "step 1"),
        EngineEvent(EventKind.STEP_FINISHED, "t", 2, 3, "s", "0.1s", usage=Usage(10, 5, 2)),
        EngineEvent(EventKind.STEP_FINISHED, "t", 1, 2, cost_usd=0.000123, usage=Usage(0, 7)),
        EngineEvent(EventKind.JOB_STARTED, name='ünïcode "quoted"\n', cost_usd=2.0),
        EngineEvent(EventKind.TASK_FINISHED, "t", detail="succeeded", cost_usd=float("nan")),
        EngineEvent(EventKind.STEP_FAILED, "t", 2**31, 0),
    ],
)
@pytest.mark.parametrize("time_ns", [1795978242642463000, 1795978242000000000, 1795978242000000007])
def test_event_documents_are_what_their_records_convert_to(
    event: EngineEvent, time_ns: int
) -> None:
    # The writer builds an event's document directly; it must be the record's, field for field.
    record = run_pb2.RunEvent()
    try:
        record = event_to_record(event, "worker-x")
    except ValueError:  # out of range for the record: the document is not built directly
        assert event_document(event, "run-1", "worker-x", time_ns) is None
        return
    record.run_id = "run-1"
    record.time.FromNanoseconds(time_ns)
    expected = docs.record_to_doc(record)
    built = event_document(event, "run-1", "worker-x", time_ns)
    if built is None:  # values a record treats specially (a cost that is not finite)
        assert event.cost_usd != event.cost_usd
        return
    assert json.dumps(built) == json.dumps(expected)

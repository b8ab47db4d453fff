"""Progress events of event-driven runs, persisted so a UI can follow a run and replay it.

Every event a claimed task run emits is also written to ``job_runs/{run_id}/events/{id}`` as a
`RunEvent`. Ids are ``{time_ns:020d}-{worker_id}-{n:06d}``: they sort in time order, the time
is strictly increasing within a process and worker ids differ between processes, so ids never
collide.

Writes must neither slow nor fail the run, so they go through one background thread per process
(in emit order, in batches: up to 50 ms of events in one commit) and a failed write is counted
and logged, never raised. The task's last event (``task_finished``) has the batch written at
once and waits, for a few seconds at most, until the task's events are written: an invocation
that returns (and a Cloud Function may be frozen right after) leaves none behind.

Writers on several machines, and the background thread, mean an event can become visible after
one with a later id. `follow_events` therefore re-reads a window behind the newest id it has seen
instead of only what comes after it.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import logging
import math
import threading
import time
from collections.abc import Iterator

from google.protobuf import timestamp_pb2

from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.errors import UserError
from llm_scheduler.execution import codec
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.models.base import Usage
from llm_scheduler.store.base import Doc, Store, document_id
from llm_scheduler.v1 import run_pb2

__all__ = [
    "EventSink",
    "context_with_event_sink",
    "event_document",
    "event_from_record",
    "event_to_record",
    "events_collection",
    "follow_events",
    "read_events",
    "tasks_with_last_events",
    "wait_for_event_writes",
]

logger = logging.getLogger(__name__)

# How long a task's last event waits for the task's events to be written.
_FLUSH_TIMEOUT_SECONDS = 5.0
# `follow_events` re-reads events up to this far behind the newest one it has seen, for events
# written late (by the background writer, or by a worker whose clock is behind).
_LATE_WRITE_WINDOW_NS = 60 * 10**9
# The most events written in one batch, and how long a batch waits for more.
_MAX_BATCH = 500
_LINGER_SECONDS = 0.05
# The task_finished details that mean the task will not run again.
_TERMINAL = frozenset({"succeeded", "failed"})


def events_collection(run_id: str) -> str:
    """The collection holding a job run's progress events."""
    return f"{docs.job_run_path(run_id)}/events"


def event_to_record(event: EngineEvent, worker_id: str) -> run_pb2.RunEvent:
    """An engine event as a `RunEvent` record, stamped with the current time."""
    return _record(event, worker_id, time.time_ns())


def event_from_record(record: run_pb2.RunEvent) -> EngineEvent | None:
    """The engine event a record holds; None for a kind this version does not know."""
    try:
        kind = EventKind(record.kind)
    except ValueError:
        return None
    usage = record.usage
    return EngineEvent(
        kind,
        task_id=record.task_id,
        step_index=record.step_index,
        step_count=record.step_count,
        name=record.name,
        detail=record.detail,
        run_id=record.run_id,
        usage=Usage(
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_input_tokens,
            usage.cache_write_input_tokens,
        ),
        cost_usd=record.cost_usd,
    )


class EventSink:
    """Where the progress events of one task run go: the store, beside the context's listener.

    Events are written by one background thread per process; emitting never waits. A task's
    ``task_finished`` event has its batch written at once, and `wait_written` (awaited by the
    protocol before an invocation returns, off the event loop) makes sure none is left behind.
    """

    def __init__(self, store: Store, run_id: str, worker_id: str, *, prompt: bool = True) -> None:
        """Creates the sink of one task run.

        Args:
            store: Where the events go.
            run_id: The run.
            worker_id: The worker, part of each event's id.
            prompt: Write a task's events as soon as it finishes (for `wait_written`); without,
                they go with the writer's next batch (fewer, larger commits).
        """
        self._sink = _Sink(store, run_id, worker_id.replace("/", "_") or "worker", prompt)

    def context(self, context: RunContext) -> RunContext:
        """``context`` whose events are also written to the store (its listener still gets all)."""
        sink = self._sink
        original = context.on_event

        def on_event(event: EngineEvent) -> None:
            sink.record(event)
            if original is not None:
                original(event)

        return dataclasses.replace(context, on_event=on_event)

    def wait_written(self, task_id: str) -> None:
        """Blocks until this task's events are written (at most a few seconds); logs failures."""
        self._sink.flush(task_id)


def wait_for_event_writes(timeout: float = _FLUSH_TIMEOUT_SECONDS) -> None:
    """Blocks until every progress event queued in this process is written (at most ``timeout``).

    For long-lived workers that do not wait after each task (`handle_task_run` with
    ``wait_for_events=False``), before they stop.
    """
    _WRITER.drain(timeout)


def context_with_event_sink(
    context: RunContext, store: Store, run_id: str, worker_id: str
) -> RunContext:
    """The context for one task run, whose events are also written to the store.

    The original listener, if any, still receives every event. Nothing waits for the events to
    be written: use `EventSink` to wait before a process may stop.
    """
    return EventSink(store, run_id, worker_id).context(context)


def read_events(store: Store, run_id: str, after: str = "") -> list[tuple[str, run_pb2.RunEvent]]:
    """The events of a run whose id sorts after ``after``, as ``(id, event)`` in id order."""
    found: list[tuple[str, run_pb2.RunEvent]] = []
    for path, doc in store.list(events_collection(run_id)):
        event_id = document_id(path)
        if event_id > after:
            found.append((event_id, docs.record_from_doc(doc, run_pb2.RunEvent)))
    found.sort(key=lambda pair: pair[0])
    return found


def follow_events(
    store: Store,
    run_id: str,
    *,
    poll_timeout: float = 1.0,
    stop_when_finished: bool = True,
    settle_timeout: float = 10.0,
) -> Iterator[run_pb2.RunEvent]:
    """Yields a run's events as they are written, from the first one.

    Between reads it waits for a store change, or ``poll_timeout`` seconds (Firestore's listener
    watches task runs, not events, so the timeout is what catches the last events). Events are
    yielded once each, in id order within a read; one written late may follow a later one.

    Args:
        store: Where the run lives.
        run_id: The job run.
        poll_timeout: The longest wait between reads.
        stop_when_finished: Stop once the job run is finished and the ``task_finished`` event of
            every task that succeeded or failed has been yielded; otherwise follow forever.
        settle_timeout: Stop anyway this many seconds after the run finished, when some
            ``task_finished`` event never comes (its worker died, or its write failed).

    Raises:
        UserError: The store has no such job run.
    """
    seen: set[str] = set()
    newest_ns = 0
    terminal: set[str] = set()
    finished_since: float | None = None
    while True:
        job_doc = store.get(docs.job_run_path(run_id)) if stop_when_finished else {}
        if job_doc is None:
            raise UserError(f"no job run {run_id!r} in {store.url}")
        expected: set[str] = set()
        if job_doc.get("finished_at"):
            finished_since = finished_since or time.monotonic()
            expected = tasks_with_last_events(store, run_id)
        after = f"{max(newest_ns - _LATE_WRITE_WINDOW_NS, 0):020d}" if newest_ns else ""
        for event_id, event in read_events(store, run_id, after=after):
            if event_id in seen:
                continue
            seen.add(event_id)
            newest_ns = max(newest_ns, _id_time_ns(event_id))
            if event.kind == EventKind.TASK_FINISHED.value and event.detail in _TERMINAL:
                terminal.add(event.task_id)
            yield event
        if finished_since is not None:
            if expected <= terminal:
                return
            if time.monotonic() - finished_since > settle_timeout:
                logger.warning(
                    "run %s finished, but no task_finished event was recorded for %s",
                    run_id,
                    ", ".join(sorted(expected - terminal)),
                )
                return
        store.wait_for_change(poll_timeout)


def tasks_with_last_events(store: Store, run_id: str) -> set[str]:
    """The tasks of a run whose last event (``task_finished``, succeeded or failed) is to come.

    Those that succeeded or failed by a claim of their own: a map's items report no
    ``task_finished`` (their map does), and a map failed by one of its items was failed by that
    item's worker, which reports only the item's steps.
    """
    task_docs = list(store.list(docs.task_runs_collection(run_id)))
    failed_by_item = {
        doc["map_task"]
        for _, doc in task_docs
        if doc.get("map_task") and doc.get("status") == Status.FAILED
    }
    expected: set[str] = set()
    for path, doc in task_docs:
        task_id = str(doc.get("task_id", document_id(path)))
        status = doc.get("status")
        if doc.get("map_task") or status not in (Status.SUCCEEDED, Status.FAILED):
            continue
        if status == Status.FAILED and task_id in failed_by_item:
            continue
        expected.add(task_id)
    return expected


# -- writing ------------------------------------------------------------------------------------


class _Sink:
    """Writes the events of one task run; counts and logs what it could not write."""

    def __init__(self, store: Store, run_id: str, worker_id: str, prompt: bool = True) -> None:
        self.store = store
        self.run_id = run_id
        self.worker_id = worker_id
        self.prompt = prompt
        self.failures = 0
        self._pending = 0
        self._idle = threading.Condition()
        # The task's last event was recorded, and whether its failure count was logged.
        self._finished_task = ""
        self._reported = False
        self._collection = ""  # the events' collection path, checked once

    def record(self, event: EngineEvent) -> None:
        if event.run_id not in ("", self.run_id):
            return
        time_ns, event_id = _next_id(self.worker_id)
        with self._idle:
            self._pending += 1
        if not self._collection:
            self._collection = events_collection(self.run_id)
        # The document is built on the writer thread, off the run's path.
        _WRITER.put(_Write(self, f"{self._collection}/{event_id}", event, time_ns))
        if event.kind is EventKind.TASK_FINISHED:
            with self._idle:
                self._finished_task = event.task_id
            if self.prompt:
                _WRITER.write_now()

    def document(self, event: EngineEvent, time_ns: int) -> Doc:
        doc = event_document(event, self.run_id, self.worker_id, time_ns)
        if doc is None:
            record = _record(event, self.worker_id, time_ns)
            record.run_id = self.run_id
            doc = docs.record_to_doc(record)
        return doc

    def written(self, error: Exception | None, count: int = 1) -> None:
        # Runs on the writer thread, once per batch of this sink's events.
        if error is not None:
            self.failures += count
            if self.failures == count:
                logger.warning(
                    "cannot record the progress events of run %s in %s (%s: %s); the run goes "
                    "on without them",
                    self.run_id,
                    self.store.url,
                    type(error).__name__,
                    error,
                )
        with self._idle:
            self._pending -= count
            self._idle.notify_all()
            report = self._pending == 0 and bool(self._finished_task)
        if report:
            self._report(self._finished_task)

    def _report(self, task_id: str) -> None:
        """Logs, once, how many of the task's events could not be written."""
        with self._idle:
            if self._reported or not self.failures:
                return
            self._reported = True
        logger.warning(
            "%d progress events of run %s, task %s, could not be recorded",
            self.failures,
            self.run_id,
            task_id,
        )

    def flush(self, task_id: str) -> None:
        _WRITER.write_now()
        with self._idle:
            done = self._idle.wait_for(lambda: self._pending == 0, _FLUSH_TIMEOUT_SECONDS)
            pending = self._pending
        if not done:
            logger.warning(
                "%d progress events of run %s, task %s, are still being written after %.0f s",
                pending,
                self.run_id,
                task_id,
                _FLUSH_TIMEOUT_SECONDS,
            )
        self._report(task_id)


class _Write:
    """One event to write (a plain class: a frozen dataclass costs microseconds to make)."""

    __slots__ = ("event", "path", "sink", "time_ns")

    def __init__(self, sink: _Sink, path: str, event: EngineEvent, time_ns: int) -> None:
        self.sink = sink
        self.path = path
        self.event = event
        self.time_ns = time_ns


class _Writer:
    """One background thread per process that writes events in the order they were emitted.

    Events are written in batches, one commit each: the thread waits up to `_LINGER_SECONDS`
    after the first event of a batch for more to come (a step emits two within microseconds),
    unless a task's last event asks for them to be written now. Writing each event on its own
    cost more than the step it reported (a commit, a thread wake-up and a GIL hand-off each).
    """

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._batch: list[_Write] = []
        self._now = False
        self._thread: threading.Thread | None = None
        self._pending = 0

    def put(self, write: _Write) -> None:
        with self._ready:
            # Started lazily, and again in a forked child (where the thread does not exist).
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="llm-scheduler-events", daemon=True
                )
                self._thread.start()
            self._pending += 1
            self._batch.append(write)
            if len(self._batch) >= _MAX_BATCH:
                self._now = True
            if len(self._batch) == 1 or self._now:
                self._ready.notify_all()

    def write_now(self) -> None:
        """Ends the current wait: what is queued is written at once."""
        with self._ready:
            if self._batch:
                self._now = True
                self._ready.notify_all()

    def drain(self, timeout: float) -> None:
        """Waits until every queued event is written, at most ``timeout`` seconds."""
        self.write_now()
        with self._ready:
            self._ready.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: bool(self._batch))
                self._ready.wait_for(lambda: self._now, _LINGER_SECONDS)
                batch, self._batch, self._now = self._batch, [], False
            self._write(batch)
            with self._ready:
                self._pending -= len(batch)
                self._ready.notify_all()

    @staticmethod
    def _write(batch: list[_Write]) -> None:
        by_store: dict[int, list[_Write]] = {}
        for write in batch:
            by_store.setdefault(id(write.sink.store), []).append(write)
        for writes in by_store.values():
            error: Exception | None = None
            try:
                documents = [(w.path, w.sink.document(w.event, w.time_ns)) for w in writes]
                writes[0].sink.store.create_all(documents)
            except Exception as caught:  # counted and logged by the sinks; never fails a run
                error = caught
            counts: dict[_Sink, int] = {}
            for write in writes:
                counts[write.sink] = counts.get(write.sink, 0) + 1
            for sink, count in counts.items():
                sink.written(error, count)


_WRITER = _Writer()
# Events queued when the interpreter exits (e.g. a dispatcher stopped mid-task) get a moment.
atexit.register(_WRITER.drain, 2.0)

_id_lock = threading.Lock()
_last_ns = 0
_sequence = itertools.count()


def _next_id(worker_id: str) -> tuple[int, str]:
    """A time strictly after the last one this process used, and the event id made from it."""
    global _last_ns
    with _id_lock:
        time_ns = max(time.time_ns(), _last_ns + 1)
        _last_ns = time_ns
        n = next(_sequence) % 1_000_000
    return time_ns, f"{time_ns:020d}-{worker_id}-{n:06d}"


def _id_time_ns(event_id: str) -> int:
    head = event_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


_INT32 = range(-(2**31), 2**31)


def event_document(event: EngineEvent, run_id: str, worker_id: str, time_ns: int) -> Doc | None:
    """An event's stored document, built directly: what ``record_to_doc`` makes of its record.

    Two events a step, each written on the writer thread: building a `RunEvent` and converting
    it cost more than the step's own record. Values a record would treat specially (a cost
    that is not finite, a number out of int32's range, a time out of range) give None, and the
    record is built instead. `tests/execution/test_events.py` checks both give the same.
    """
    seconds, nanos = divmod(time_ns, 10**9)
    when = codec.timestamp_text(seconds, nanos)
    cost = event.cost_usd
    if (
        when is None
        or event.step_index not in _INT32
        or event.step_count not in _INT32
        or not math.isfinite(cost)
    ):
        return None
    doc: Doc = {}
    if run_id:
        doc["run_id"] = run_id
    if event.kind.value:
        doc["kind"] = event.kind.value
    if event.task_id:
        doc["task_id"] = event.task_id
    if event.step_index:
        doc["step_index"] = event.step_index
    if event.step_count:
        doc["step_count"] = event.step_count
    if event.name:
        doc["name"] = event.name
    if event.detail:
        doc["detail"] = event.detail
    doc["time"] = when
    usage = event.usage
    tokens: Doc = {}
    if usage.input_tokens:
        tokens["input_tokens"] = str(usage.input_tokens)
    if usage.output_tokens:
        tokens["output_tokens"] = str(usage.output_tokens)
    if usage.cached_input_tokens:
        tokens["cached_input_tokens"] = str(usage.cached_input_tokens)
    if usage.cache_write_input_tokens:
        tokens["cache_write_input_tokens"] = str(usage.cache_write_input_tokens)
    doc["usage"] = tokens
    if cost:
        doc["cost_usd"] = float(cost)
    if worker_id:
        doc["worker_id"] = worker_id
    return doc


def _record(event: EngineEvent, worker_id: str, time_ns: int) -> run_pb2.RunEvent:
    record = run_pb2.RunEvent(
        run_id=event.run_id,
        kind=event.kind.value,
        task_id=event.task_id,
        step_index=event.step_index,
        step_count=event.step_count,
        name=event.name,
        detail=event.detail,
        time=timestamp_pb2.Timestamp(seconds=time_ns // 10**9, nanos=time_ns % 10**9),
        cost_usd=event.cost_usd,
        worker_id=worker_id,
    )
    record.usage.input_tokens = event.usage.input_tokens
    record.usage.output_tokens = event.usage.output_tokens
    record.usage.cached_input_tokens = event.usage.cached_input_tokens
    record.usage.cache_write_input_tokens = event.usage.cache_write_input_tokens
    return record

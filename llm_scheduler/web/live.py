"""Server-sent events of a run's recorded progress events, for the run page to follow it live.

`run_event_stream` is an async generator of SSE chunks: one ``progress`` event per `RunEvent`
(``id:`` is the event's id, so a reconnecting browser resumes after it), a comment now and then
to keep proxies from closing an idle stream, and a ``finished`` event once the run is finished and
the last events of its tasks were sent.

It polls instead of waiting on `Store.wait_for_change`: only task-run writes wake that wait, not
events, and on SQLite a wait consumes the wake-ups that an in-process dispatcher sharing the store
relies on. Each poll is one worker-thread hop that counts the run's events (an index count, no
documents read) and lists them only when the count grew, so an idle stream costs little and an
event is sent at most ``poll_interval`` after its commit, whichever process wrote it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from llm_scheduler.engine.context import EventKind
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.events import (
    events_collection,
    read_events,
    tasks_with_last_events,
)
from llm_scheduler.store.base import Doc, Store
from llm_scheduler.v1 import run_pb2

__all__ = ["event_json", "run_event_stream", "sse_chunk"]

logger = logging.getLogger(__name__)

# Events may become visible after one with a later id (see execution/events.py): each read goes
# back this far behind the newest event seen.
_LATE_WRITE_WINDOW_NS = 60 * 10**9
# The task_finished details after which a task does not run again.
_TERMINAL = frozenset({"succeeded", "failed"})
# How long a browser waits before reconnecting a dropped stream.
_RETRY_MS = 1000


def sse_chunk(event: str, data: Any, event_id: str = "") -> str:
    """One server-sent event: ``event`` with ``data`` as one line of JSON."""
    head = f"id: {event_id}\n" if event_id else ""
    # json.dumps escapes newlines in strings, so the data is always one line.
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def event_json(event_id: str, event: run_pb2.RunEvent) -> dict[str, Any]:
    """A progress event as the page receives it (every field, defaults included)."""
    return {
        "id": event_id,
        "run_id": event.run_id,
        "kind": event.kind,
        "task_id": event.task_id,
        "step_index": event.step_index,
        "step_count": event.step_count,
        "name": event.name,
        "detail": event.detail,
        "time": event.time.ToJsonString() if event.time.seconds or event.time.nanos else None,
        "usage": {
            "input_tokens": event.usage.input_tokens,
            "output_tokens": event.usage.output_tokens,
            "cached_input_tokens": event.usage.cached_input_tokens,
            "cache_write_input_tokens": event.usage.cache_write_input_tokens,
        },
        "cost_usd": event.cost_usd,
        "worker_id": event.worker_id,
    }


async def run_event_stream(
    store: Store,
    run_id: str,
    *,
    after: str = "",
    is_disconnected: Callable[[], Awaitable[bool]] | None = None,
    poll_interval: float = 0.2,
    keepalive_seconds: float = 15.0,
    settle_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Yields a run's progress events as SSE chunks until it finishes or the client leaves.

    Store calls run in worker threads; the event loop never waits on the store.

    Args:
        store: Where the run lives.
        run_id: The job run (the caller checked that it exists).
        after: Send only events whose id sorts after this one (a reconnecting browser's
            ``Last-Event-ID``).
        is_disconnected: Tells whether the client went away (`Request.is_disconnected`).
        poll_interval: Seconds between reads of the store.
        keepalive_seconds: Send a comment when nothing was sent for this long.
        settle_timeout: After the run finished, stop anyway this many seconds later when a
            task's last event never comes (its worker died, or its write failed).
    """
    follower = _Follower(store, run_id, after)
    yield f"retry: {_RETRY_MS}\n\n"
    last_sent = time.monotonic()
    while True:
        if is_disconnected is not None and await is_disconnected():
            return
        poll = await asyncio.to_thread(follower.poll, settle_timeout)
        for event_id, event in poll.events:
            yield sse_chunk("progress", event_json(event_id, event), event_id)
            last_sent = time.monotonic()
        if poll.finished is not None:
            yield sse_chunk("finished", {"run_id": run_id, "status": poll.finished})
            return
        if time.monotonic() - last_sent >= keepalive_seconds:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        await asyncio.sleep(poll_interval)


@dataclasses.dataclass
class _Poll:
    events: list[tuple[str, run_pb2.RunEvent]]
    # The run's final status once the stream should end; None while it goes on.
    finished: str | None = None


class _Follower:
    """What one stream has sent so far; `poll` runs in a worker thread."""

    def __init__(self, store: Store, run_id: str, after: str) -> None:
        self.store = store
        self.run_id = run_id
        self.after = after
        self.seen: set[str] = set()
        self.newest_ns = 0
        self.count = -1
        self.terminal: set[str] = set()
        self.finished_since: float | None = None

    def poll(self, settle_timeout: float) -> _Poll:
        job_doc = self.store.get(docs.job_run_path(self.run_id))
        if job_doc is None:
            return _Poll([], finished="missing")
        count = self.store.count(events_collection(self.run_id))
        events: list[tuple[str, run_pb2.RunEvent]] = []
        if count != self.count:
            events = self._read_new()
            self.count = count
        if not job_doc.get("finished_at"):
            self.finished_since = None  # resumed, or not finished yet
            return _Poll(events)
        if self.finished_since is None:
            self.finished_since = time.monotonic()
        expected = tasks_with_last_events(self.store, self.run_id)
        if expected <= self.terminal:
            return _Poll(events, finished=_status(job_doc))
        if time.monotonic() - self.finished_since > settle_timeout:
            logger.warning(
                "run %s finished, but no task_finished event was recorded for %s",
                self.run_id,
                ", ".join(sorted(expected - self.terminal)),
            )
            return _Poll(events, finished=_status(job_doc))
        return _Poll(events)

    def _read_new(self) -> list[tuple[str, run_pb2.RunEvent]]:
        # The first read goes through every event, those up to `after` too (a reconnecting
        # client has them): which tasks sent their last event is known from all of them.
        start = f"{max(self.newest_ns - _LATE_WRITE_WINDOW_NS, 0):020d}" if self.newest_ns else ""
        found: list[tuple[str, run_pb2.RunEvent]] = []
        for event_id, event in read_events(self.store, self.run_id, after=start):
            if event_id in self.seen:
                continue
            self.seen.add(event_id)
            self.newest_ns = max(self.newest_ns, _id_time_ns(event_id))
            if event.kind == EventKind.TASK_FINISHED.value and event.detail in _TERMINAL:
                self.terminal.add(event.task_id)
            if event_id > self.after:
                found.append((event_id, event))
        return found


def _status(job_doc: Doc) -> str:
    return docs.status_name(job_doc.get("status", Status.PENDING))


def _id_time_ns(event_id: str) -> int:
    head = event_id.split("-", 1)[0]
    return int(head) if head.isdigit() else 0

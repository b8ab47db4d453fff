"""The local dispatcher: watches a store for runnable task runs and runs them.

It is the local stand-in for Firestore triggering a Cloud Function. Each runnable task run
(PENDING, or RUNNING under an expired lease) is handed to `handle_task_run` in process, with at
most ``workers`` at once, or, with a target URL, POSTed as a real CloudEvent to a running
functions-framework server. Several dispatchers may watch one store: claims are transactions, so
a task never runs twice. About once a second it also fires the due slots of schedules
(`llm_scheduler.execution.schedules.fire_due`: each slot starts one run, however many dispatchers
race for it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.events import wait_for_event_writes
from llm_scheduler.execution.protocol import (
    DEFAULT_LEASE_SECONDS,
    Outcome,
    handle_task_run,
    new_worker_id,
)
from llm_scheduler.execution.run_requests import handle_pending_run_requests
from llm_scheduler.execution.schedules import fire_due
from llm_scheduler.execution.sweeper import reconcile_stalled_runs
from llm_scheduler.store.base import Doc, Store

__all__ = ["DispatchStats", "Dispatcher", "Sender"]

_log = logging.getLogger(__name__)

# Runs a task through another path (e.g. POSTs a CloudEvent); gets the task-run path and doc.
Sender = Callable[[str, Doc], Awaitable[Outcome]]

# The longest the dispatcher sleeps without re-reading the store (a safety net: writes wake it).
_MAX_WAIT_SECONDS = 2.0
# The fewest PENDING task runs read per look (more with more free workers).
_MIN_WINDOW = 16
# How often run requests (documents other programs write to start runs) are looked for.
_REQUESTS_EVERY_SECONDS = 1.0
# How often due schedules are fired, by the dispatcher's clock (so tests that drive the clock
# drive the schedules too).
_SCHEDULES_EVERY_SECONDS = 1.0


@dataclasses.dataclass
class DispatchStats:
    """What a dispatcher did.

    Attributes:
        handled: Events handled, by outcome action (``error`` for a delivery that raised).
        reconciled: Runs found stalled (nothing left to run, yet unfinished) and repaired.
    """

    handled: dict[str, int] = dataclasses.field(default_factory=dict)
    reconciled: list[str] = dataclasses.field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Counts an outcome."""
        self.handled[outcome.action] = self.handled.get(outcome.action, 0) + 1


class Dispatcher:
    """Runs the runnable task runs of a store, with bounded concurrency."""

    def __init__(
        self,
        store: Store,
        context: RunContext,
        *,
        workers: int = 4,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        sender: Sender | None = None,
        on_outcome: Callable[[str, Outcome], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Creates a dispatcher.

        Args:
            store: The store to watch.
            context: Models and functions for in-process runs.
            workers: How many task runs may be handled at once.
            lease_seconds: The lease of each claim.
            sender: When given, task runs are passed to it instead of run in process.
            on_outcome: Called with the task-run path and outcome of each handled event.
            clock: Wall-clock time, for lease expiry and the slots of schedules.
        """
        self.store = store
        self.context = context
        self.workers = max(workers, 1)
        self.lease_seconds = lease_seconds
        self.sender = sender
        self.on_outcome = on_outcome
        self.clock = clock
        self.worker_id = new_worker_id()
        self.stats = DispatchStats()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._change: asyncio.Task[bool] | None = None

    async def run(
        self, *, until_idle: bool = False, stop: asyncio.Event | None = None
    ) -> DispatchStats:
        """Dispatches until ``stop`` is set or, with ``until_idle``, until nothing is left.

        Idle means: no task run is PENDING and none is RUNNING under any lease (a lease held by
        a dead worker still expires back into work, so it is waited for).
        """
        idle_checked = False
        requests_checked = float("-inf")
        schedules_fired: float | None = None
        next_lease_check = float("-inf")
        try:
            while stop is None or not stop.is_set():
                if len(self._in_flight) >= self.workers:
                    # Nothing could be started: no need to look until a worker is free.
                    await asyncio.wait(
                        list(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                if time.monotonic() - requests_checked >= _REQUESTS_EVERY_SECONDS:
                    requests_checked = time.monotonic()
                    await self.store.call(handle_pending_run_requests, self.store, self.context)
                now = self.clock()
                if schedules_fired is None or not 0 <= now - schedules_fired < (
                    _SCHEDULES_EVERY_SECONDS
                ):
                    schedules_fired = now
                    await self.store.call(functools.partial(fire_due, self.store, clock=self.clock))
                # A window of PENDING task runs, not all of them (a wide job has thousands).
                free = self.workers - len(self._in_flight)
                window = max(_MIN_WINDOW, free * 4)
                # A task that finishes while we look may start others after our query saw
                # none: only a look that began with nothing in flight can conclude "idle".
                quiet_before = not self._in_flight
                pending = await self.store.call(
                    self.store.find, "task_runs", "status", [Status.PENDING], window
                )
                # Several dispatchers see the same window: each takes it in its own order, so
                # they mostly claim different task runs instead of racing for the first ones.
                random.shuffle(pending)
                # RUNNING task runs matter only for their leases: read them when one may have
                # expired, when there is nothing else to do, or every few seconds.
                if not pending or self.clock() >= next_lease_check:
                    running = await self.store.call(
                        self.store.find, "task_runs", "status", [Status.RUNNING]
                    )
                    next_lease_check = self.clock() + _MAX_WAIT_SECONDS
                else:
                    running = []
                now = self.clock()
                startable: list[tuple[str, Doc]] = []
                for path, doc in running:
                    expiry = float(doc.get("lease_expires_at", 0))
                    if expiry <= now:
                        startable.append((path, doc))
                    else:
                        next_lease_check = min(next_lease_check, expiry)
                for path, doc in [*startable, *pending]:
                    if len(self._in_flight) >= self.workers:
                        break
                    if path not in self._in_flight:
                        self._in_flight[path] = asyncio.create_task(self._handle(path, doc))
                if pending or running or self._in_flight:
                    idle_checked = False
                elif not quiet_before:
                    continue  # what finished meanwhile may have started work: look again
                else:
                    if not idle_checked:
                        # Nothing to run: finish (or repair) runs a crash left unfinished.
                        idle_checked = True
                        repaired = await self.store.call(
                            functools.partial(
                                reconcile_stalled_runs, self.store, grace=0.0, clock=self.clock
                            )
                        )
                        self.stats.reconciled += repaired
                        if repaired:
                            continue
                    if until_idle:
                        return self.stats
                # Until a change, a freed worker, or the next lease that may expire.
                await self._wait(min(_MAX_WAIT_SECONDS, max(next_lease_check - now, 0.01)))
        finally:
            if self._change is not None and not self._change.done():
                self.store.interrupt_wait()
            unfinished: list[asyncio.Task[Any]] = [*self._in_flight.values()]
            if self._change is not None:
                unfinished.append(self._change)
            await asyncio.gather(*unfinished, return_exceptions=True)
            # Tasks do not wait for their progress events here (this process lives on): the
            # dispatcher does, once, before it stops.
            await asyncio.to_thread(wait_for_event_writes)
        return self.stats

    async def _wait(self, timeout: float) -> None:
        # Wake on a store write or on a finished task (which may free a worker slot). One
        # wait at most: a wait still pending from the last round is reused.
        if self._change is None or self._change.done():
            self._change = asyncio.create_task(self.store.wait_for_change_async(timeout))
        waiting: set[asyncio.Task[Any]] = {self._change, *self._in_flight.values()}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)

    async def _handle(self, path: str, doc: Doc) -> None:
        try:
            parsed = docs.parse_task_run_path(path)
            if parsed is None:
                return
            run_id, task_id = parsed
            try:
                if self.sender is not None:
                    outcome = await self.sender(path, doc)
                else:
                    outcome = await handle_task_run(
                        self.store,
                        run_id,
                        task_id,
                        self.context,
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                        clock=self.clock,
                        wait_for_events=False,
                    )
            except Exception as error:
                # E.g. the store failing while a failure was being recorded: the task's lease
                # expires and a later claim counts as another attempt, so this ends.
                _log.error("task run %s: %s: %s", path, type(error).__name__, error)
                outcome = Outcome("error", f"{type(error).__name__}: {error}")
            self.stats.add(outcome)
            if self.on_outcome is not None:
                self.on_outcome(path, outcome)
        finally:
            self._in_flight.pop(path, None)

"""The execution protocol: what every trigger path does with a task-run event.

One pure library function, `handle_task_run`, is called by the cloud function, the local
dispatcher and tests alike. Deliveries may be duplicated, late or out of order, so every step is
idempotent:

1. Claim the task run in a transaction that touches only its own document (PENDING, or RUNNING
   with an expired lease, becomes RUNNING with a lease and attempt + 1); its inputs, gathered
   from the job and its predecessors, are recorded with the claim. Anything else (finished, or
   running under a live lease) is a no-op. A task claimed more than its ``max_attempt`` times
   without finishing fails for good.
2. Run the steps not yet persisted, persisting each completed step (create-if-absent, at a
   deterministic path) before starting the next. A redelivery after a crash resumes after the
   last persisted step, so no completed step is called again.
3. Complete (`llm_scheduler.execution.completion`): on success, mark the task SUCCEEDED with its
   outputs and create the runs it unblocks (that write triggers the next hop); on failure, mark
   it FAILED and what can no longer run SKIPPED; then, when nothing is left to run, finish the
   job run.
4. When the invocation's deadline is near, hand the rest of the task to a new invocation by
   putting it back to PENDING (a write that triggers again).
5. When the run is cancelled (`llm_scheduler.execution.cancel`), the lease renewal finds the
   task CANCELLED: the step in flight finishes and is kept, no further step starts, and the task
   stays CANCELLED (a completion the cancel beat is refused, so no successor is started).

Any other failure after the claim (a store error, a blob that cannot be read) is recorded on the
task run, which goes back to PENDING for another attempt, or fails once its attempts are used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from llm_scheduler.cache import context_with_cache
from llm_scheduler.config import dataflow
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine import items as task_items
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.fingerprint import digest
from llm_scheduler.engine.replay import recorded_response
from llm_scheduler.engine.step import run_step
from llm_scheduler.engine.sub_job import ChildPending
from llm_scheduler.engine.values import task_outputs
from llm_scheduler.errors import StoreError, UserError
from llm_scheduler.execution import blobs, completion, map_runs, run_telemetry, sub_job_runs, submit
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.budget_ledger import StoreBudget
from llm_scheduler.execution.documents import RunConfig, Status
from llm_scheduler.execution.events import EventSink
from llm_scheduler.execution.lease import Lease, LostLease, TaskCancelled
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free
from llm_scheduler.telemetry import hooks as telemetry_hooks
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["Outcome", "handle_task_run", "new_worker_id", "run_config"]

_log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = submit.DEFAULT_MAX_ATTEMPTS
DEFAULT_LEASE_SECONDS = 60.0
# Hand off when less than this is left before the deadline: enough for one more model call to
# be unlikely to overrun, and for the handoff write itself.
DEFAULT_HANDOFF_MARGIN_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What handling one event did.

    Attributes:
        action: ``noop`` (nothing to do), ``succeeded``, ``failed``, ``handed_off`` (the rest goes
            to a new invocation), ``released`` (an error outside the steps; the task goes back
            to PENDING for another attempt), ``lost_lease`` (another worker took it over) or
            ``cancelled`` (the run was cancelled; the steps done are kept).
        detail: A short explanation.
        steps_run: Steps executed by this invocation (model or function calls made).
    """

    action: str
    detail: str = ""
    steps_run: int = 0


def new_worker_id() -> str:
    """A unique id for a worker (a process or invocation) that claims tasks."""
    return f"worker-{uuid.uuid4().hex[:12]}"


@lock_free
def run_config(store: Store, run_id: str, job_doc: Doc | None = None) -> RunConfig | None:
    """The config of a job run (read once per run and cached), or None when there is no run.

    Raises:
        StoreError: The run's document or one of its blobs cannot be read.
    """
    cached = docs.cached_run_config(run_id)
    if cached is not None:
        return cached
    if job_doc is None:
        job_doc = store.get(docs.job_run_path(run_id))
        if job_doc is None:
            return None
    job_doc = blobs.inline(store, job_doc, f"job run {run_id!r}")
    return docs.run_config_from(run_id, job_doc)


def _claimable(doc: Doc | None, now: float) -> bool:
    if doc is None:
        return False
    status = doc.get("status")
    if status == Status.PENDING:
        return True
    return status == Status.RUNNING and float(doc.get("lease_expires_at", 0)) <= now


async def handle_task_run(
    store: Store,
    run_id: str,
    task_id: str,
    context: RunContext,
    *,
    worker_id: str = "",
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    deadline: float | None = None,
    handoff_margin: float = DEFAULT_HANDOFF_MARGIN_SECONDS,
    clock: Callable[[], float] = time.time,
    wait_for_events: bool = True,
) -> Outcome:
    """Handles one delivery of a task-run event (see the module docstring).

    Args:
        store: Where the run lives.
        run_id: The job run.
        task_id: The task run (its id is the task id).
        context: Models and functions for the steps.
        worker_id: This worker's id, recorded as the lease owner; a new one by default.
        lease_seconds: How long a claim lasts without renewal; renewed while the task runs.
        deadline: `time.monotonic()` value by which this invocation must return (e.g. a cloud
            function's timeout); None for no limit.
        handoff_margin: Hand off when fewer seconds than this remain before ``deadline`` (after
            at least one step, so a handoff always makes progress).
        clock: Wall-clock time, for leases (shared between processes).
        wait_for_events: Return only once the task's progress events are written (a cloud
            function may be frozen as soon as it returns); a long-lived worker (the dispatcher)
            lets its background writer catch up instead, and waits for it when it stops.

    Raises:
        StoreError: The store failed before the task was claimed, or while recording a failure
            (the claim then expires, and a later delivery tries again).
    """
    worker_id = worker_id or new_worker_id()
    try:
        task_path = docs.task_run_path(run_id, task_id)
    except UserError as error:
        return Outcome("noop", f"not a task run: {error}")
    # Cheap checks first: a duplicate delivery costs one read, and no inputs are gathered.
    current = await store.call(store.get, task_path)
    if not _claimable(current, clock()):
        return Outcome("noop", "not runnable (missing, finished, or leased by another worker)")
    run = await store.call(run_config, store, run_id)
    base_id, item_part = task_items.split_item_run_id(task_id)
    if run is None or base_id not in run.tasks:
        return Outcome("noop", f"no job run {run_id!r} with a task {base_id!r}")
    prepared: blobs.OutOfLine | None = None
    if current is not None and "inputs_digest" not in current:
        variables = await store.call(completion.gather_inputs, store, run, task_id)
        prepared = await store.call(
            blobs.out_of_line, store, {"inputs": variables}, docs.INLINE_FIELD_BYTES
        )
        prepared = dataclasses.replace(
            prepared, fields={**prepared.fields, "inputs_digest": digest(variables)}
        )
    claimed = await store.call(
        store.update_if,
        task_path,
        functools.partial(
            _claim, worker_id=worker_id, lease_seconds=lease_seconds, clock=clock, inputs=prepared
        ),
    )
    if claimed is None:
        return Outcome("noop", "not runnable (claimed by another worker first)")
    task_doc = claimed
    lease = Lease(store, task_path, worker_id, lease_seconds, clock)
    events = EventSink(store, run_id, worker_id, prompt=wait_for_events)
    context = events.context(_context_for(context, store, run))
    task = run.tasks[base_id]
    if task_id == run.start and int(task_doc["attempt"]) == 1:
        started = await store.call(
            store.update_if, docs.job_run_path(run_id), functools.partial(_start_job, clock)
        )
        if started:
            context.emit(
                EngineEvent(
                    EventKind.JOB_STARTED, name=run.job.name or run.job.job_id, run_id=run_id
                )
            )
    if not item_part:  # a map's item reports only its steps' events, as in process
        context.emit(
            EngineEvent(
                EventKind.TASK_STARTED,
                task_id,
                name=task.name,
                detail=f"attempt {task_doc['attempt']}",
                run_id=run_id,
            )
        )
    heartbeat = asyncio.create_task(lease.keep_alive())
    try:
        if int(task_doc["attempt"]) > int(task_doc.get("max_attempt", DEFAULT_MAX_ATTEMPTS)):
            reason = (
                f"gave up after {int(task_doc['attempt']) - 1} attempts without finishing "
                "(each claim ended with the worker gone, its lease expired, or an error)"
            )
            if task_doc.get("last_error"):
                reason += f"; last error: {task_doc['last_error']}"
            return await _fail(
                store, run, task_id, lease, context, _failure("", 0, RuntimeError(reason)), []
            )
        try:
            if task_items.has_items(task) and not item_part:
                return await _run_map_task(store, run, task, task_doc, context, lease)
            return await _run_claimed(
                store, run, task, task_id, task_doc, context, lease, deadline, handoff_margin
            )
        except LostLease:
            raise
        except Exception as error:
            return await _recover(store, run, task_id, task_doc, lease, context, error)
    except TaskCancelled:
        await store.call(_let_go, store, lease, run_id, task_id)
        _emit_finished(context, task_id, "cancelled", run_id)
        return Outcome("cancelled", "the run was cancelled; the steps done are kept")
    except LostLease:
        _emit_finished(context, task_id, "lost_lease", run_id)
        return Outcome("lost_lease", "another worker took the task over after our lease expired")
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        if wait_for_events:
            # An invocation may be frozen once it returns: its events are written first (off
            # the event loop, so other tasks of this process go on meanwhile).
            await asyncio.to_thread(events.wait_written, task_id)


def _context_for(context: RunContext, store: Store, run: RunConfig) -> RunContext:
    if run.replay is not None:
        context = dataclasses.replace(context, replay=run.replay)
    if run.offline and not context.models.offline:
        # The submitter asked for the offline model: every worker honours it.
        context = dataclasses.replace(
            context, models=ModelClient(context.models.registry, offline=True)
        )
    context = dataclasses.replace(context, child_runner=sub_job_runs.store_child_runner(store, run))
    if run.budget_run_id:
        context = dataclasses.replace(context, budget=StoreBudget(store, run.budget_run_id))
    return context_with_cache(context, store, {"default_cache_policy": run.default_cache_policy})


async def _run_claimed(
    store: Store,
    run: RunConfig,
    task: config_pb2.TaskConfig,
    task_id: str,
    task_doc: Doc,
    context: RunContext,
    lease: Lease,
    deadline: float | None,
    handoff_margin: float,
) -> Outcome:
    """Runs the steps of a claimed task run (a task, or one item of a map) and completes it."""
    run_id = run.run_id
    item_index = task_items.item_index(task, task_id)
    label = task_items.item_label(task, task_id)
    if item_index is not None:  # a variation may run its own model key
        task = task_items.item_task(task, task_items.item_at(task, item_index, None))
    persisted = await store.call(store.list, docs.step_runs_collection(run_id, task_id))
    scope: dict[str, Any]
    if item_index is None:
        inputs = await store.call(
            blobs.inline, store, task_doc, f"task run {task_id!r} of run {run_id!r}"
        )
        scope = {**dataflow.task_defaults(task), **(inputs.get("inputs") or {})}
    else:
        scope = await store.call(map_runs.map_scope, store, run, task_doc)
    response: Any = None
    records: list[run_pb2.StepRun] = []
    for _, step_doc in persisted:
        inlined = await store.call(blobs.inline, store, step_doc)
        record = docs.record_from_doc(inlined, run_pb2.StepRun)
        records.append(record)
        scope.update(struct_to_dict(record.outputs))
        response = recorded_response(record)
    steps_run = 0
    last_step: tuple[str, run_pb2.StepRun] | None = None
    for index in range(len(records), len(task.steps)):
        # Every invocation runs at least one step, so handoffs always make progress.
        if steps_run and deadline is not None and deadline - time.monotonic() < handoff_margin:
            await store.call(lease.release, {}, True)
            _emit_finished(context, task_id, "handed_off", run_id)
            return Outcome("handed_off", f"deadline near after step {index}", steps_run)
        lease.check()
        try:
            result = await run_step(
                task.steps[index],
                scope,
                context,
                index=index,
                task_id=label,
                step_count=len(task.steps),
                run_id=run_id,
                task_run_id=task_id,
            )
        except ChildPending as pending:
            return await _wait_for_child(store, run, task_id, lease, pending.child_id, index)
        steps_run += 1
        telemetry = telemetry_hooks.active
        if telemetry is not None:  # the step's span, from the process that ran it
            attempt = int(task_doc["attempt"])
            telemetry.step_finished(run_id, run.traceparent, task_id, attempt, result.record)
        if not (result.ok and lease.cancelled):
            lease.check()  # a step that succeeded after a cancel is kept (persisted below)
        if not result.ok:
            return await _fail(
                store, run, task_id, lease, context, result.record, records, steps_run
            )
        step_path = docs.step_run_path(run_id, task_id, index)
        if index == len(task.steps) - 1:
            # The last step is written by the completing transaction itself (one write less
            # per task): until that commits, a redelivery runs it again, as it would a step
            # whose own write had not committed.
            last_step = (step_path, result.record)
            records.append(result.record)
            scope.update(struct_to_dict(result.record.outputs))
            response = recorded_response(result.record)
            break
        try:
            created = await store.call(
                blobs.put_step, store, step_path, docs.record_to_doc(result.record)
            )
        except StoreError as error:
            # E.g. a step document refused by the store: fail the task, keeping the error
            # (not the refused record) so the failure itself can be written.
            failure = _failure(result.record.step_id, index, error)
            return await _fail(store, run, task_id, lease, context, failure, records, steps_run)
        if not created:
            # A worker that lost its lease persisted this step first; its result stands.
            existing = await store.call(store.get, step_path)
            inlined = await store.call(blobs.inline, store, existing or {})
            record = docs.record_from_doc(inlined, run_pb2.StepRun)
        else:
            record = result.record
        records.append(record)
        scope.update(struct_to_dict(record.outputs))
        response = recorded_response(record)
    final: tuple[str, Doc] | None = None
    if last_step is not None:
        try:
            stored = await store.call(blobs.step_document, store, docs.record_to_doc(last_step[1]))
        except StoreError as error:
            failure = _failure(last_step[1].step_id, last_step[1].index, error)
            return await _fail(
                store, run, task_id, lease, context, failure, records[:-1], steps_run
            )
        final = (last_step[0], stored)
    try:
        outputs = task_outputs(task, scope, response)
    except Exception as error:  # task outputs that fail to render: recorded
        if final is not None:  # the step itself succeeded (and was paid for): keep it
            await store.call(store.create, *final)
        failure = _failure("", len(task.steps), error, prefix="task outputs: ")
        return await _fail(store, run, task_id, lease, context, failure, records, steps_run)
    usage, cost = completion.task_totals(records)
    return await _complete(
        store, run, task_id, lease, context, outputs, usage, cost, final, steps_run
    )


async def _wait_for_child(
    store: Store, run: RunConfig, task_id: str, lease: Lease, child_id: str, index: int
) -> Outcome:
    """Leaves a task run WAITING for the child run of its sub-job step ``index``.

    See `llm_scheduler.execution.sub_job_runs`: the child's end wakes it.
    """
    await store.call(sub_job_runs.wait_for_child, store, lease, child_id, index)
    # The child may have finished before the task was WAITING: then nothing woke it.
    waiting = {"waiting_child": child_id}
    await store.call(sub_job_runs.wake_if_finished, store, lease.task_path, waiting, lease.clock())
    return Outcome("waiting", f"step {index} waits for its child run {child_id}")


async def _run_map_task(
    store: Store,
    run: RunConfig,
    task: config_pb2.TaskConfig,
    task_doc: Doc,
    context: RunContext,
    lease: Lease,
) -> Outcome:
    """A claimed map task: expands it into item runs, or collects its items once they are done.

    See `llm_scheduler.execution.map_runs`.
    """
    task_id = task.task_id
    if task_doc.get("map_ready"):
        total = int(task_doc.get("items_total") or 0)
        outputs, usage, cost = await store.call(map_runs.collect, store, run, task, total)
        return await _complete(store, run, task_id, lease, context, outputs, usage, cost)
    inputs = await store.call(
        blobs.inline, store, task_doc, f"task run {task_id!r} of run {run.run_id!r}"
    )
    scope = {**dataflow.task_defaults(task), **(inputs.get("inputs") or {})}
    try:
        items = task_items.item_values(task, scope)
    except Exception as error:  # not a list, too long, or a missing variable: recorded
        return await _fail(store, run, task_id, lease, context, _failure("", 0, error), [])
    if not items:
        empty = task_items.collect_outputs(task, [], [])
        usage, cost = completion.task_totals([])
        return await _complete(store, run, task_id, lease, context, empty, usage, cost)
    created = await store.call(map_runs.expand, store, run, task, lease, items, lease.clock())
    # Items may all have finished before the task was WAITING: then no item moved it on.
    await _move_map_on(store, run, task_id, lease.clock())
    return Outcome("waiting", f"{len(items)} items; {created} item runs created")


async def _complete(
    store: Store,
    run: RunConfig,
    task_id: str,
    lease: Lease,
    context: RunContext,
    outputs: dict[str, Any],
    usage: Doc,
    cost: float,
    final: tuple[str, Doc] | None = None,
    steps_run: int = 0,
) -> Outcome:
    """Marks a task run SUCCEEDED (with its last step, when given) and starts what follows.

    A task starts its successors; a map's item creates the item after it and, when it is the
    last one, moves its map on (`map_runs`).
    """
    base_id, item_part = task_items.split_item_run_id(task_id)
    prepared = await store.call(
        blobs.out_of_line, store, {"outputs": outputs}, docs.INLINE_FIELD_BYTES
    )
    now = lease.clock()
    body: Callable[[Transaction], Any]
    if not item_part:
        body = functools.partial(
            completion.succeed_task,
            run=run,
            task_id=task_id,
            lease=lease,
            outputs=prepared,
            usage=usage,
            cost=cost,
            last_step=final,
        )
    else:
        following = await store.call(map_runs.next_item, store, run, task_id, now)
        body = functools.partial(
            map_runs.succeed_item,
            run=run,
            lease=lease,
            outputs=prepared,
            usage=usage,
            cost=cost,
            last_step=final,
            following=following,
        )
    try:
        lease.check()
        started = await store.call(store.run_transaction, body)
    except TaskCancelled:
        if final is not None:  # the last step succeeded (and was paid for): keep it
            await store.call(store.create, *final)
        raise
    _emit_finished(context, task_id, "succeeded", run.run_id)
    if telemetry_hooks.active is not None:
        await store.call(run_telemetry.report_task, store, run, task_id)
    now = lease.clock()
    if item_part:
        await _move_map_on(store, run, base_id, now)
        return Outcome("succeeded", "", steps_run)
    started += await store.call(completion.release_joins, store, run, task_id, now)
    if not started:
        await store.call(completion.reconcile_run, store, run, now)
    return Outcome("succeeded", "", steps_run)


async def _fail(
    store: Store,
    run: RunConfig,
    task_id: str,
    lease: Lease,
    context: RunContext,
    failed_step: run_pb2.StepRun,
    records: list[run_pb2.StepRun],
    steps_run: int = 0,
) -> Outcome:
    error = docs.record_to_doc(failed_step.error)
    error["message"] = _shorten(str(error.get("message", "")))
    failure = await store.call(
        blobs.out_of_line,
        store,
        {"failed_step": docs.record_to_doc(failed_step)},
        docs.INLINE_FIELD_BYTES,
    )
    usage, cost = completion.task_totals([*records, failed_step])
    base_id, item_part = task_items.split_item_run_id(task_id)
    if not item_part:
        body: Callable[[Transaction], Any] = functools.partial(
            completion.fail_task,
            run=run,
            task_id=task_id,
            lease=lease,
            failure=failure,
            error=error,
            usage=usage,
            cost=cost,
        )
    else:  # its map fails in `check_map`, naming it
        body = functools.partial(
            map_runs.fail_item, lease=lease, failure=failure, error=error, usage=usage, cost=cost
        )
    await store.call(store.run_transaction, body)
    _emit_finished(context, task_id, "failed", run.run_id)
    if telemetry_hooks.active is not None:
        await store.call(run_telemetry.report_task, store, run, task_id)
    if not item_part:
        await store.call(completion.reconcile_run, store, run, lease.clock())
    else:
        await _move_map_on(store, run, base_id, lease.clock())
    return Outcome("failed", str(error["message"]), steps_run)


async def _move_map_on(store: Store, run: RunConfig, task_id: str, now: float) -> None:
    """After an item finished: moves its map on, and finishes the job run once a map failed.

    A map failed by an item (here or before, its items in flight finishing since) was failed
    by no claim of its own, so nothing else would finish the job run (`reconcile_run`, cheap
    while tasks are still runnable).
    """
    moved = await store.call(map_runs.check_map, store, run, task_id, now)
    if moved in ("failed", "not_waiting"):
        await store.call(completion.reconcile_run, store, run, now)


async def _recover(
    store: Store,
    run: RunConfig,
    task_id: str,
    task_doc: Doc,
    lease: Lease,
    context: RunContext,
    error: Exception,
) -> Outcome:
    """Records an error raised outside the steps: another attempt, or a failure when none is left.

    Raises:
        StoreError: The store failed while recording it (the lease then expires, and the next
            claim counts as an attempt, so this too ends).
    """
    message = _shorten(f"{type(error).__name__}: {error}")
    _log.warning("task %s of run %s: %s", task_id, run.run_id, message)
    if int(task_doc["attempt"]) >= int(task_doc.get("max_attempt", DEFAULT_MAX_ATTEMPTS)):
        failure = _failure("", 0, error, prefix="the task could not run: ")
        return await _fail(store, run, task_id, lease, context, failure, [])
    await store.call(lease.release, {"last_error": message}, False)
    _emit_finished(context, task_id, "released", run.run_id)
    return Outcome("released", message)


@lock_free
def _let_go(store: Store, lease: Lease, run_id: str, task_id: str) -> None:
    """Ends the claim of a cancelled task, recording the usage and cost of its kept steps."""
    records = [
        run_pb2.StepRun(
            usage=docs.record_from_doc(doc.get("usage") or {}, run_pb2.TokenUsage),
            cost_usd=float(doc.get("cost_usd") or 0.0),
        )
        for _, doc in store.list(docs.step_runs_collection(run_id, task_id))
    ]
    usage, cost = completion.task_totals(records)
    lease.let_go({"usage": usage, "cost_usd": cost})


def _emit_finished(context: RunContext, task_id: str, detail: str, run_id: str) -> None:
    """Reports a task's end; a map's item reports only its steps (its map reports the rest)."""
    if not task_items.split_item_run_id(task_id)[1]:
        context.emit(EngineEvent(EventKind.TASK_FINISHED, task_id, detail=detail, run_id=run_id))


def _shorten(message: str) -> str:
    limit = docs.MAX_ERROR_MESSAGE_CHARS
    if len(message) <= limit:
        return message
    return f"{message[: limit - 40]} ... [{len(message) - limit + 40} more characters]"


def _failure(step_id: str, index: int, error: Exception, prefix: str = "") -> run_pb2.StepRun:
    failure = run_pb2.StepRun(step_id=step_id, index=index, status=run_pb2.RUN_STATUS_FAILED)
    failure.error.type = type(error).__name__
    failure.error.message = _shorten(f"{prefix}{error}")
    return failure


def _claim(
    task: Doc | None,
    worker_id: str,
    lease_seconds: float,
    clock: Callable[[], float],
    inputs: blobs.OutOfLine | None,
) -> Doc | None:
    """The fields that claim ``task`` for ``worker_id``, or None when it is not claimable."""
    now = clock()
    if not _claimable(task, now):
        return None
    assert task is not None
    fields: Doc = {
        "status": Status.RUNNING,
        "attempt": int(task.get("attempt", 0)) + 1,
        "lease_owner": worker_id,
        "lease_expires_at": now + lease_seconds,
    }
    if not task.get("started_at"):
        fields["started_at"] = docs.iso(now)
    if inputs is not None and "inputs_digest" not in task:
        fields.update(blobs.with_fields(task, inputs))
    return fields


def _start_job(clock: Callable[[], float], job: Doc | None) -> Doc | None:
    if job is None or job.get("status") != Status.PENDING:
        return None
    return {"status": Status.RUNNING, "started_at": docs.iso(clock())}

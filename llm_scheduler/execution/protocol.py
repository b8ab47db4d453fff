"""The execution protocol: what every trigger path does with a task-run event.

One pure library function, `handle_task_run`, is called by the cloud function, the local
dispatcher and tests alike. Deliveries may be duplicated, late or out of order, so every step is
idempotent:

1. Claim the task run in a transaction (PENDING, or RUNNING with an expired lease, becomes
   RUNNING with a lease and attempt + 1). Anything else (finished, or running under a live lease)
   is a no-op.
2. Run the steps not yet persisted, persisting each completed step (create-if-absent, at a
   deterministic path) before starting the next. A redelivery after a crash resumes after the
   last persisted step, so no completed step is called again.
3. On success, in one transaction: mark the task SUCCEEDED with its outputs and create the run of
   every successor whose predecessors have all succeeded (create-if-absent, deterministic id),
   carrying the outputs as inputs. That write triggers the next hop. On failure: mark it FAILED,
   the job run FAILED, and every task that can no longer run SKIPPED.
4. When the invocation's deadline is near, hand the rest of the task to a new invocation by
   putting it back to PENDING (a write that triggers again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

from llm_scheduler.cache import context_with_cache
from llm_scheduler.config import dataflow
from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.step import run_step
from llm_scheduler.engine.values import task_outputs, task_variables
from llm_scheduler.errors import StoreError
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.events import context_with_event_sink
from llm_scheduler.execution.submit import new_task_run_doc
from llm_scheduler.store.base import Doc, Store, Transaction
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["Outcome", "handle_task_run", "new_worker_id"]

DEFAULT_LEASE_SECONDS = 60.0
# Hand off when less than this is left before the deadline: enough for one more model call to
# be unlikely to overrun, and for the handoff write itself.
DEFAULT_HANDOFF_MARGIN_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What handling one event did.

    Attributes:
        action: ``noop`` (nothing to do), ``succeeded``, ``failed``, ``handed_off`` (the rest goes
            to a new invocation) or ``lost_lease`` (another worker took the task over).
        detail: A short explanation.
        steps_run: Steps executed by this invocation (model or function calls made).
    """

    action: str
    detail: str = ""
    steps_run: int = 0


def new_worker_id() -> str:
    """A unique id for a worker (a process or invocation) that claims tasks."""
    return f"worker-{uuid.uuid4().hex[:12]}"


class _LostLease(Exception):
    """Another worker owns the task now; stop without writing."""


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
    """
    worker_id = worker_id or new_worker_id()
    task_path = docs.task_run_path(run_id, task_id)
    job_path = docs.job_run_path(run_id)

    claimed = await store.call(
        store.run_transaction,
        lambda tx: _claim(tx, task_path, job_path, worker_id, lease_seconds, clock),
    )
    if claimed is None:
        return Outcome("noop", "not runnable (missing, finished, or leased by another worker)")
    task_doc, job_doc = claimed
    context = context_with_cache(context, store, job_doc)
    context = context_with_event_sink(context, store, run_id, worker_id)
    run_config = docs.run_config_of(run_id, job_doc)
    job = run_config.job
    task = docs.record_from_doc(task_doc["config"], config_pb2.TaskConfig)
    if job_doc.get("status") == Status.PENDING:  # this claim started the job run
        context.emit(EngineEvent(EventKind.JOB_STARTED, name=job.name or job.job_id, run_id=run_id))
    context.emit(
        EngineEvent(
            EventKind.TASK_STARTED,
            task_id,
            name=task.name,
            detail=f"attempt {task_doc['attempt']}",
            run_id=run_id,
        )
    )
    lease = _Lease(store, task_path, worker_id, lease_seconds, clock)
    heartbeat = asyncio.create_task(lease.keep_alive())
    try:
        return await _run_claimed(
            store, run_id, task, task_doc, run_config, context, lease, deadline, handoff_margin
        )
    except _LostLease:
        context.emit(
            EngineEvent(EventKind.TASK_FINISHED, task_id, detail="lost_lease", run_id=run_id)
        )
        return Outcome("lost_lease", "another worker took the task over after our lease expired")
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)


async def _run_claimed(
    store: Store,
    run_id: str,
    task: config_pb2.TaskConfig,
    task_doc: Doc,
    run_config: docs.RunConfig,
    context: RunContext,
    lease: _Lease,
    deadline: float | None,
    handoff_margin: float,
) -> Outcome:
    task_id = task.task_id
    persisted = await store.call(store.list, docs.step_runs_collection(run_id, task_id))
    scope: dict[str, Any] = {**dataflow.task_defaults(task), **task_doc.get("inputs", {})}
    response: Any = None
    records: list[run_pb2.StepRun] = []
    for _, step_doc in persisted:
        inlined = await store.call(blobs.inline, store, step_doc)
        record = docs.record_from_doc(inlined, run_pb2.StepRun)
        records.append(record)
        scope.update(struct_to_dict(record.outputs))
        response = _response_of(record)
    steps_run = 0

    async def fail(step: run_pb2.StepRun) -> Outcome:
        await store.call(
            store.run_transaction,
            functools.partial(
                _fail,
                run_id=run_id,
                task_id=task_id,
                run_config=run_config,
                lease=lease,
                failed_step=step,
                records=records,
            ),
        )
        context.emit(EngineEvent(EventKind.TASK_FINISHED, task_id, detail="failed", run_id=run_id))
        return Outcome("failed", step.error.message, steps_run)

    for index in range(len(records), len(task.steps)):
        # Every invocation runs at least one step, so handoffs always make progress.
        if steps_run and deadline is not None and deadline - time.monotonic() < handoff_margin:
            await store.call(store.run_transaction, lease.handoff)
            context.emit(
                EngineEvent(EventKind.TASK_FINISHED, task_id, detail="handed_off", run_id=run_id)
            )
            return Outcome("handed_off", f"deadline near after step {index}", steps_run)
        lease.check()
        result = await run_step(
            task.steps[index],
            scope,
            context,
            index=index,
            task_id=task_id,
            step_count=len(task.steps),
            run_id=run_id,
        )
        steps_run += 1
        lease.check()
        if not result.ok:
            return await fail(result.record)
        step_path = docs.step_run_path(run_id, task_id, index)
        try:
            created = await store.call(
                blobs.put_step, store, step_path, docs.record_to_doc(result.record)
            )
        except StoreError as error:
            # E.g. a response too large for one document: fail the task, keeping the error
            # (not the oversized record) so the failure itself can be written.
            return await fail(_failure(result.record.step_id, index, error))
        if not created:
            # A worker that lost its lease persisted this step first; its result stands.
            existing = await store.call(store.get, step_path)
            inlined = await store.call(blobs.inline, store, existing or {})
            record = docs.record_from_doc(inlined, run_pb2.StepRun)
        else:
            record = result.record
        records.append(record)
        scope.update(struct_to_dict(record.outputs))
        response = _response_of(record)
    try:
        outputs = task_outputs(task, scope, response)
        await store.call(
            store.run_transaction,
            functools.partial(
                _succeed,
                run_id=run_id,
                task_id=task_id,
                run_config=run_config,
                lease=lease,
                outputs=outputs,
                records=records,
            ),
        )
    except _LostLease:
        raise
    except Exception as error:  # task outputs that fail to render or to fit: recorded
        return await fail(_failure("", len(task.steps), error, prefix="task outputs: "))
    context.emit(EngineEvent(EventKind.TASK_FINISHED, task_id, detail="succeeded", run_id=run_id))
    return Outcome("succeeded", "", steps_run)


def _failure(step_id: str, index: int, error: Exception, prefix: str = "") -> run_pb2.StepRun:
    failure = run_pb2.StepRun(step_id=step_id, index=index, status=run_pb2.RUN_STATUS_FAILED)
    failure.error.type = type(error).__name__
    failure.error.message = f"{prefix}{error}"
    return failure


def _response_of(record: run_pb2.StepRun) -> Any:
    if record.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        return value_to_python(record.function_response)
    return record.response_text


def _claim(
    tx: Transaction,
    task_path: str,
    job_path: str,
    worker_id: str,
    lease_seconds: float,
    clock: Callable[[], float],
) -> tuple[Doc, Doc] | None:
    task = tx.get(task_path)
    job = tx.get(job_path)
    if task is None or job is None:
        return None
    now = clock()
    status = task.get("status")
    expired = status == Status.RUNNING and float(task.get("lease_expires_at", 0)) <= now
    if status != Status.PENDING and not expired:
        return None
    fields: Doc = {
        "status": Status.RUNNING,
        "attempt": int(task.get("attempt", 0)) + 1,
        "lease_owner": worker_id,
        "lease_expires_at": now + lease_seconds,
    }
    if not task.get("started_at"):
        fields["started_at"] = docs.iso(now)
    tx.update(task_path, fields)
    if job.get("status") == Status.PENDING:
        tx.update(job_path, {"status": Status.RUNNING, "started_at": docs.iso(now)})
    return {**task, **fields}, job


class _Lease:
    """Keeps a claim alive while the task runs, and checks it is still ours."""

    def __init__(
        self,
        store: Store,
        task_path: str,
        worker_id: str,
        lease_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.task_path = task_path
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.lost = False

    def check(self) -> None:
        if self.lost:
            raise _LostLease

    def owns(self, doc: Doc | None) -> bool:
        return (
            doc is not None
            and doc.get("status") == Status.RUNNING
            and doc.get("lease_owner") == self.worker_id
        )

    async def keep_alive(self) -> None:
        # Renew at a third of the lease so one slow renewal cannot let it lapse.
        while not self.lost:
            await asyncio.sleep(self.lease_seconds / 3)
            renewed = await self.store.call(self.store.run_transaction, self._renew)
            if not renewed:
                self.lost = True

    def _renew(self, tx: Transaction) -> bool:
        doc = tx.get(self.task_path)
        if not self.owns(doc):
            return False
        tx.update(self.task_path, {"lease_expires_at": self.clock() + self.lease_seconds})
        return True

    def handoff(self, tx: Transaction) -> None:
        doc = tx.get(self.task_path)
        if not self.owns(doc):
            raise _LostLease
        assert doc is not None
        tx.update(
            self.task_path,
            {
                "status": Status.PENDING,
                "lease_owner": "",
                "lease_expires_at": 0.0,
                "handoffs": int(doc.get("handoffs", 0)) + 1,
            },
        )


def _totals(records: list[run_pb2.StepRun]) -> tuple[Doc, float]:
    usage = run_pb2.TokenUsage()
    cost = 0.0
    for record in records:
        usage.input_tokens += record.usage.input_tokens
        usage.output_tokens += record.usage.output_tokens
        usage.cached_input_tokens += record.usage.cached_input_tokens
        cost += record.cost_usd
    return docs.record_to_doc(usage), cost


def _add_usage(job: Doc, task: Doc, usage: Doc, cost: float) -> Doc:
    """The job's totals after a task's usage becomes ``usage``.

    Only the change since the task's last recorded usage is added, so a task that finishes
    twice (failed, then resumed) is not counted twice.
    """
    total = dict(job.get("usage") or {})
    before = dict(task.get("usage") or {})
    for key in set(usage) | set(before):
        change = int(usage.get(key, 0)) - int(before.get(key, 0))
        total[key] = str(int(total.get(key, 0)) + change)
    cost_change = cost - float(task.get("cost_usd", 0.0))
    return {"usage": total, "cost_usd": float(job.get("cost_usd", 0.0)) + cost_change}


def _succeed(
    tx: Transaction,
    run_id: str,
    task_id: str,
    run_config: docs.RunConfig,
    lease: _Lease,
    outputs: dict[str, Any],
    records: list[run_pb2.StepRun],
) -> None:
    graph, tasks = run_config.graph, run_config.tasks
    task_path = docs.task_run_path(run_id, task_id)
    job_path = docs.job_run_path(run_id)
    # Reads first (Firestore requires all reads before any write).
    task_doc = tx.get(task_path)
    job_doc = tx.get(job_path)
    if not lease.owns(task_doc) or job_doc is None:
        raise _LostLease
    successors: dict[str, tuple[Doc | None, dict[str, Doc | None]]] = {}
    for successor in graph.successors[task_id]:
        others = {
            p: tx.get(docs.task_run_path(run_id, p))
            for p in graph.predecessors[successor]
            if p != task_id
        }
        successors[successor] = (tx.get(docs.task_run_path(run_id, successor)), others)
    finished = _finished_count(job_doc) + 1
    sinks: dict[str, Doc | None] = {}
    if finished >= int(job_doc["tasks_total"]):
        sinks = {s: tx.get(docs.task_run_path(run_id, s)) for s in graph.sinks if s != task_id}
    # Writes.
    now = lease.clock()
    usage, cost = _totals(records)
    tx.update(
        task_path,
        {
            "status": Status.SUCCEEDED,
            "outputs": outputs,
            "usage": usage,
            "cost_usd": cost,
            "lease_owner": "",
            "lease_expires_at": 0.0,
            "finished_at": docs.iso(now),
        },
    )
    job_input = dict(job_doc.get("inputs") or {})
    for successor, (existing, others) in successors.items():
        if existing is not None and existing.get("status") != Status.RESET:
            continue
        if not all(
            doc is not None and doc.get("status") == Status.SUCCEEDED for doc in others.values()
        ):
            continue
        preds = list(graph.predecessors[successor])
        upstream = [
            (p, outputs if p == task_id else dict((others[p] or {}).get("outputs") or {}))
            for p in preds
        ]
        variables = task_variables(job_input, tasks[successor], upstream)
        tx.set(
            docs.task_run_path(run_id, successor),
            new_task_run_doc(run_id, tasks[successor], variables, preds, now),
        )
    fields: Doc = {"tasks_succeeded": int(job_doc.get("tasks_succeeded", 0)) + 1}
    fields.update(_add_usage(job_doc, task_doc or {}, usage, cost))
    if finished >= int(job_doc["tasks_total"]):
        fields["finished_at"] = docs.iso(now)
        if int(job_doc.get("tasks_failed", 0)) == 0:
            fields["status"] = Status.SUCCEEDED
            job_outputs = {task_id: outputs} if task_id in graph.sinks else {}
            for sink, doc in sinks.items():
                if doc is not None and doc.get("status") == Status.SUCCEEDED:
                    job_outputs[sink] = doc.get("outputs") or {}
            fields["outputs"] = {s: job_outputs[s] for s in graph.sinks if s in job_outputs}
    tx.update(job_path, fields)


def _fail(
    tx: Transaction,
    run_id: str,
    task_id: str,
    run_config: docs.RunConfig,
    lease: _Lease,
    failed_step: run_pb2.StepRun,
    records: list[run_pb2.StepRun],
) -> None:
    graph, tasks = run_config.graph, run_config.tasks
    task_path = docs.task_run_path(run_id, task_id)
    job_path = docs.job_run_path(run_id)
    task_doc = tx.get(task_path)
    job_doc = tx.get(job_path)
    if not lease.owns(task_doc) or job_doc is None:
        raise _LostLease
    descendants = sorted(graph.reachable_from(task_id) - {task_id})
    existing = {d: tx.get(docs.task_run_path(run_id, d)) for d in descendants}
    now = lease.clock()
    error = docs.record_to_doc(failed_step.error)
    usage, cost = _totals([*records, failed_step])
    tx.update(
        task_path,
        {
            "status": Status.FAILED,
            "error": error,
            "failed_step": docs.record_to_doc(failed_step),
            "usage": usage,
            "cost_usd": cost,
            "lease_owner": "",
            "lease_expires_at": 0.0,
            "finished_at": docs.iso(now),
        },
    )
    skipped = 0
    for descendant, doc in existing.items():
        if doc is None or doc.get("status") == Status.RESET:
            skipped += 1
            tx.set(
                docs.task_run_path(run_id, descendant),
                {
                    "task_run_id": descendant,
                    "task_id": descendant,
                    "job_run_id": run_id,
                    "status": Status.SKIPPED,
                    "config": docs.record_to_doc(tasks[descendant]),
                    "created_at": docs.iso(now),
                },
            )
    fields: Doc = {
        "status": Status.FAILED,
        "tasks_failed": int(job_doc.get("tasks_failed", 0)) + 1,
        "tasks_skipped": int(job_doc.get("tasks_skipped", 0)) + skipped,
    }
    if job_doc.get("status") != Status.FAILED:
        fields["error"] = {
            **error,
            "message": f"task {task_id!r} failed: {error.get('message', '')}",
        }
    fields.update(_add_usage(job_doc, task_doc or {}, usage, cost))
    if _finished_count(job_doc) + 1 + skipped >= int(job_doc["tasks_total"]):
        fields["finished_at"] = docs.iso(now)
    tx.update(job_path, fields)


def _finished_count(job_doc: Doc) -> int:
    return sum(int(job_doc.get(k, 0)) for k in ("tasks_succeeded", "tasks_failed", "tasks_skipped"))

"""How a task run ends, and how the job run learns it is over.

Concurrent completions of one run must not queue behind each other (Firestore allows about one
sustained write per second per document, and its transactions lock what they read). So a
completing transaction touches only documents no other completion writes:

- **Succeed**: the task run itself; the run of each successor that has no other predecessor
  (created if absent); and, for a join, this predecessor's own arrival document. The join's task
  run is created after the commit by whichever predecessor sees every arrival
  (`release_joins`, create-if-absent in a transaction), so the predecessors of a join never read
  each other's documents.
- **Fail**: the task run, every task that can no longer run (SKIPPED), and the job run's status.
- **Finish** (`reconcile_run`): no counter is kept in the job run. After a completion that made
  no new work, a cheap query asks whether any task run is still PENDING or RUNNING; when none
  is, the run's task runs are read once, checked against the graph (a task whose predecessors
  all succeeded but has no run yet is created: a join whose last predecessor's process died
  after its commit), and the job run gets its status, counts, outputs, usage and cost.

Each step is idempotent, so a redelivered event, a crash between two of them, or two workers
doing the same repair change nothing twice; the sweeper calls `reconcile_run` for runs that
look stalled.

A cancelled run (`llm_scheduler.execution.cancel`) starts nothing more: its running task runs
are CANCELLED, so their completion is refused (`Lease.require`); a join released after the
cancel by a predecessor that completed before it is created CANCELLED; and `reconcile_run`
leaves the run as the cancel left it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.engine.records import add_usage
from llm_scheduler.engine.values import task_variables
from llm_scheduler.execution import blobs, map_runs, run_telemetry, sub_job_runs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import run_error
from llm_scheduler.execution.documents import FINISHED, RUNNABLE, RunConfig, Status
from llm_scheduler.execution.endings import ended_fields, mark_failed, skipped_doc
from llm_scheduler.execution.lease import Lease
from llm_scheduler.execution.submit import new_task_run_doc
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free
from llm_scheduler.v1 import run_pb2

__all__ = [
    "fail_task",
    "gather_inputs",
    "needed_predecessors",
    "reconcile_run",
    "release_joins",
    "succeed_task",
    "task_totals",
]


def needed_predecessors(run: RunConfig, task_id: str) -> tuple[str, ...]:
    """The predecessors a task waits for in this run (those the run can reach)."""
    return run.needed.get(task_id, ())


def _is_join(run: RunConfig, task_id: str) -> bool:
    return len(needed_predecessors(run, task_id)) > 1


@lock_free
def gather_inputs(store: Store, run: RunConfig, task_id: str) -> dict[str, Any]:
    """A task's variables: the job input, its defaults, and its predecessors' outputs.

    Read when the task is claimed (not carried in its document), so a task-run document stays
    small however large the outputs it receives. In a replay, inputs a person edited in the
    recorded run win.
    """
    upstream: list[tuple[str, Mapping[str, Any]]] = []
    for predecessor in needed_predecessors(run, task_id):
        doc = store.get(docs.task_run_path(run.run_id, predecessor))
        if doc is None or doc.get("status") != Status.SUCCEEDED:
            continue
        doc = blobs.inline(store, doc, f"task run {predecessor!r} of run {run.run_id!r}")
        upstream.append((predecessor, dict(doc.get("outputs") or {})))
    variables = task_variables(run.inputs, run.tasks[task_id], upstream)
    if run.replay is not None:
        variables.update(run.replay.edited_task_inputs(task_id))
    return variables


def task_totals(records: Sequence[run_pb2.StepRun]) -> tuple[Doc, float]:
    """The summed token usage (as a document) and cost of a task's steps."""
    usage = run_pb2.TokenUsage()
    cost = 0.0
    for record in records:
        add_usage(usage, record.usage)
        cost += record.cost_usd
    return docs.record_to_doc(usage), cost


def succeed_task(
    tx: Transaction,
    run: RunConfig,
    task_id: str,
    lease: Lease,
    outputs: blobs.OutOfLine,
    usage: Doc,
    cost: float,
    last_step: tuple[str, Doc] | None = None,
) -> list[str]:
    """Marks the task SUCCEEDED and starts what it unblocks; returns the task runs it created.

    Successors with this task as their only predecessor are created here; for a join, only
    this task's arrival is recorded (`release_joins` creates the join after the commit).
    ``last_step`` (its path and stored document) is written with the completion, when given.
    """
    task_doc = lease.require(tx)
    step_exists = last_step is not None and tx.get(last_step[0]) is not None
    singles: dict[str, Doc | None] = {}
    arrivals: dict[str, Doc | None] = {}
    for successor in run.graph.successors[task_id]:
        if successor not in run.reachable:
            continue
        if _is_join(run, successor):
            arrivals[successor] = tx.get(docs.arrival_path(run.run_id, successor, task_id))
        else:
            singles[successor] = tx.get(docs.task_run_path(run.run_id, successor))
    now = lease.clock()
    tx.update(lease.task_path, ended_fields(Status.SUCCEEDED, task_doc, outputs, usage, cost, now))
    if last_step is not None and not step_exists:
        tx.set(*last_step)
    created: list[str] = []
    for successor, existing in singles.items():
        if existing is None or existing.get("status") == Status.RESET:
            tx.set(
                docs.task_run_path(run.run_id, successor),
                new_task_run_doc(run.run_id, successor, now),
            )
            created.append(successor)
    for join, arrival in arrivals.items():
        if arrival is None:
            tx.set(
                docs.arrival_path(run.run_id, join, task_id),
                {"task_id": task_id, "at": docs.iso(now)},
            )
    return created


@lock_free
def release_joins(store: Store, run: RunConfig, task_id: str, now: float) -> list[str]:
    """Creates the run of each join after ``task_id`` whose predecessors have all arrived.

    Called after the completion committed. Several predecessors finishing together may each
    see every arrival: the creation is a transaction that creates the task run only if it is
    absent (or a resume's placeholder), so the join starts once.

    Returns:
        The joins whose task runs this call created.
    """
    created: list[str] = []
    for join in run.graph.successors[task_id]:
        if join not in run.reachable or not _is_join(run, join):
            continue
        needed = len(needed_predecessors(run, join))
        if store.count(docs.arrivals_collection(run.run_id, join)) < needed:
            continue
        if store.run_transaction(functools.partial(_release_join, run=run, join=join, now=now)):
            created.append(join)
    return created


def _release_join(tx: Transaction, run: RunConfig, join: str, now: float) -> bool:
    """Creates a join's run; CANCELLED (returning False) when the run was cancelled meanwhile."""
    job = tx.get(docs.job_run_path(run.run_id))
    if job is not None and job.get("status") == Status.CANCELLED:
        doc = {
            **new_task_run_doc(run.run_id, join, now),
            "status": Status.CANCELLED,
            "error": run_error(job),
            "finished_at": docs.iso(now),
        }
        _write_if_absent(tx, run, join, doc)
        return False
    return _create_if_absent(tx, run, join, now)


def _create_if_absent(tx: Transaction, run: RunConfig, task_id: str, now: float) -> bool:
    return _write_if_absent(tx, run, task_id, new_task_run_doc(run.run_id, task_id, now))


def _skip_if_absent(tx: Transaction, run: RunConfig, task_id: str, now: float) -> bool:
    return _write_if_absent(tx, run, task_id, skipped_doc(run.run_id, task_id, now))


def _write_if_absent(tx: Transaction, run: RunConfig, task_id: str, doc: Doc) -> bool:
    """Writes a task run unless it exists (a resume's placeholder counts as absent)."""
    path = docs.task_run_path(run.run_id, task_id)
    existing = tx.get(path)
    if existing is not None and existing.get("status") != Status.RESET:
        return False
    tx.set(path, doc)
    return True


def fail_task(
    tx: Transaction,
    run: RunConfig,
    task_id: str,
    lease: Lease,
    failure: blobs.OutOfLine,
    error: Doc,
    usage: Doc,
    cost: float,
) -> int:
    """Marks the task FAILED, every task that can no longer run SKIPPED, and the job FAILED.

    Args:
        tx: The transaction.
        run: The run's config.
        task_id: The failed task.
        lease: Our claim on it.
        failure: The ``failed_step`` field (out of line when large).
        error: The task's `ErrorInfo` as a document (message already shortened).
        usage: The task's token usage, failed step included.
        cost: Its cost.

    Returns:
        How many tasks were skipped.
    """
    return mark_failed(
        tx, run, task_id, lease.require(tx), failure, error, usage, cost, lease.clock()
    )


@lock_free
def reconcile_run(store: Store, run: RunConfig, now: float) -> str:
    """Finishes the job run when no task can run any more, repairing what a crash left undone.

    Cheap while the run has work (one query that finds a PENDING or RUNNING task run). Otherwise
    it reads the run's task runs once and walks the graph: a task whose predecessors all
    succeeded but that has no run is created, one whose predecessor failed is marked SKIPPED;
    when every task the run can reach is finished, the job run gets its final fields.

    A cancelled run is left as it is (``done``): nothing is created, skipped or finished.

    Returns:
        ``busy`` (a task is PENDING or RUNNING), ``repaired`` (missing task runs were written),
        ``finished`` (this call finished the job run) or ``done`` (it was already finished).
    """
    collection = docs.task_runs_collection(run.run_id)
    if store.query(collection, "status", list(RUNNABLE), limit=1):
        return "busy"
    job = store.get(docs.job_run_path(run.run_id))
    if job is not None and job.get("status") == Status.CANCELLED:
        return "done"
    task_docs: dict[str, Doc] = {}
    for path, doc in store.list(collection):
        if doc.get("status") != Status.RESET:
            task_docs[path.rsplit("/", 1)[1]] = doc
    ready: list[str] = []
    blocked: list[str] = []
    waiting: list[str] = []
    for task_id in run.graph.topological_order():
        if task_id not in run.reachable:
            continue
        status = task_docs.get(task_id, {}).get("status")
        if status in FINISHED:
            continue
        if status in RUNNABLE:
            return "busy"  # created since the query
        if status == Status.WAITING:
            if not task_docs[task_id].get("waiting_child"):
                waiting.append(task_id)
            continue
        statuses = [task_docs.get(p, {}).get("status") for p in needed_predecessors(run, task_id)]
        if all(s == Status.SUCCEEDED for s in statuses):
            ready.append(task_id)
        elif any(s in (Status.FAILED, Status.SKIPPED) for s in statuses):
            blocked.append(task_id)
    # A map whose items are all finished, whose last item's worker died before it counted
    # them, is moved on here; so is a task (or a map's item) whose sub-job's child finished
    # while nothing woke it.
    moved = {map_runs.check_map(store, run, task_id, now) for task_id in waiting}
    for task_run_id, doc in task_docs.items():
        if doc.get("status") == Status.WAITING and doc.get("waiting_child"):
            path = docs.task_run_path(run.run_id, task_run_id)
            if sub_job_runs.wake_if_finished(store, path, doc, now):
                moved.add("ready")
    if ready or blocked:
        for task_id in ready:
            store.run_transaction(
                functools.partial(_create_if_absent, run=run, task_id=task_id, now=now)
            )
        for task_id in blocked:
            store.run_transaction(
                functools.partial(_skip_if_absent, run=run, task_id=task_id, now=now)
            )
        return "repaired"
    if {"ready", "failed"} & moved:
        return "repaired"
    if waiting or any(doc.get("status") == Status.WAITING for doc in task_docs.values()):
        return "busy"
    return "finished" if _finish(store, run, task_docs, now) else "done"


def _finish(store: Store, run: RunConfig, task_docs: Mapping[str, Doc], now: float) -> bool:
    counts = {status: 0 for status in FINISHED}
    usage = run_pb2.TokenUsage()
    cost = 0.0
    first_failure = ""
    for task_id in run.graph.task_ids:
        doc = task_docs.get(task_id)
        if doc is None or task_id not in run.reachable:
            continue
        status = str(doc.get("status"))
        counts[status] = counts.get(status, 0) + 1
        if status == Status.FAILED and not first_failure:
            first_failure = task_id
        add_usage(usage, docs.record_from_doc(doc.get("usage") or {}, run_pb2.TokenUsage))
        cost += float(doc.get("cost_usd") or 0.0)
    failed = counts[Status.FAILED] > 0
    outputs: dict[str, Any] = {}
    if not failed:
        for sink in run.graph.sinks:
            doc = task_docs.get(sink)
            if sink in run.reachable and doc is not None and doc.get("status") == Status.SUCCEEDED:
                doc = blobs.inline(store, doc, f"task run {sink!r} of run {run.run_id!r}")
                outputs[sink] = dict(doc.get("outputs") or {})
    data = blobs.out_of_line(store, {"outputs": outputs}, docs.INLINE_FIELD_BYTES)
    job_path = docs.job_run_path(run.run_id)

    def finish(tx: Transaction) -> bool:
        job_doc = tx.get(job_path)
        if job_doc is None or job_doc.get("finished_at"):
            return False
        fields: Doc = {
            "status": Status.FAILED if failed else Status.SUCCEEDED,
            "tasks_succeeded": counts[Status.SUCCEEDED],
            "tasks_failed": counts[Status.FAILED],
            "tasks_skipped": counts[Status.SKIPPED],
            "usage": docs.record_to_doc(usage),
            "cost_usd": cost,
            "finished_at": docs.iso(now),
        }
        if not failed:
            fields.update(blobs.with_fields(job_doc, data))
            fields["error"] = None
        elif not job_doc.get("error"):
            error = dict(task_docs[first_failure].get("error") or {})
            fields["error"] = {
                **error,
                "message": f"task {first_failure!r} failed: {error.get('message', '')}",
            }
        tx.update(job_path, fields)
        return True

    finished = store.run_transaction(finish)
    if finished:
        # The run of a sub-job step: the task waiting for it goes on.
        child_doc = store.get(job_path)
        if child_doc is not None:
            sub_job_runs.wake_caller(store, child_doc, now)
            run_telemetry.report_job(run, child_doc)
    return finished

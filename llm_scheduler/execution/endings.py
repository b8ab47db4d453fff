"""How a task run ends: its final fields, and a failure's consequences.

`ended_fields` are what every ending writes on the task run (succeeded or failed, a task or a
map's item); `mark_failed` fails a task (the task FAILED, what depends on it SKIPPED, the job
FAILED), for a claimed task's failure (`completion.fail_task`) and for a map whose item failed
(`map_runs.check_map`).
"""

from __future__ import annotations

from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import RunConfig, Status
from llm_scheduler.store.base import Doc, Transaction

__all__ = ["ended_fields", "mark_failed", "skipped_doc"]


def ended_fields(
    status: str,
    current: Doc,
    data: blobs.OutOfLine,
    usage: Doc,
    cost: float,
    now: float,
    error: Doc | None = None,
) -> Doc:
    """The fields that end a task run: its status, data, totals, no lease, ``finished_at``.

    Args:
        status: SUCCEEDED or FAILED.
        current: The task run's document (read in the ending transaction).
        data: Its ``outputs`` or ``failed_step`` (out of line when large).
        usage: Its token usage.
        cost: Its cost.
        now: The time it ends.
        error: Its `ErrorInfo` as a document, for a failure.
    """
    fields: Doc = {
        "status": status,
        **blobs.with_fields(current, data),
        "usage": usage,
        "cost_usd": cost,
        "lease_owner": "",
        "lease_expires_at": 0.0,
        "finished_at": docs.iso(now),
    }
    if error is not None:
        fields["error"] = error
    return fields


def skipped_doc(run_id: str, task_id: str, now: float) -> Doc:
    """The document of a task run that will not run (a task it depends on failed)."""
    return {
        "task_run_id": task_id,
        "task_id": task_id,
        "job_run_id": run_id,
        "status": Status.SKIPPED,
        "created_at": docs.iso(now),
    }


def mark_failed(
    tx: Transaction,
    run: RunConfig,
    task_id: str,
    task_doc: Doc,
    failure: blobs.OutOfLine,
    error: Doc,
    usage: Doc,
    cost: float,
    now: float,
) -> int:
    """Marks a task FAILED, every task that can no longer run SKIPPED, and the job FAILED.

    Args:
        tx: The transaction.
        run: The run's config.
        task_id: The failed task.
        task_doc: Its document, read in ``tx``.
        failure: The ``failed_step`` field (out of line when large).
        error: The task's `ErrorInfo` as a document (message already shortened).
        usage: The task's token usage, failed step included.
        cost: Its cost.
        now: The time of the failure.

    Returns:
        How many tasks were skipped.
    """
    task_path = docs.task_run_path(run.run_id, task_id)
    job_path = docs.job_run_path(run.run_id)
    job_doc = tx.get(job_path)
    descendants = sorted((run.graph.reachable_from(task_id) - {task_id}) & run.reachable)
    existing = {d: tx.get(docs.task_run_path(run.run_id, d)) for d in descendants}
    tx.update(task_path, ended_fields(Status.FAILED, task_doc, failure, usage, cost, now, error))
    skipped = 0
    for descendant, doc in existing.items():
        if doc is None or doc.get("status") == Status.RESET:
            skipped += 1
            tx.set(
                docs.task_run_path(run.run_id, descendant),
                skipped_doc(run.run_id, descendant, now),
            )
    if job_doc is not None and job_doc.get("status") != Status.FAILED:
        tx.update(
            job_path,
            {
                "status": Status.FAILED,
                "error": {
                    **error,
                    "message": f"task {task_id!r} failed: {error.get('message', '')}",
                },
            },
        )
    return skipped

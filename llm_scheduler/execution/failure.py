"""Recording a task's failure: the task FAILED, what depends on it SKIPPED, the job FAILED.

Shared by a claimed task's failure (`completion.fail_task`) and a map's, whose item failed
(`map_runs.check_map`).
"""

from __future__ import annotations

from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import RunConfig, Status
from llm_scheduler.store.base import Doc, Transaction

__all__ = ["mark_failed", "skipped_doc"]


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
    tx.update(
        task_path,
        {
            "status": Status.FAILED,
            "error": error,
            **blobs.with_fields(task_doc, failure),
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

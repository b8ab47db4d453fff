"""Resuming a failed, cancelled or interrupted event-driven run where it stopped."""

from __future__ import annotations

import contextlib
import time

from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.completion import reconcile_run
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import run_config
from llm_scheduler.execution.submit import DEFAULT_MAX_ATTEMPTS
from llm_scheduler.store.base import Doc, Store, Transaction

__all__ = ["resume_run"]


def resume_run(store: Store, run_id: str) -> list[str]:
    """Makes a failed, cancelled or interrupted run runnable again; returns the task ids requeued.

    Failed and cancelled tasks, and tasks still marked RUNNING (their worker is assumed dead:
    resuming is the user's statement that nothing else is running this run), go back to
    PENDING; their persisted steps are kept, so they continue after their last completed step
    and no completed step is called again. A task cancelled while it ran whose worker still
    holds its lease (the step in flight at the cancel is not finished yet) is given back to that
    lease, RUNNING: its worker goes on, or the lease expires and another worker continues it,
    so that step is not called twice. Tasks skipped because of a failure become placeholders
    that their predecessors re-create when they succeed. The job run is RUNNING again, and each
    requeued task has its full number of attempts again. A run left with nothing to run (e.g.
    one that stopped between a task's completion and the job's) is repaired or finished here.
    The child runs of sub-job steps that a requeued task waited for are resumed too.

    Raises:
        UserError: There is no such run, or it already succeeded.
    """
    job_path = docs.job_run_path(run_id)
    task_docs = store.list(docs.task_runs_collection(run_id))
    now = time.time()

    children: list[str] = []

    def requeue(tx: Transaction) -> list[str]:
        children.clear()
        job = tx.get(job_path)
        if job is None:
            raise UserError(f"no job run {run_id!r} in {store.url}")
        if job.get("status") == Status.SUCCEEDED:
            raise UserError(f"job run {run_id!r} already succeeded; replay it instead")
        current: dict[str, Doc | None] = {path: tx.get(path) for path, _ in task_docs}
        requeued: list[str] = []
        for path, doc in current.items():
            if doc is None:
                continue
            status = doc.get("status")
            if status in (Status.FAILED, Status.RUNNING, Status.CANCELLED):
                fields: Doc = {
                    "status": Status.PENDING,
                    "lease_owner": "",
                    "lease_expires_at": 0.0,
                    "pending_since": now,
                    "max_attempt": int(doc.get("attempt", 0)) + DEFAULT_MAX_ATTEMPTS,
                    "error": None,
                    "failed_step": None,
                    "last_error": None,
                    "finished_at": None,
                }
                if _worker_still_holds(doc, now):
                    fields.update(
                        status=Status.RUNNING,
                        lease_owner=doc["lease_owner"],
                        lease_expires_at=doc["lease_expires_at"],
                    )
                refs = dict(doc.get("$blobs") or {})
                if refs.pop("failed_step", None):
                    fields["$blobs"] = refs
                tx.update(path, fields)
                requeued.append(str(doc.get("task_id", path.rsplit("/", 1)[1])))
                if doc.get("waiting_child"):
                    children.append(str(doc["waiting_child"]))
            elif status == Status.SKIPPED:
                tx.update(path, {"status": Status.RESET})
        tx.update(
            job_path,
            {
                "status": Status.RUNNING,
                "tasks_succeeded": None,
                "tasks_failed": None,
                "tasks_skipped": None,
                "tasks_cancelled": None,
                "error": None,
                "finished_at": None,
            },
        )
        return requeued

    requeued = store.run_transaction(requeue)
    for child_id in dict.fromkeys(children):  # the runs of its sub-job steps that stopped
        with contextlib.suppress(UserError):  # succeeded: the step takes its outputs
            resume_run(store, child_id)
    run = run_config(store, run_id)
    if run is not None and not requeued:
        reconcile_run(store, run, now)
    return requeued


def _worker_still_holds(task: Doc, now: float) -> bool:
    """Whether a cancelled task's worker is still finishing its step (its lease is live)."""
    return (
        task.get("status") == Status.CANCELLED
        and bool(task.get("lease_owner"))
        and float(task.get("lease_expires_at") or 0) > now
    )

"""Resuming a failed or interrupted event-driven run where it stopped."""

from __future__ import annotations

from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Doc, Store, Transaction

__all__ = ["resume_run"]


def resume_run(store: Store, run_id: str) -> list[str]:
    """Makes a failed or interrupted run runnable again; returns the task ids requeued.

    Failed tasks and tasks still marked RUNNING (their worker is assumed dead: resuming is the
    user's statement that nothing else is running this run) go back to PENDING; their persisted
    steps are kept, so they continue after their last completed step and no completed step is
    called again. Tasks skipped because of a failure become placeholders that their
    predecessors re-create when they succeed. The job run is RUNNING again.

    Raises:
        UserError: There is no such run, or it already succeeded.
    """
    job_path = docs.job_run_path(run_id)
    task_docs = store.list(docs.task_runs_collection(run_id))

    def requeue(tx: Transaction) -> list[str]:
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
            if status in (Status.FAILED, Status.RUNNING):
                tx.update(
                    path,
                    {
                        "status": Status.PENDING,
                        "lease_owner": "",
                        "lease_expires_at": 0.0,
                        "error": None,
                        "failed_step": None,
                        "finished_at": None,
                    },
                )
                requeued.append(str(doc.get("task_id", path.rsplit("/", 1)[1])))
            elif status == Status.SKIPPED:
                tx.update(path, {"status": Status.RESET})
        tx.update(
            job_path,
            {
                "status": Status.RUNNING,
                "tasks_failed": 0,
                "tasks_skipped": 0,
                "error": None,
                "finished_at": None,
            },
        )
        return requeued

    return store.run_transaction(requeue)

"""Reading an event-driven run back from a store as one `JobRun` record."""

from __future__ import annotations

from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.store.base import Store
from llm_scheduler.v1 import run_pb2

__all__ = ["read_job_run"]


def read_job_run(store: Store, run_id: str) -> run_pb2.JobRun | None:
    """The job run with every task run and its persisted steps, or None when there is none.

    Tasks come in the job's task order; tasks that have no run yet are left out.
    """
    job_doc = store.get(docs.job_run_path(run_id))
    if job_doc is None:
        return None
    job_run = docs.record_from_doc(job_doc, run_pb2.JobRun)
    task_docs = dict(store.list(docs.task_runs_collection(run_id)))
    for task in job_run.config.tasks:
        task_doc = task_docs.get(docs.task_run_path(run_id, task.task_id))
        if task_doc is None:
            continue
        task_run = docs.record_from_doc(task_doc, run_pb2.TaskRun)
        for _, step_doc in store.list(docs.step_runs_collection(run_id, task.task_id)):
            step_doc = blobs.inline(store, step_doc)
            task_run.steps.append(docs.record_from_doc(step_doc, run_pb2.StepRun))
        if task_doc.get("failed_step"):
            task_run.steps.append(docs.record_from_doc(task_doc["failed_step"], run_pb2.StepRun))
        job_run.tasks.append(task_run)
    return job_run

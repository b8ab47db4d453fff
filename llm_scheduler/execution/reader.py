"""Reading an event-driven run back from a store as one `JobRun` record."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.engine.items import has_items
from llm_scheduler.engine.records import add_usage
from llm_scheduler.execution import blobs, map_runs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Doc, Store
from llm_scheduler.v1 import run_pb2

__all__ = ["read_job_run"]


def read_job_run(
    store: Store,
    run_id: str,
    *,
    task_ids: Collection[str] | None = None,
    steps: bool = True,
    children: bool = True,
) -> run_pb2.JobRun | None:
    """The job run with every task run and its persisted steps, or None when there is none.

    Values stored out of line are read back; each task run carries its config (from the job's)
    and its predecessors. Tasks come in the job's task order; tasks that have no run yet are
    left out.

    Args:
        store: Where the run lives.
        run_id: The job run.
        task_ids: Read only these tasks' runs (one task's details of a large run); all when
            None. The totals of a run not finished yet are then those of these tasks.
        steps: Read the step runs too; without, task runs come without steps (a summary of a
            large run, one query per task fewer).
        children: Read the child runs of its sub-job steps into ``children`` (when all its
            tasks are read); without, a reader going through every run of a store reads each
            child run once, as a run of its own.
    """
    job_doc = store.get(docs.job_run_path(run_id))
    if job_doc is None:
        return None
    job_doc = blobs.inline(store, job_doc, f"job run {run_id!r}")
    job_run = docs.record_from_doc(job_doc, run_pb2.JobRun)
    graph = TaskGraph.from_job(job_run.config)
    if task_ids is None:
        task_docs = dict(store.list(docs.task_runs_collection(run_id)))
    else:
        paths = [docs.task_run_path(run_id, task_id) for task_id in task_ids]
        task_docs = {path: doc for path in paths if (doc := store.get(path)) is not None}
    for task in job_run.config.tasks:
        task_doc = task_docs.get(docs.task_run_path(run_id, task.task_id))
        if task_doc is None or task_doc.get("status") == Status.RESET:
            continue
        # Filled in place: appending a record copies it, steps and all.
        task_run = job_run.tasks.add()
        _task_run(store, run_id, task_doc, steps, task_run)
        task_run.config.CopyFrom(task)
        task_run.predecessors[:] = graph.predecessors.get(task.task_id, ())
        if has_items(task):
            # Its items are task runs of their own (`T~000003`): folded into its record, as
            # a run in process records them.
            if task_ids is None:
                items = [doc for doc in task_docs.values() if doc.get("map_task") == task.task_id]
                items = [doc for doc in items if doc.get("status") != Status.RESET]
                items.sort(key=lambda doc: int(doc.get("item_index") or 0))
            else:
                items = map_runs.item_docs(store, run_id, task.task_id)
            for item_doc in items:
                item = task_run.items.add()
                _task_run(store, run_id, item_doc, steps, item)
                item.predecessors[:] = task_run.predecessors
    if task_ids is None and children:
        # The runs of its sub-job steps (finished, or still running for a waiting task).
        for child_id in _child_ids(job_run, task_docs.values()):
            child = read_job_run(store, child_id, steps=steps)
            if child is not None:
                job_run.children.append(child)
    if not job_doc.get("finished_at") or job_doc.get("status") == Status.CANCELLED:
        # The job run gets its totals when it finishes; until then they are the tasks' sums.
        # A cancelled run has none: its tasks stopped mid-run record theirs as they stop.
        job_run.ClearField("usage")
        job_run.cost_usd = sum(task_run.cost_usd for task_run in job_run.tasks)
        for task_run in job_run.tasks:
            add_usage(job_run.usage, task_run.usage)
    return job_run


def _task_run(
    store: Store, run_id: str, task_doc: Doc, steps: bool, task_run: run_pb2.TaskRun
) -> None:
    """Fills an empty task run's record from its document (and its persisted steps)."""
    task_run_id = str(task_doc.get("task_run_id") or task_doc.get("task_id"))
    task_doc = blobs.inline(store, task_doc, f"task run {task_run_id!r} of run {run_id!r}")
    docs.record_into(task_run, task_doc)
    if not steps:
        return
    for _, step_doc in store.list(docs.step_runs_collection(run_id, task_run_id)):
        docs.record_into(task_run.steps.add(), blobs.inline(store, step_doc))
    if task_doc.get("failed_step"):
        docs.record_into(task_run.steps.add(), task_doc["failed_step"])


def _child_ids(job_run: run_pb2.JobRun, task_docs: Iterable[Doc]) -> list[str]:
    """The child runs of a run's sub-job steps, in run id order."""
    found: set[str] = set()
    for task_run in job_run.tasks:
        for run in (task_run, *task_run.items):
            found.update(step.child_run_id for step in run.steps if step.child_run_id)
    found.update(str(doc["waiting_child"]) for doc in task_docs if doc.get("waiting_child"))
    return sorted(found)

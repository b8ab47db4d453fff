"""Sub-job steps on the run pages: links from a step to its child run, and from a child back.

A sub-job step's child is a job run of its own (``{run}~{task_run}~{step}``, see
`execution.sub_job_runs`). A step's details link to its child with the child's status, tokens
and cost (`child_view`); a task run WAITING for its child says which (``waiting_child``); a
child's page names the run, task and step that called it (`caller_view`).

`read_children` is the one function here that reads the store: the child runs' job-run
documents (never their tasks), for the few task runs a task or item page shows. The others
only reshape records, as `run_view` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.store.base import Store
from llm_scheduler.v1 import run_pb2
from llm_scheduler.web.run_view import FINISHED_STATUSES, status_name

__all__ = [
    "add_child_runs",
    "caller_view",
    "child_view",
    "read_children",
    "run_url",
    "waiting_children",
]


def run_url(run_id: str) -> str:
    """The page of a run (its id quoted: a child's id holds ``~``, which stays as it is)."""
    return "/runs/" + quote(run_id, safe="~")


def child_view(
    child_id: str, child: run_pb2.JobRun | None, *, linked: bool = True
) -> dict[str, Any]:
    """A child run as a step or a waiting task shows it: id, link, status, tokens and cost.

    Args:
        child_id: The child run's id.
        child: Its record (its job run alone is enough); None when it is not there (yet).
        linked: Whether it has a page (not for a trace, which is not in the store).

    Returns:
        ``{"run_id", "url", "job_id", "status", "finished", "usage", "cost_usd"}``; ``url``
        is None when not ``linked``.
    """
    status = status_name(child.status) if child is not None else "pending"
    usage = child.usage if child is not None else run_pb2.TokenUsage()
    return {
        "run_id": child_id,
        "url": run_url(child_id) if linked else None,
        "job_id": child.job_id if child is not None else "",
        "status": status,
        "finished": status in FINISHED_STATUSES,
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "cache_write_input_tokens": usage.cache_write_input_tokens,
        },
        "cost_usd": child.cost_usd if child is not None else 0.0,
    }


def caller_view(job_run: run_pb2.JobRun, *, linked: bool = True) -> dict[str, Any] | None:
    """Who called a child run: the run, task run and step of its sub-job step; None if no child.

    Returns:
        ``{"run_id", "task_run_id", "task_id", "item_index", "step_index", "label", "url",
        "task_url"}``: ``label`` reads ``run R, task write[2], step 0``; ``task_url`` is the
        caller's task page (its item's page for a map item). URLs are None when not ``linked``.
    """
    if not job_run.caller_run_id:
        return None
    task_run_id = job_run.caller_task_run_id
    task_id, _, index = task_run_id.partition("~")
    item_index = int(index) if index.isdigit() else None
    task = task_id if item_index is None else f"{task_id}[{item_index}]"
    base = run_url(job_run.caller_run_id)
    task_url = f"{base}/tasks/{quote(task_id, safe='')}"
    if item_index is not None:
        task_url += f"/items/{item_index}"
    return {
        "run_id": job_run.caller_run_id,
        "task_run_id": task_run_id,
        "task_id": task_id,
        "item_index": item_index,
        "step_index": job_run.caller_step_index,
        "label": f"run {job_run.caller_run_id}, task {task}, step {job_run.caller_step_index}",
        "url": base if linked else None,
        "task_url": task_url if linked else None,
    }


def waiting_children(job_run: run_pb2.JobRun) -> dict[str, run_pb2.JobRun]:
    """The children of a run not finished yet, by the id of the task run that waits for each.

    Read from ``job_run.children`` (`read_job_run` reads a waiting task's child there).
    """
    return {
        child.caller_task_run_id: child
        for child in job_run.children
        if status_name(child.status) not in FINISHED_STATUSES
    }


def add_child_runs(
    view: dict[str, Any], children: Mapping[str, run_pb2.JobRun], *, linked: bool = True
) -> dict[str, Any]:
    """Adds child runs to a task's or an item's details (`task_view`, `map_view.item_view`).

    Each step with a child gets ``child_run`` (`child_view`), a pending step whose child is
    running too; the details get ``waiting_child``: the child the task run waits for, or None.

    Args:
        view: The details; changed in place.
        children: The child runs by id, as `read_children` or ``JobRun.children`` give them.
        linked: Whether the children have pages.

    Returns:
        The view.
    """
    task_run_id = view.get("task_run_id") or view["task_id"]
    by_step = {
        child.caller_step_index: child
        for child in children.values()
        if child.caller_task_run_id == task_run_id and child.caller_run_id == view["run_id"]
    }
    for step in view["steps"]:
        child_id = step.get("child_run_id") or ""
        child = children.get(child_id) if child_id else by_step.get(step["index"])
        if child is not None and not child_id:
            child_id = child.run_id
        step["child_run"] = child_view(child_id, child, linked=linked) if child_id else None
    waiting = None
    if view["status"] == "waiting":
        pending = [child for child in by_step.values() if status_name(child.status) != "succeeded"]
        if pending:
            waiting = child_view(pending[-1].run_id, pending[-1], linked=linked)
    view["waiting_child"] = waiting
    return view


def read_children(
    store: Store, run_id: str, task_runs: Iterable[run_pb2.TaskRun]
) -> dict[str, run_pb2.JobRun]:
    """The child runs of these task runs' sub-job steps, by id: their job runs, no tasks.

    A finished step names its child (``child_run_id``); a task run WAITING names the child it
    waits for on its document (``waiting_child``).
    """
    ids: set[str] = set()
    for task_run in task_runs:
        ids.update(step.child_run_id for step in task_run.steps if step.child_run_id)
        if task_run.status == run_pb2.RUN_STATUS_WAITING:
            path = docs.task_run_path(run_id, task_run.task_run_id or task_run.task_id)
            doc = store.get(path)
            if doc is not None and doc.get("waiting_child"):
                ids.add(str(doc["waiting_child"]))
    children: dict[str, run_pb2.JobRun] = {}
    for child_id in sorted(ids):
        doc = store.get(docs.job_run_path(child_id))
        if doc is None:
            continue
        doc = blobs.inline(store, doc, f"job run {child_id!r}")
        children[child_id] = docs.record_from_doc(doc, run_pb2.JobRun)
    return children

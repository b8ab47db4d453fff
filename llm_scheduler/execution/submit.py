"""Committing a job run to a store: the write that starts event-driven execution."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.engine.fingerprint import digest
from llm_scheduler.engine.job import new_run_id
from llm_scheduler.engine.values import task_variables
from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Doc, Store, Transaction
from llm_scheduler.v1 import config_pb2

__all__ = ["new_task_run_doc", "start_task_of", "submit_job"]


def start_task_of(job: config_pb2.JobConfig) -> str:
    """The task a (validated) job starts from."""
    return job.start_task or TaskGraph.from_job(job).roots[0]


def new_task_run_doc(
    run_id: str,
    task: config_pb2.TaskConfig,
    variables: Mapping[str, Any],
    predecessors: list[str],
    now: float,
) -> Doc:
    """A PENDING task-run document: committing it is what triggers the task."""
    return {
        "task_run_id": task.task_id,
        "task_id": task.task_id,
        "job_run_id": run_id,
        "status": Status.PENDING,
        "config": docs.record_to_doc(task),
        "inputs": dict(variables),
        "inputs_digest": digest(dict(variables)),
        "predecessors": predecessors,
        "attempt": 0,
        "lease_owner": "",
        "lease_expires_at": 0.0,
        "handoffs": 0,
        "created_at": docs.iso(now),
    }


def submit_job(
    store: Store,
    job: config_pb2.JobConfig,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str = "",
    parent_run_id: str = "",
    default_cache_policy: str = "",
) -> str:
    """Commits a job run and its start task's run; returns the run id.

    Submitting the same run id again changes nothing (create-if-absent), so a retried submit
    never starts a run twice. The job must be validated first.

    Args:
        store: Where the run is committed.
        job: The (validated) job config.
        inputs: Input variables, over the job's ``input_config`` defaults.
        run_id: The run's id; a new one by default.
        parent_run_id: The run this one was derived from, if any.
        default_cache_policy: A `CachePolicy` name (``CACHE_POLICY_USE``) for the run's steps
            whose ``cache`` is DEFAULT; empty for the event-driven default, no cache.

    Raises:
        UserError: ``default_cache_policy`` is not a `CachePolicy` name.
    """
    names = config_pb2.CachePolicy.DESCRIPTOR.values_by_name
    if default_cache_policy and default_cache_policy not in names:
        raise UserError(
            f"unknown cache policy {default_cache_policy!r}: use one of {', '.join(names)}"
        )
    run_id = run_id or new_run_id(job.job_id)
    graph = TaskGraph.from_job(job)
    start = start_task_of(job)
    job_input = {**dataflow.payload(job.input_config), **(inputs or {})}
    tasks = {task.task_id: task for task in job.tasks}
    now = time.time()
    job_doc: Doc = {
        "run_id": run_id,
        "job_id": job.job_id,
        "status": Status.PENDING,
        "config": docs.record_to_doc(job),
        "inputs": job_input,
        "parent_run_id": parent_run_id,
        "tasks_total": len(graph.reachable_from(start)),
        "tasks_succeeded": 0,
        "tasks_failed": 0,
        "tasks_skipped": 0,
        "usage": {},
        "cost_usd": 0.0,
        "created_at": docs.iso(now),
    }
    if default_cache_policy:
        job_doc["default_cache_policy"] = default_cache_policy
    start_doc = new_task_run_doc(
        run_id, tasks[start], task_variables(job_input, tasks[start], []), [], now
    )

    def create(transaction: Transaction) -> None:
        if transaction.get(docs.job_run_path(run_id)) is not None:
            return
        transaction.set(docs.job_run_path(run_id), job_doc)
        transaction.set(docs.task_run_path(run_id, start), start_doc)

    if job.job_id:
        store.set(docs.job_definition_path(job.job_id), docs.record_to_doc(job))
    store.run_transaction(create)
    return run_id

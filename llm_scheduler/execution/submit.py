"""Committing a job run to a store: the write that starts event-driven execution."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.engine.budget import BudgetState, check_budget
from llm_scheduler.engine.job import new_run_id
from llm_scheduler.errors import UserError
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.budget_ledger import ledger_path
from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Doc, Store, Transaction
from llm_scheduler.telemetry.ids import current_traceparent
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "load_job_definition",
    "load_task_definition",
    "new_task_run_doc",
    "save_job_definition",
    "save_task_definition",
    "start_task_of",
    "submit_job",
]

M = TypeVar("M", bound=Message)

# How many times a task may be claimed without finishing (workers that died, internal errors)
# before it fails for good; a handoff (a deadline reached) does not use one up.
DEFAULT_MAX_ATTEMPTS = 5


def start_task_of(job: config_pb2.JobConfig) -> str:
    """The task a (validated) job starts from."""
    return job.start_task or TaskGraph.from_job(job).roots[0]


def new_task_run_doc(run_id: str, task_id: str, now: float) -> Doc:
    """A PENDING task-run document: committing it is what triggers the task.

    It holds control fields only (a few hundred bytes): the task's config is in the job run,
    and its inputs are gathered from the job and its predecessors when it is claimed.
    """
    return {
        "task_run_id": task_id,
        "task_id": task_id,
        "job_run_id": run_id,
        "status": Status.PENDING,
        "attempt": 0,
        "max_attempt": DEFAULT_MAX_ATTEMPTS,
        "lease_owner": "",
        "lease_expires_at": 0.0,
        "handoffs": 0,
        "created_at": docs.iso(now),
        "pending_since": now,
    }


def save_job_definition(store: Store, job: config_pb2.JobConfig) -> None:
    """Saves a job config at ``jobs/{job_id}`` (a large config goes to a blob)."""
    _save_definition(store, docs.job_definition_path(job.job_id), "job_id", job.job_id, job)


def load_job_definition(store: Store, job_id: str) -> config_pb2.JobConfig | None:
    """The job config saved at ``jobs/{job_id}``, or None when there is none."""
    return _load_definition(
        store, docs.job_definition_path(job_id), config_pb2.JobConfig, f"job {job_id!r}"
    )


def save_task_definition(store: Store, task: config_pb2.TaskConfig) -> None:
    """Saves a task config at ``tasks/{task_id}``, where later submissions may find it."""
    _save_definition(store, docs.task_definition_path(task.task_id), "task_id", task.task_id, task)


def load_task_definition(store: Store, task_id: str) -> config_pb2.TaskConfig | None:
    """The task config saved at ``tasks/{task_id}``, or None when there is none (or no such id)."""
    try:
        path = docs.task_definition_path(task_id)
    except UserError:
        return None
    return _load_definition(store, path, config_pb2.TaskConfig, f"task {task_id!r}")


def _save_definition(
    store: Store,
    path: str,
    id_field: str,
    id_value: str,
    config: Message,
    config_doc: Doc | None = None,
) -> None:
    # A definition may be as large as a config gets (a 10,000-task job): a blob beyond 256 KiB.
    if config_doc is None:
        config_doc = docs.record_to_doc(config)
    update = blobs.out_of_line(store, {"config": config_doc}, docs.INLINE_FIELD_BYTES * 16)
    store.set(
        path,
        {
            id_field: id_value,
            "saved_at": docs.iso(time.time()),
            **_present(blobs.with_fields(None, update)),
        },
    )


def _load_definition(store: Store, path: str, message_type: type[M], what: str) -> M | None:
    doc = store.get(path)
    if doc is None:
        return None
    doc = blobs.inline(store, doc, f"saved {what}")
    return docs.record_from_doc(doc.get("config") or {}, message_type)


def submit_job(
    store: Store,
    job: config_pb2.JobConfig,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str = "",
    parent_run_id: str = "",
    default_cache_policy: str = "",
    offline: bool = False,
    replay_source: run_pb2.JobRun | None = None,
    caller: Mapping[str, Any] | None = None,
    schedule_id: str = "",
    schedule_slot: str = "",
    budget_usd: float = 0.0,
) -> str:
    """Commits a job run and its start task's run; returns the run id.

    Submitting the same run id again changes nothing (create-if-absent), so a retried submit
    never starts a run twice. The job must be validated first. No provider key is needed here:
    the workers that run the steps hold them.

    Args:
        store: Where the run is committed.
        job: The (validated) job config.
        inputs: Input variables, over the job's ``input_config`` defaults.
        run_id: The run's id; a new one by default.
        parent_run_id: The run this one was derived from, if any.
        default_cache_policy: A `CachePolicy` name (``CACHE_POLICY_USE``) for the run's steps
            whose ``cache`` is DEFAULT; empty for the event-driven default, no cache.
        offline: Every worker answers the run's model steps with the offline model.
        replay_source: For a replay, the recorded (possibly edited) run: every worker reuses
            its steps whose fingerprint is unchanged (see `llm_scheduler.engine.replay`). It
            is kept with the run (out of line when large).
        caller: For the child run of a sub-job step: ``caller_run_id``,
            ``caller_task_run_id`` and ``caller_step_index``, the step whose task waits for it
            (`llm_scheduler.execution.sub_job_runs`), and the ``traceparent`` that puts it in
            its caller's trace. Its job is not saved as a definition.
        schedule_id: For a run a schedule started: the schedule
            (`llm_scheduler.execution.schedules`). Its job is not saved as a definition.
        schedule_slot: And the slot it fires, as an RFC 3339 UTC timestamp.
        budget_usd: A budget in US dollars for the run's model and embedding calls, its
            sub-jobs' included (0: none): its ledger is committed with the run, and a call that
            could take the run over it is refused before it is made
            (`llm_scheduler.execution.budget_ledger`).

    Raises:
        UserError: ``default_cache_policy`` is not a `CachePolicy` name, ``run_id`` cannot be
            a document id, or ``budget_usd`` is negative or not a finite number.
    """
    names = config_pb2.CachePolicy.DESCRIPTOR.values_by_name
    if default_cache_policy and default_cache_policy not in names:
        raise UserError(
            f"unknown cache policy {default_cache_policy!r}: use one of {', '.join(names)}"
        )
    if budget_usd:
        budget_usd = check_budget(budget_usd)
    run_id = run_id or new_run_id(job.job_id)
    job_path = docs.job_run_path(run_id)
    graph = TaskGraph.from_job(job)
    start = start_task_of(job)
    job_input = {**dataflow.payload(job.input_config), **(inputs or {})}
    now = time.time()
    config_doc = docs.record_to_doc(job)  # once, for the run and the definition
    fields: Doc = {"config": config_doc, "inputs": job_input}
    if replay_source is not None:
        fields["replay_source"] = docs.record_to_doc(replay_source)
    data = blobs.out_of_line(store, fields, docs.INLINE_FIELD_BYTES)
    job_doc: Doc = {
        "run_id": run_id,
        "job_id": job.job_id,
        "status": Status.PENDING,
        "parent_run_id": parent_run_id,
        "start_task": start,
        "tasks_total": len(graph.reachable_from(start)),
        "created_at": docs.iso(now),
        **_present(blobs.with_fields(None, data)),
    }
    if default_cache_policy:
        job_doc["default_cache_policy"] = default_cache_policy
    if offline:
        job_doc["offline"] = True
    # Submitted while an OpenTelemetry span is current (a traced web request): the run's spans
    # join its trace, whichever processes run it (`llm_scheduler.telemetry`).
    traceparent = current_traceparent()
    if traceparent:
        job_doc["traceparent"] = traceparent
    if caller is not None:
        job_doc.update(caller)
    if schedule_id:
        job_doc.update(schedule_id=schedule_id, schedule_slot=schedule_slot)
    if budget_usd:
        job_doc.update(budget_usd=budget_usd, budget_run_id=run_id)
    start_doc = new_task_run_doc(run_id, start, now)

    def create(transaction: Transaction) -> None:
        if transaction.get(job_path) is not None:
            return
        transaction.set(job_path, job_doc)
        if budget_usd:
            transaction.set(ledger_path(run_id), BudgetState(budget_usd=budget_usd).to_doc())
        transaction.set(docs.task_run_path(run_id, start), start_doc)

    if job.job_id and caller is None and not schedule_id:
        # A schedule's job is saved with the schedule (or is a saved job already): saving it
        # again at each slot would overwrite the definition another submission saved.
        path = docs.job_definition_path(job.job_id)
        _save_definition(store, path, "job_id", job.job_id, job, config_doc)
    store.run_transaction(create)
    return run_id


def _present(fields: Doc) -> Doc:
    """The fields of a new document, without the None placeholders of moved ones."""
    return {key: value for key, value in fields.items() if value is not None}

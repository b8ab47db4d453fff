"""Reporting event-driven runs' finished task and job runs to telemetry, from their documents.

Called only when telemetry is on (`llm_scheduler.telemetry.hooks.active`), by whichever process
finishes the record: the task run's completing worker, the job run's finishing one. Steps are
reported by the worker that ran them (`llm_scheduler.execution.protocol`). A failure here is
logged, never raised: telemetry must not fail a run.
"""

from __future__ import annotations

import logging

from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import RunConfig
from llm_scheduler.store.base import Doc, Store, lock_free
from llm_scheduler.telemetry import hooks
from llm_scheduler.v1 import run_pb2

__all__ = ["report_job", "report_task"]

_log = logging.getLogger(__name__)

# The fields of a task-run or job-run document a span needs (not its data: inputs, outputs,
# config, steps).
_TASK_FIELDS = (
    "task_run_id",
    "task_id",
    "job_run_id",
    "status",
    "attempt",
    "error",
    "usage",
    "cost_usd",
    "started_at",
    "finished_at",
    "items_total",
    "item_index",
    "variation",
)
_JOB_FIELDS = (
    "run_id",
    "job_id",
    "status",
    "error",
    "usage",
    "cost_usd",
    "started_at",
    "finished_at",
    "parent_run_id",
    "caller_run_id",
    "caller_task_run_id",
    "caller_step_index",
    "schedule_id",
    "schedule_slot",
)
_JOB_COUNTS = ("tasks_total", "tasks_succeeded", "tasks_failed", "tasks_skipped", "tasks_cancelled")


def _record(doc: Doc, fields: tuple[str, ...], message: type[docs.M]) -> docs.M:
    present = {key: doc[key] for key in fields if doc.get(key) is not None}
    return docs.record_from_doc(present, message)


@lock_free
def report_task(store: Store, run: RunConfig, task_id: str) -> None:
    """Reports a task run (or a map's item) that has just finished (its document is read)."""
    telemetry = hooks.active
    if telemetry is None:
        return
    try:
        doc = store.get(docs.task_run_path(run.run_id, task_id))
        if doc is None:
            return
        record = _record(doc, _TASK_FIELDS, run_pb2.TaskRun)
        record.task_run_id = task_id
        telemetry.task_finished(run.run_id, run.traceparent, record, with_steps=False)
    except Exception:  # telemetry never fails a run
        _log.warning("could not report task run %s of run %s", task_id, run.run_id, exc_info=True)


def report_job(run: RunConfig, job_doc: Doc) -> None:
    """Reports a job run that has just finished, from its document."""
    telemetry = hooks.active
    if telemetry is None:
        return
    try:
        record = _record(job_doc, _JOB_FIELDS, run_pb2.JobRun)
        record.run_id = run.run_id
        counts = {
            f"llm_scheduler.{name}": int(job_doc[name])
            for name in _JOB_COUNTS
            if isinstance(job_doc.get(name), int | float)
        }
        telemetry.job_finished(record, run.traceparent, counts)
    except Exception:  # telemetry never fails a run
        _log.warning("could not report job run %s", run.run_id, exc_info=True)

"""Cancelling an event-driven run: nothing more of it starts, and what is done is kept.

`cancel_run` marks the job run CANCELLED (the reason as its error, with ``finished_at``) and
every task run still PENDING, RUNNING or WAITING (a map, or a task waiting for the child run of
a sub-job step, which is cancelled too) CANCELLED too:

- **A PENDING task** can no longer be claimed (a claim takes a PENDING task, or a RUNNING one
  under an expired lease), so no worker starts it; in the cloud, the event of the write is a
  no-op.
- **A RUNNING task** keeps its lease fields, so its worker knows the cancel is meant for it
  (`llm_scheduler.execution.lease`). The worker learns it at its next lease renewal, a
  single-document update it makes every ``lease_seconds / 3`` anyway (20 s with the default
  60 s lease), so no step pays an extra read. The step in flight then finishes and is
  persisted (it was paid for), no further step starts, and the worker clears its lease and
  records the usage of the steps done. A task whose last step ends before its worker noticed
  is refused at completion (the completing transaction requires the task RUNNING under its
  claim): the step is kept and no successor is created. So a running task starts no step
  later than one renewal period after the cancel, and stops when the step in flight ends.
- **What comes after**: a predecessor that completed just before the cancel may create a
  successor's run; the cancel queries again until nothing of the run is runnable. A join it
  releases after the cancel is created CANCELLED, `completion.reconcile_run` leaves a cancelled
  run as it is, and the sweeper cancels (instead of requeuing) a task of a cancelled run, should
  an interrupted cancel have left one behind.

Firestore commits at most 500 writes in one transaction: the job run and up to `BATCH` task runs
(the RUNNING ones first) are cancelled in the first transaction, so every run with fewer
runnable tasks is cancelled at once, and the rest in transactions of `BATCH` each.

Cancelling is idempotent: cancelling a cancelled run stops only what is still runnable (nothing,
unless an earlier cancel was interrupted) and returns that. `resume_run` continues a cancelled
run after its last persisted steps.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Sequence

from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution import run_telemetry, sub_job_runs
from llm_scheduler.execution.documents import RUNNABLE, Status
from llm_scheduler.store.base import Doc, Store, Transaction
from llm_scheduler.telemetry import hooks as telemetry_hooks

__all__ = ["BATCH", "DEFAULT_REASON", "cancel_run", "cancel_task_run", "run_error"]

# Task runs cancelled per transaction: Firestore commits at most 500 writes in one.
BATCH = 400
DEFAULT_REASON = "cancelled by user"
# `ErrorInfo.type` of a cancelled job or task run.
_ERROR_TYPE = "Cancelled"


def cancel_run(store: Store, run_id: str, *, reason: str = DEFAULT_REASON) -> list[str]:
    """Cancels a job run: no task of it starts again until it is resumed.

    See the module docstring for what happens to running tasks and how soon they stop.

    Args:
        store: Where the run lives.
        run_id: The job run.
        reason: Recorded as the error message of the job run and of each task run stopped.

    Returns:
        The ids of the task runs this call stopped (PENDING, RUNNING or WAITING ones), the
        RUNNING ones first; empty when the run was cancelled already.

    Raises:
        UserError: There is no such run, or it has finished (succeeded or failed).
        StoreError: The store failed; call again to finish the cancel (it is idempotent).
    """
    job_path = docs.job_run_path(run_id)
    collection = docs.task_runs_collection(run_id)
    now = time.time()
    error = {"type": _ERROR_TYPE, "message": reason}

    children: list[str] = []

    def runnable() -> list[str]:
        found = store.query(collection, "status", [*RUNNABLE, Status.WAITING])
        children.extend(sub_job_runs.waiting_children(doc for _, doc in found))
        # RUNNING ones first, so that they are cancelled with the job run whenever there are
        # fewer than `BATCH` of them: no completion after that commit can start a successor.
        found.sort(key=lambda item: item[1].get("status") != Status.RUNNING)
        return [path for path, _ in found]

    paths = runnable()
    marked, stopped = store.run_transaction(
        functools.partial(
            _cancel_job_and_tasks,
            store_url=store.url,
            job_path=job_path,
            paths=paths[:BATCH],
            error=error,
            now=now,
        )
    )
    paths = paths[BATCH:]
    while True:
        for start in range(0, len(paths), BATCH):
            stopped += store.run_transaction(
                functools.partial(
                    _cancel_tasks, paths=paths[start : start + BATCH], error=error, now=now
                )
            )
        # A completion that committed just before its task was cancelled may have created
        # successors meanwhile: look again until nothing of the run is runnable.
        paths = runnable()
        if not paths:
            break
    if marked or stopped:
        _record_counts(store, run_id)
    if marked and telemetry_hooks.active is not None:  # the cancel ends the run: its span
        job_doc = store.get(job_path)
        if job_doc is not None:
            run_telemetry.report_job(docs.run_config_from(run_id, job_doc), job_doc)
    for child_id in dict.fromkeys(children):  # the runs of sub-job steps it waits for
        with contextlib.suppress(UserError):  # finished meanwhile
            cancel_run(store, child_id, reason=reason)
    return stopped


def cancel_task_run(store: Store, path: str, error: Doc, now: float) -> bool:
    """Cancels one task run if it is still PENDING or RUNNING; returns whether it did.

    For the sweeper, which finds a task of a cancelled run that an interrupted cancel left
    runnable.
    """
    return (
        store.update_if(path, functools.partial(_cancelled_fields, error=error, now=now))
        is not None
    )


def run_error(job: Doc) -> Doc:
    """The error to record on a task run of the cancelled job run ``job``."""
    return dict(job.get("error") or {"type": _ERROR_TYPE, "message": DEFAULT_REASON})


def _cancel_job_and_tasks(
    tx: Transaction,
    store_url: str,
    job_path: str,
    paths: Sequence[str],
    error: Doc,
    now: float,
) -> tuple[bool, list[str]]:
    job = tx.get(job_path)
    run_id = job_path.rsplit("/", 1)[1]
    if job is None:
        raise UserError(f"no job run {run_id!r} in {store_url}")
    status = job.get("status")
    if status != Status.CANCELLED and job.get("finished_at"):
        raise UserError(
            f"job run {run_id!r} already {docs.status_name(status)}: there is nothing to "
            "cancel (resume a failed run, or replay it, to run it again)"
        )
    current = {path: tx.get(path) for path in paths}
    marked = status != Status.CANCELLED
    if marked:
        job_error = dict(error)
        earlier = (job.get("error") or {}).get("message")
        if earlier:  # a task had failed; the other branches were still running
            job_error["message"] = f"{error['message']} (after: {earlier})"
        tx.update(
            job_path, {"status": Status.CANCELLED, "error": job_error, "finished_at": docs.iso(now)}
        )
    return marked, _write_cancelled(tx, current, error, now)


def _cancel_tasks(tx: Transaction, paths: Sequence[str], error: Doc, now: float) -> list[str]:
    current = {path: tx.get(path) for path in paths}
    return _write_cancelled(tx, current, error, now)


def _write_cancelled(
    tx: Transaction, current: dict[str, Doc | None], error: Doc, now: float
) -> list[str]:
    stopped: list[str] = []
    for path, doc in current.items():
        fields = _cancelled_fields(doc, error, now)
        if fields is not None:
            tx.update(path, fields)
            stopped.append(path.rsplit("/", 1)[1])
    return stopped


def _cancelled_fields(doc: Doc | None, error: Doc, now: float) -> Doc | None:
    # The lease fields stay: they tell a running worker the cancel is meant for it, and a
    # resume that a live lease still covers the step in flight.
    if doc is None or doc.get("status") not in (*RUNNABLE, Status.WAITING):
        return None
    return {"status": Status.CANCELLED, "error": dict(error), "finished_at": docs.iso(now)}


def _record_counts(store: Store, run_id: str) -> None:
    """Writes the task counts of the cancelled run (final: none of its tasks runs any more)."""
    counts = {Status.SUCCEEDED: 0, Status.FAILED: 0, Status.SKIPPED: 0, Status.CANCELLED: 0}
    for _, doc in store.list(docs.task_runs_collection(run_id)):
        status = doc.get("status")
        if status in counts:
            counts[str(status)] += 1
    fields = {
        "tasks_succeeded": counts[Status.SUCCEEDED],
        "tasks_failed": counts[Status.FAILED],
        "tasks_skipped": counts[Status.SKIPPED],
        "tasks_cancelled": counts[Status.CANCELLED],
    }

    def decide(job: Doc | None) -> Doc | None:
        # A resume right after the cancel makes these moot: it clears them.
        return fields if job is not None and job.get("status") == Status.CANCELLED else None

    store.update_if(docs.job_run_path(run_id), decide)

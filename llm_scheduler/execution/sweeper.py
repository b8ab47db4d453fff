"""Recovering work whose trigger never ran, or whose worker died.

In the cloud a task run moves only when a write to it triggers a function. Three things can
leave one stuck, and each has a sweep, run on a schedule (the ``sweep_expired_leases`` HTTP
function, called every minute by Cloud Scheduler; locally ``dispatcher`` needs none of it):

- **A worker died** (crash, out of memory, instance shut down): the task stays RUNNING under a
  lease nobody renews, and the redelivery of its event usually arrives while the lease is still
  live and is a no-op. `requeue_expired_leases` puts it back to PENDING.
- **A trigger never ran** (an event lost or dropped, or a function that failed before claiming):
  the task stays PENDING. `requeue_stale_pending` rewrites a task run that has been PENDING for
  longer than a grace period, which triggers it again.
- **A run stopped between two writes** (a worker died after a task's completion committed but
  before the join it completed was created, or before the job run was finished):
  `reconcile_stalled_runs` repairs it (`completion.reconcile_run`).

Every requeue is a transaction that re-checks what it saw, and claims are transactions, so a
sweep never makes a task run twice, and two sweepers at once change nothing more than one.

A task of a cancelled run is never requeued: `cancel_run` leaves none runnable, and one that an
interrupted cancel left behind is cancelled here instead (its job run is read once per sweep,
and only for tasks about to be requeued).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable

from llm_scheduler.execution import completion
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import cancel_task_run, run_error
from llm_scheduler.execution.documents import RUNNABLE, Status
from llm_scheduler.execution.protocol import run_config
from llm_scheduler.store.base import Doc, Store, lock_free

__all__ = [
    "DEFAULT_PENDING_GRACE_SECONDS",
    "SweepResult",
    "reconcile_stalled_runs",
    "requeue_expired_leases",
    "requeue_stale_pending",
    "sweep",
]

_log = logging.getLogger(__name__)

# A PENDING task run older than this is assumed to have lost its trigger. Eventarc delivers
# within seconds; a function that is retrying its delivery claims well within this.
DEFAULT_PENDING_GRACE_SECONDS = 300.0


@dataclasses.dataclass
class SweepResult:
    """What one sweep did.

    Attributes:
        expired: Task-run paths requeued because their lease expired.
        stale: Task-run paths re-triggered because they stayed PENDING too long.
        reconciled: Run ids whose job run was repaired or finished.
    """

    expired: list[str] = dataclasses.field(default_factory=list)
    stale: list[str] = dataclasses.field(default_factory=list)
    reconciled: list[str] = dataclasses.field(default_factory=list)


def sweep(
    store: Store,
    *,
    pending_grace: float = DEFAULT_PENDING_GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> SweepResult:
    """Runs every sweep once (see the module docstring)."""
    return SweepResult(
        expired=requeue_expired_leases(store, clock=clock),
        stale=requeue_stale_pending(store, grace=pending_grace, clock=clock),
        reconciled=reconcile_stalled_runs(store, grace=pending_grace, clock=clock),
    )


def requeue_expired_leases(store: Store, *, clock: Callable[[], float] = time.time) -> list[str]:
    """Puts every RUNNING task run whose lease has expired back to PENDING.

    Returns:
        The paths of the task runs requeued.
    """
    now = clock()
    requeued: list[str] = []
    jobs: dict[str, Doc | None] = {}
    for path, doc in store.find("task_runs", "status", [Status.RUNNING]):
        if float(doc.get("lease_expires_at", 0)) > now:
            continue
        if _cancel_if_run_cancelled(store, path, jobs, now):
            continue

        def requeue(current: Doc | None) -> Doc | None:
            if (
                current is None
                or current.get("status") != Status.RUNNING
                or float(current.get("lease_expires_at", 0)) > clock()
            ):
                return None
            return {
                "status": Status.PENDING,
                "lease_owner": "",
                "lease_expires_at": 0.0,
                "pending_since": clock(),
            }

        if store.update_if(path, requeue) is not None:
            requeued.append(path)
    return requeued


def requeue_stale_pending(
    store: Store,
    *,
    grace: float = DEFAULT_PENDING_GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Re-triggers every task run that has been PENDING for longer than ``grace`` seconds.

    The task stays PENDING; the write (``pending_since`` and a ``requeues`` count) is what
    triggers it again. The transaction re-checks that nothing claimed or re-triggered it since
    it was read, and only a claim ever runs a task, so it can never run twice.

    Returns:
        The paths of the task runs re-triggered.
    """
    now = clock()
    requeued: list[str] = []
    jobs: dict[str, Doc | None] = {}
    for path, doc in store.find("task_runs", "status", [Status.PENDING]):
        seen = doc.get("pending_since")
        if not isinstance(seen, int | float) or now - float(seen) < grace:
            continue
        if _cancel_if_run_cancelled(store, path, jobs, now):
            continue

        def retrigger(current: Doc | None, seen: float = float(seen)) -> Doc | None:
            if current is None or current.get("status") != Status.PENDING:
                return None
            if current.get("pending_since") != seen:
                return None
            return {"pending_since": clock(), "requeues": int(current.get("requeues", 0)) + 1}

        if store.update_if(path, retrigger) is not None:
            requeued.append(path)
    return requeued


@lock_free
def reconcile_stalled_runs(
    store: Store,
    *,
    grace: float = DEFAULT_PENDING_GRACE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Repairs or finishes job runs that are unfinished but have no task run left to run.

    Only runs started more than ``grace`` seconds ago are looked at, so a run between two
    writes of a live worker is left to that worker.

    Returns:
        The run ids repaired or finished.
    """
    now = clock()
    done: list[str] = []
    # A collection query (job runs are a top-level collection): no collection-group index.
    for path, doc in store.query("job_runs", "status", [Status.PENDING, Status.RUNNING]):
        if doc.get("finished_at"):
            continue
        run_id = path.rsplit("/", 1)[1]
        if _age(doc.get("created_at"), now) < grace:
            continue
        if store.query(docs.task_runs_collection(run_id), "status", list(RUNNABLE), limit=1):
            continue
        run = run_config(store, run_id)
        if run is None:
            continue
        if completion.reconcile_run(store, run, now) in ("repaired", "finished"):
            done.append(run_id)
    return done


def _cancel_if_run_cancelled(
    store: Store, path: str, jobs: dict[str, Doc | None], now: float
) -> bool:
    """Cancels a task run instead of requeuing it when its job run is cancelled.

    Args:
        store: The store.
        path: The task run's path.
        jobs: Job runs read so far in this sweep, by run id (filled in).
        now: The sweep's time.
    """
    parsed = docs.parse_task_run_path(path)
    if parsed is None:
        return False
    run_id = parsed[0]
    if run_id not in jobs:
        jobs[run_id] = store.get(docs.job_run_path(run_id))
    job = jobs[run_id]
    if job is None or job.get("status") != Status.CANCELLED:
        return False
    if cancel_task_run(store, path, run_error(job), now):
        _log.warning("cancelled %s: its run was cancelled, but the task was left runnable", path)
    return True


def _age(created_at: object, now: float) -> float:
    try:
        moment = datetime.datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return now - moment.timestamp()

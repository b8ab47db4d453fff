"""Sub-job steps in a store: the parent's task run waits in the store, the child's end wakes it.

A cloud function lives at most 540 s, so no process waits for a child run:

1. **Start.** When a task run reaches a sub-job step, the child run is submitted with a
   deterministic id (`engine.sub_job.child_run_id`: ``{run}~{task_run}~{step}``) and its
   caller (``caller_run_id``, ``caller_task_run_id``, ``caller_step_index``) on its job run,
   create-if-absent, so a redelivery submits nothing twice. The task run then becomes WAITING
   (``waiting_child``: the child's id), releasing its lease: not claimable, and nothing runs it
   until the child ends.
2. **Wake.** When the child run finishes (`completion.reconcile_run`), `wake_caller` moves the
   caller's task run from WAITING to PENDING (a conditional write: once). That write triggers
   the task again; its claim finds the step's child finished and records the step from the
   child's outputs, usage and cost (or fails it with the child's error), then goes on with the
   steps after it, as a redelivery after a crash continues after the last persisted step.
3. **Recovery.** A task whose child finished while it was not yet WAITING (its worker died
   between the two writes, or the child was quick) is woken by the claim itself after it waits
   (`wake_if_finished`), or by `reconcile_run` of the parent run, which the sweeper and idle
   dispatchers call for runs with nothing runnable.

Cancelling a run cancels the children its waiting tasks wait for; resuming it resumes them.
"""

from __future__ import annotations

import functools
from typing import Any

from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.sub_job import ChildPending, ChildRequest, ChildRunner
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import RunConfig, Status
from llm_scheduler.execution.lease import Lease
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free
from llm_scheduler.telemetry.ids import child_traceparent
from llm_scheduler.v1 import run_pb2

__all__ = [
    "caller_fields",
    "finished_child",
    "store_child_runner",
    "wait_for_child",
    "waiting_children",
    "wake_caller",
    "wake_if_finished",
]


def caller_fields(run_id: str, task_run_id: str, step_index: int) -> Doc:
    """The fields a child run's job run holds to name the step that waits for it."""
    return {
        "caller_run_id": run_id,
        "caller_task_run_id": task_run_id,
        "caller_step_index": step_index,
    }


def store_child_runner(store: Store, run: RunConfig) -> ChildRunner:
    """The `ChildRunner` of an event-driven run: children are runs of the store.

    A finished child's record is returned (the step takes its outputs); otherwise the child is
    submitted (create-if-absent, with its caller) and `ChildPending` is raised, so that the
    step's task waits for it in the store.
    """
    from llm_scheduler.execution.submit import submit_job  # submit imports documents only

    async def run_child(request: ChildRequest, context: RunContext) -> run_pb2.JobRun:
        child = await store.call(finished_child, store, request.run_id)
        if child is not None:
            return child
        submit = functools.partial(
            submit_job,
            store,
            request.job,
            inputs=dict(request.inputs),
            run_id=request.run_id,
            offline=run.offline,
            default_cache_policy=run.default_cache_policy,
            replay_source=request.recorded,
            caller={
                **caller_fields(
                    request.caller_run_id, request.caller_task_run_id, request.caller_step_index
                ),
                # The child spends from its caller's budget, if it has one.
                **({"budget_run_id": run.budget_run_id} if run.budget_run_id else {}),
                # In the caller's trace, under its task (`llm_scheduler.telemetry`).
                "traceparent": child_traceparent(
                    run.run_id, run.traceparent, request.caller_task_run_id
                ),
            },
        )
        await store.call(submit)
        raise ChildPending(request.run_id)

    return run_child


def wait_for_child(store: Store, lease: Lease, child_id: str, step_index: int) -> None:
    """Makes the claimed task run WAITING for ``child_id``, releasing the claim.

    Raises:
        LostLease: The claim was lost.
        TaskCancelled: The run was cancelled meanwhile.
    """

    def wait(tx: Transaction) -> None:
        lease.require(tx)
        tx.update(
            lease.task_path,
            {
                "status": Status.WAITING,
                "waiting_child": child_id,
                "waiting_step": step_index,
                "lease_owner": "",
                "lease_expires_at": 0.0,
            },
        )

    store.run_transaction(wait)


@lock_free
def finished_child(store: Store, child_id: str) -> run_pb2.JobRun | None:
    """The child run's record (without its tasks) once it has finished, else None.

    A cancelled child counts as finished only when its job run says so (``finished_at``).
    """
    doc = store.get(docs.job_run_path(child_id))
    if doc is None or not doc.get("finished_at"):
        return None
    doc = blobs.inline(store, doc, f"job run {child_id!r}")
    return docs.record_from_doc(doc, run_pb2.JobRun)


def _wake(task_doc: Doc | None, child_id: str, now: float) -> Doc | None:
    if task_doc is None or task_doc.get("status") != Status.WAITING:
        return None
    if task_doc.get("waiting_child") != child_id:
        return None
    # Waiting is not a failed attempt: the claim that continues the task gets one more.
    max_attempt = int(task_doc.get("max_attempt") or 0) + 1
    return {"status": Status.PENDING, "pending_since": now, "max_attempt": max_attempt}


@lock_free
def wake_caller(store: Store, child_doc: Doc, now: float) -> bool:
    """Moves the task run waiting for this finished child run to PENDING; whether it did."""
    run_id = str(child_doc.get("caller_run_id") or "")
    task_run_id = str(child_doc.get("caller_task_run_id") or "")
    child_id = str(child_doc.get("run_id") or "")
    if not (run_id and task_run_id and child_id):
        return False
    path = docs.task_run_path(run_id, task_run_id)
    return store.update_if(path, lambda doc: _wake(doc, child_id, now)) is not None


@lock_free
def wake_if_finished(store: Store, task_path: str, task_doc: Doc, now: float) -> bool:
    """Wakes a WAITING task run whose child has finished already; whether it did."""
    child_id = str(task_doc.get("waiting_child") or "")
    if not child_id or finished_child(store, child_id) is None:
        return False
    return store.update_if(task_path, lambda doc: _wake(doc, child_id, now)) is not None


def waiting_children(task_docs: Any) -> list[str]:
    """The child run ids the given task-run documents wait for."""
    return [str(doc["waiting_child"]) for doc in task_docs if doc.get("waiting_child")]

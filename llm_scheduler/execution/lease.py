"""A worker's claim on a task run: renewed while the task runs, checked before every write.

The renewal is also how a worker learns that its run was cancelled
(`llm_scheduler.execution.cancel`): the cancel marks the task run CANCELLED and leaves the lease
fields as they were, so the renewal that finds it so knows the cancel is meant for it. It keeps
renewing the lease (the task is still in this worker's hands until it lets go), and the worker
starts no further step (`Lease.check` raises `TaskCancelled`): no read is added to any step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free

__all__ = ["Lease", "LostLease", "TaskCancelled"]


class LostLease(Exception):
    """Another worker owns the task now; stop without writing."""


class TaskCancelled(LostLease):
    """The run was cancelled while this worker held the task: keep what is done, then stop."""


class Lease:
    """Keeps a claim alive while the task runs, and checks it is still ours.

    Attributes:
        lost: Whether a renewal found the task taken over (or finished) by someone else.
        cancelled: Whether a renewal found the task cancelled while it was ours.
    """

    def __init__(
        self,
        store: Store,
        task_path: str,
        worker_id: str,
        lease_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.task_path = task_path
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.lost = False
        self.cancelled = False

    def check(self) -> None:
        """Raises `LostLease` when the claim is gone, `TaskCancelled` when the run was cancelled."""
        if self.lost:
            raise LostLease
        if self.cancelled:
            raise TaskCancelled

    def owns(self, doc: Doc | None) -> bool:
        """Whether ``doc`` (the task run, read in a transaction) is still claimed by us."""
        return (
            doc is not None
            and doc.get("status") == Status.RUNNING
            and doc.get("lease_owner") == self.worker_id
        )

    def cancelled_in(self, doc: Doc | None) -> bool:
        """Whether ``doc`` (the task run) was cancelled while it was claimed by us."""
        return (
            doc is not None
            and doc.get("status") == Status.CANCELLED
            and doc.get("lease_owner") == self.worker_id
        )

    def require(self, tx: Transaction) -> Doc:
        """The task run read in ``tx``; raises `LostLease` (or `TaskCancelled`) unless ours."""
        doc = tx.get(self.task_path)
        if not self.owns(doc):
            raise self._gone(doc)
        assert doc is not None
        return doc

    def _gone(self, doc: Doc | None) -> LostLease:
        return TaskCancelled() if self.cancelled_in(doc) else LostLease()

    async def keep_alive(self) -> None:
        """Renews the lease at a third of its length until it is lost (or this is cancelled)."""
        # A third, so one slow renewal cannot let it lapse.
        while not self.lost:
            await asyncio.sleep(self.lease_seconds / 3)
            renewed = await self.store.call(self.store.update_if, self.task_path, self._renewal)
            if renewed is None:
                self.lost = True

    def _renewal(self, doc: Doc | None) -> Doc | None:
        if self.cancelled_in(doc):
            # Still renewed: the lease says the step in flight is not finished, so a resume
            # gives the task back to this worker's lease instead of running that step twice.
            self.cancelled = True
        elif not self.owns(doc):
            return None
        return {"lease_expires_at": self.clock() + self.lease_seconds}

    @lock_free
    def release(self, fields: Doc, extra_attempt: bool) -> None:
        """Puts the task back to PENDING (the write triggers a new delivery).

        Args:
            fields: More fields to write (e.g. ``last_error``).
            extra_attempt: Whether the next claim is free (a handoff makes progress, so it
                does not use up an attempt; an internal error does).

        Raises:
            LostLease: The task is no longer ours (`TaskCancelled`: its run was cancelled).
        """

        def decide(doc: Doc | None) -> Doc | None:
            if not self.owns(doc):
                raise self._gone(doc)
            assert doc is not None
            update: Doc = {
                "status": Status.PENDING,
                "lease_owner": "",
                "lease_expires_at": 0.0,
                "pending_since": self.clock(),
                **fields,
            }
            if extra_attempt:
                update["handoffs"] = int(doc.get("handoffs", 0)) + 1
                update["max_attempt"] = int(doc.get("max_attempt", 0)) + 1
            return update

        self.store.update_if(self.task_path, decide)

    @lock_free
    def let_go(self, fields: Doc) -> None:
        """Ends our claim on a cancelled task: its lease is cleared and ``fields`` written.

        A resume may have given the task back to our lease meanwhile (RUNNING, still ours):
        it then goes back to PENDING, for a new claim to continue it. Anything else (another
        worker's claim) is left alone.
        """

        def decide(doc: Doc | None) -> Doc | None:
            if self.cancelled_in(doc):
                return {"lease_owner": "", "lease_expires_at": 0.0, **fields}
            if self.owns(doc):
                return {
                    "status": Status.PENDING,
                    "lease_owner": "",
                    "lease_expires_at": 0.0,
                    "pending_since": self.clock(),
                }
            return None

        self.store.update_if(self.task_path, decide)

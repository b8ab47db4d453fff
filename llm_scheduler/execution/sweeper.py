"""Putting tasks whose worker died back to PENDING, so their next write triggers them again.

In the cloud, a task whose invocation died (crash, out of memory, instance shut down) stays
RUNNING under a lease nobody renews, and no write would ever trigger it again: the redelivery of
its event usually arrives while the lease is still live and is a no-op. `requeue_expired_leases`,
run on a schedule (the ``sweep_expired_leases`` HTTP function, called by Cloud Scheduler), makes
that write. The local dispatcher needs no sweeper: it runs expired leases itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llm_scheduler.execution.documents import Status
from llm_scheduler.store.base import Store, Transaction

__all__ = ["requeue_expired_leases"]


def requeue_expired_leases(store: Store, *, clock: Callable[[], float] = time.time) -> list[str]:
    """Puts every RUNNING task run whose lease has expired back to PENDING.

    Each update is a transaction that re-checks the lease, so a task renewed or finished in the
    meantime is left alone, and a second sweeper running at the same time changes nothing more.

    Returns:
        The paths of the task runs requeued.
    """
    now = clock()
    requeued: list[str] = []
    for path, doc in store.find("task_runs", "status", [Status.RUNNING]):
        if float(doc.get("lease_expires_at", 0)) > now:
            continue

        def requeue(tx: Transaction, path: str = path) -> bool:
            current = tx.get(path)
            if (
                current is None
                or current.get("status") != Status.RUNNING
                or float(current.get("lease_expires_at", 0)) > clock()
            ):
                return False
            tx.update(path, {"status": Status.PENDING, "lease_owner": "", "lease_expires_at": 0.0})
            return True

        if store.run_transaction(requeue):
            requeued.append(path)
    return requeued

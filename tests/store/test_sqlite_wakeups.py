"""SQLite wake-ups must never make a writer wait for a waiter."""

from __future__ import annotations

import os
import pathlib

import pytest

from llm_scheduler.store.sqlite import SqliteStore


@pytest.mark.timeout(30)
def test_a_waiter_that_stops_draining_never_blocks_writers(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStore(path) as busy, SqliteStore(path) as writer:
        # Registers busy's wake-up socket, then never waits again (a dispatcher busy running a
        # task): its queue fills after a few datagrams. Writes must go on regardless; before
        # the senders were non-blocking, the 11th write hung in sendto.
        assert busy.wait_for_change(0) is False
        for index in range(200):
            writer.set(f"job_runs/r/task_runs/t{index}", {"n": index})
        assert writer.get("job_runs/r/task_runs/t199") == {"n": 199}
        assert busy.wait_for_change(5) is True  # and the busy waiter still hears about it


@pytest.mark.timeout(30)
def test_a_waiter_registered_in_the_same_clock_tick_as_a_listing_is_woken(
    tmp_path: pathlib.Path,
) -> None:
    # Writers cache the list of waiters by the wake folder's timestamp, which some kernels and
    # filesystems keep coarse (a few ms): a waiter registering in the same tick as a writer's
    # listing leaves the timestamp unchanged, and must still be woken.
    path = tmp_path / "state.db"
    wake_dir = tmp_path / "state.db.wake"
    with SqliteStore(path) as writer, SqliteStore(path) as first:
        assert first.wait_for_change(0) is False  # registers: the folder's time is now
        tick = os.stat(wake_dir).st_mtime_ns
        writer.set("job_runs/r/task_runs/t", {"n": 1})  # lists (and caches) the waiters
        with SqliteStore(path) as second:
            assert second.wait_for_change(0) is False  # registers
            os.utime(wake_dir, ns=(tick, tick))  # ... in the same tick as the listing
            writer.set("job_runs/r/task_runs/t", {"n": 2})
            assert second.wait_for_change(5) is True


@pytest.mark.timeout(30)
def test_only_task_run_writes_wake_waiters(tmp_path: pathlib.Path) -> None:
    # As on Firestore, whose listener watches task runs: step records, events and blobs are
    # written many times per task and nobody waits for them.
    path = tmp_path / "state.db"
    with SqliteStore(path) as waiter, SqliteStore(path) as writer:
        assert waiter.wait_for_change(0) is False  # registers
        writer.set("job_runs/r/task_runs/t/step_runs/00000", {"index": 0})
        writer.create("job_runs/r/events/e1", {"kind": "step_started"})
        writer.create_all([("job_runs/r/events/e2", {}), ("blobs/b", {})])
        writer.run_transaction(lambda tx: tx.set("job_runs/r", {"status": "RUNNING"}))
        assert waiter.wait_for_change(0.3) is False
        writer.create_all([("job_runs/r/events/e3", {}), ("job_runs/r/task_runs/t2", {})])
        assert waiter.wait_for_change(5) is True
        writer.run_transaction(lambda tx: tx.update("job_runs/r/task_runs/t2", {"n": 1}))
        assert waiter.wait_for_change(5) is True

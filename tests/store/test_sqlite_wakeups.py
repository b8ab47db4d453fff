"""SQLite wake-ups must never make a writer wait for a waiter."""

from __future__ import annotations

import asyncio
import os
import pathlib
import threading
import time

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


@pytest.mark.timeout(30)
def test_a_waiter_in_a_thread_survives_an_async_waiter_on_the_same_store(
    tmp_path: pathlib.Path,
) -> None:
    # The web UI waits on its store from a test or request thread while its dispatcher waits
    # with wait_for_change_async on the event loop: both use the store's one wake-up socket,
    # and the async wait makes it non-blocking. A blocking wait then got BlockingIOError.
    path = tmp_path / "state.db"
    with SqliteStore(path) as store, SqliteStore(path) as writer:
        loop_waits = threading.Event()

        async def async_waiters() -> None:
            while not loop_waits.is_set():
                await store.wait_for_change_async(0.001)

        thread = threading.Thread(target=lambda: asyncio.run(async_waiters()))
        thread.start()
        try:
            for _ in range(20):
                assert store.wait_for_change(0.02) is False
            writer.set("job_runs/r/task_runs/t", {"n": 1})
            deadline = time.monotonic() + 5
            while not store.wait_for_change(0.05):  # the async waiter may take the wake-up
                if store.get("job_runs/r/task_runs/t") is not None:
                    break
                assert time.monotonic() < deadline
        finally:
            loop_waits.set()
            thread.join()

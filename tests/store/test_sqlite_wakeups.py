"""SQLite wake-ups must never make a writer wait for a waiter."""

from __future__ import annotations

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
            writer.set(f"docs/d{index}", {"n": index})
        assert writer.get("docs/d199") == {"n": 199}
        assert busy.wait_for_change(5) is True  # and the busy waiter still hears about it

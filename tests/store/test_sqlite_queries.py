"""SQLite-specific behaviour: index use, field-name checks, calls from async code."""

from __future__ import annotations

import asyncio
import pathlib
import threading

import pytest

from llm_scheduler.errors import StoreError
from llm_scheduler.store.sqlite import SqliteStore, find_query, query_sql


def test_find_on_status_uses_the_status_index(tmp_path: pathlib.Path) -> None:
    # A bound JSON path made SQLite scan every task run of every job run in the file.
    store = SqliteStore(tmp_path / "state.db")
    try:
        plan = store._connection().execute(  # the query plan, not a result
            f"EXPLAIN QUERY PLAN {find_query('status', 2)}", ("task_runs", "A", "B")
        )
        details = " ".join(str(row[-1]) for row in plan)
    finally:
        store.close()
    assert "USING INDEX documents_by_status_path (collection_id=? AND <expr>=?)" in details


def test_a_limited_find_on_one_status_reads_only_what_it_returns(tmp_path: pathlib.Path) -> None:
    # The dispatcher reads a window of PENDING task runs: the index is in path order, so SQLite
    # stops after the window instead of sorting every PENDING task run of a wide job.
    store = SqliteStore(tmp_path / "state.db")
    try:
        plan = store._connection().execute(
            f"EXPLAIN QUERY PLAN {find_query('status', 1)} LIMIT 5", ("task_runs", "A")
        )
        details = " ".join(str(row[-1]) for row in plan)
    finally:
        store.close()
    assert "documents_by_status_path" in details and "TEMP B-TREE" not in details


def test_the_task_runs_of_one_run_are_queried_by_status_through_an_index(
    tmp_path: pathlib.Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        plan = store._connection().execute(
            f"EXPLAIN QUERY PLAN {query_sql('status', 2)} LIMIT 1",
            ("job_runs/r/task_runs", "A", "B"),
        )
        details = " ".join(str(row[-1]) for row in plan)
    finally:
        store.close()
    assert "USING INDEX documents_by_collection_status" in details


@pytest.mark.parametrize("field", ["status'); DROP TABLE documents; --", "a..b", "", "1x"])
def test_find_refuses_field_names_that_are_not_identifiers(
    tmp_path: pathlib.Path, field: str
) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        store.set("job_runs/r/task_runs/t", {"status": "A"})
        with pytest.raises(StoreError, match="cannot query on field"):
            store.find("task_runs", field, ["A"])
        assert store.get("job_runs/r/task_runs/t") == {"status": "A"}


def test_call_runs_in_place_and_waits_in_a_thread_while_another_writer_holds_the_lock(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "state.db"
    loop_thread = threading.get_ident()

    def write(store: SqliteStore, name: str) -> int:
        store.set(f"job_runs/r/task_runs/{name}", {"status": "A"})
        return threading.get_ident()

    async def main(store: SqliteStore, other: SqliteStore) -> None:
        # A free lock (or one free within milliseconds): in place (no thread hop).
        assert await store.call(write, store, "a") == loop_thread
        # Another store instance (as another process would) holds the write lock: the call
        # must neither fail nor block the event loop; it waits in a worker thread.
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other._writing():  # the lock every write takes
                holding.set()
                release.wait(10)

        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        call = asyncio.ensure_future(store.call(write, store, "b"))
        await asyncio.sleep(0.2)
        assert not call.done()  # still waiting for the lock, and the loop runs meanwhile
        release.set()
        assert await asyncio.wait_for(call, 10) != loop_thread
        holder.join(10)

    store, other = SqliteStore(path), SqliteStore(path)
    try:
        asyncio.run(main(store, other))
        assert store.get("job_runs/r/task_runs/b") == {"status": "A"}
    finally:
        store.close()
        other.close()


def test_a_lock_file_that_cannot_be_opened_is_a_store_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "state.db.lock").mkdir()  # in the way of the writers' lock file
    store = SqliteStore(tmp_path / "state.db")
    try:
        with pytest.raises(StoreError, match=r"cannot open .*state\.db\.lock"):
            store.set("job_runs/r/task_runs/t", {"status": "A"})
        with pytest.raises(StoreError, match="cannot open"):
            asyncio.run(store.call(store.create, "job_runs/r/task_runs/t", {"status": "A"}))
        # Reads take no write lock: they work.
        assert asyncio.run(store.call(store.get, "job_runs/r/task_runs/t")) is None
    finally:
        store.close()

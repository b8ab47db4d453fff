"""SQLite-specific behaviour: index use, field-name checks, calls from async code."""

from __future__ import annotations

import asyncio
import pathlib
import threading

import pytest

from llm_scheduler.errors import StoreError
from llm_scheduler.store.sqlite import SqliteStore, find_query, query_sql


def _plan(store: SqliteStore, sql: str, parameters: tuple[str, ...]) -> str:
    rows = store._connection().execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
    return " ".join(str(row[-1]) for row in rows)


def test_find_on_status_uses_the_status_index(tmp_path: pathlib.Path) -> None:
    # A bound JSON path made SQLite scan every task run of every job run in the file.
    store = SqliteStore(tmp_path / "state.db")
    try:
        sql, scope = find_query("task_runs", "status", 2)
        details = _plan(store, sql, (*scope, "A", "B"))
    finally:
        store.close()
    assert "USING INDEX task_runs_by_status (<expr>=?)" in details


def test_a_limited_find_on_one_status_reads_only_what_it_returns(tmp_path: pathlib.Path) -> None:
    # The dispatcher reads a window of PENDING task runs: the index is in path order, so SQLite
    # stops after the window instead of sorting every PENDING task run of a wide job.
    store = SqliteStore(tmp_path / "state.db")
    try:
        sql, scope = find_query("task_runs", "status", 1)
        details = _plan(store, f"{sql} LIMIT 5", (*scope, "A"))
    finally:
        store.close()
    assert "task_runs_by_status" in details and "TEMP B-TREE" not in details


def test_the_task_runs_of_one_run_are_queried_by_status_through_an_index(
    tmp_path: pathlib.Path,
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        sql, scope = query_sql("job_runs/r/task_runs", "status", 1)
        details = _plan(store, f"{sql} LIMIT 1", (*scope, "A"))
    finally:
        store.close()
    assert "USING INDEX task_runs_by_collection_status (collection=? AND <expr>=?)" in details
    assert "TEMP B-TREE" not in details


def test_job_runs_are_queried_by_status_through_their_page_index(tmp_path: pathlib.Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        sql, scope = query_sql("job_runs", "status", 2)
        details = _plan(store, sql, (*scope, "A", "B"))
    finally:
        store.close()
    assert "USING INDEX page_job_runs_status_by_created_at (<expr>=?)" in details


def test_only_task_runs_have_status_index_entries(tmp_path: pathlib.Path) -> None:
    # Steps, events and blobs are most of a run's writes: they add no entry to a status index
    # (nor does SQLite parse their JSON for one).
    store = SqliteStore(tmp_path / "state.db")
    with store:
        store.set("job_runs/r/task_runs/t", {"status": "A"})
        store.set("job_runs/r/task_runs/t/step_runs/00000", {"status": "A"})
        store.create_all([("job_runs/r/events/e", {"status": "A"})])
        counts = [
            store._connection()
            .execute(f"SELECT COUNT(*) FROM documents INDEXED BY {index} WHERE {where}")
            .fetchone()[0]
            for index, where in (
                ("task_runs_by_status", "collection_id = 'task_runs'"),
                ("task_runs_by_collection_status", "collection_id = 'task_runs'"),
            )
        ]
        assert counts == [1, 1]
        assert [p for p, _ in store.find("task_runs", "status", ["A"])] == [
            "job_runs/r/task_runs/t"
        ]


def test_a_database_with_the_old_status_indexes_drops_them(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    with store:
        store.set("job_runs/r/task_runs/t", {"status": "A"})
        store._connection().executescript(
            "CREATE INDEX documents_by_status_path "
            "ON documents (collection_id, json_extract(data, '$.status'), path);"
            "CREATE INDEX documents_by_collection_status "
            "ON documents (collection, json_extract(data, '$.status'), path);"
        )
    store = SqliteStore(path)
    with store:
        names = {
            row[0]
            for row in store._connection().execute(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
        }
        assert not names & {"documents_by_status_path", "documents_by_collection_status"}
        assert {"task_runs_by_status", "task_runs_by_collection_status"} <= names
        assert store.query("job_runs/r/task_runs", "status", ["A", "B"], limit=1) == [
            ("job_runs/r/task_runs/t", {"status": "A"})
        ]


def test_a_limited_query_on_several_values_returns_the_first_by_path(
    tmp_path: pathlib.Path,
) -> None:
    # Read as one bounded read per value, merged: the same result as one sorted read.
    with SqliteStore(tmp_path / "state.db") as store:
        for name, status in [("a", "B"), ("b", "A"), ("c", "C"), ("d", "B"), ("e", "A")]:
            store.set(f"job_runs/r/task_runs/{name}", {"status": status})
        found = store.query("job_runs/r/task_runs", "status", ["A", "B", "A"], limit=3)
        assert [p.rsplit("/", 1)[1] for p, _ in found] == ["a", "b", "d"]
        found = store.find("task_runs", "status", ["B", "A"], limit=2)
        assert [p.rsplit("/", 1)[1] for p, _ in found] == ["a", "b"]
        assert len(store.find("task_runs", "status", ["A", "B"])) == 4


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

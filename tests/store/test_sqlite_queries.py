"""SQLite-specific query behaviour: index use and field-name checks."""

from __future__ import annotations

import pathlib

import pytest

from llm_scheduler.errors import StoreError
from llm_scheduler.store.sqlite import SqliteStore, find_query


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
    assert "USING INDEX documents_by_status (collection_id=? AND <expr>=?)" in details


@pytest.mark.parametrize("field", ["status'); DROP TABLE documents; --", "a..b", "", "1x"])
def test_find_refuses_field_names_that_are_not_identifiers(
    tmp_path: pathlib.Path, field: str
) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        store.set("job_runs/r/task_runs/t", {"status": "A"})
        with pytest.raises(StoreError, match="cannot query on field"):
            store.find("task_runs", field, ["A"])
        assert store.get("job_runs/r/task_runs/t") == {"status": "A"}

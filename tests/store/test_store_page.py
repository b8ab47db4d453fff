"""`Store.page`, on every backend (see conftest.py): order, ties, cursors, filters, projections."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import pytest

from llm_scheduler.errors import StoreError
from llm_scheduler.store import Doc, Store
from llm_scheduler.store.sqlite import PAGE_INDEXES, SqliteStore, page_sql

RUNS = "job_runs"


def _fill(store: Store, docs: dict[str, Doc], collection: str = RUNS) -> None:
    store.create_all([(f"{collection}/{doc_id}", doc) for doc_id, doc in docs.items()])


def _ids(page: list[tuple[str, Doc]]) -> list[str]:
    return [path.rsplit("/", 1)[1] for path, _ in page]


def _walk(store: Store, size: int, **kwargs: Any) -> list[str]:
    """Every id, page by page, each page starting after the last of the one before."""
    seen: list[str] = []
    after: tuple[Any, str] | None = None
    while True:
        page = store.page(RUNS, order_by="created_at", limit=size, after=after, **kwargs)
        assert len(page) <= size
        seen += _ids(page)
        if len(page) < size:
            return seen
        path, doc = page[-1]
        after = (doc["created_at"], path.rsplit("/", 1)[1])


SAMPLE: dict[str, Doc] = {
    "a": {"created_at": "2024-01-01T00:00:01Z", "status": "DONE", "job_id": "x", "n": 1},
    "b": {"created_at": "2024-01-01T00:00:03Z", "status": "FAILED", "job_id": "y", "n": 2},
    "c": {"created_at": "2024-01-01T00:00:02Z", "status": "DONE", "job_id": "x", "n": 3},
    # Ties on created_at: ordered by id, in the same direction.
    "d": {"created_at": "2024-01-01T00:00:02Z", "status": "FAILED", "job_id": "x", "n": 4},
    "e": {"created_at": "2024-01-01T00:00:02Z", "status": "DONE", "job_id": "y", "n": 5},
    # No created_at: in no page ordered by it.
    "f": {"status": "DONE", "job_id": "x"},
}


def test_a_page_is_ordered_by_the_field_then_by_id(store: Store) -> None:
    _fill(store, SAMPLE)
    newest = store.page(RUNS, order_by="created_at", limit=10)
    assert _ids(newest) == ["b", "e", "d", "c", "a"]
    assert dict(newest)["job_runs/b"] == SAMPLE["b"]
    oldest = store.page(RUNS, order_by="created_at", descending=False, limit=10)
    assert _ids(oldest) == ["a", "c", "d", "e", "b"]


def test_limit_cuts_the_page(store: Store) -> None:
    _fill(store, SAMPLE)
    assert _ids(store.page(RUNS, order_by="created_at", limit=2)) == ["b", "e"]
    assert _ids(store.page(RUNS, order_by="created_at", limit=1, descending=False)) == ["a"]


def test_a_cursor_starts_after_its_document_even_among_ties(store: Store) -> None:
    _fill(store, SAMPLE)
    after_e = ("2024-01-01T00:00:02Z", "e")
    assert _ids(store.page(RUNS, order_by="created_at", limit=10, after=after_e)) == [
        "d",
        "c",
        "a",
    ]
    ascending = store.page(RUNS, order_by="created_at", descending=False, limit=10, after=after_e)
    assert _ids(ascending) == ["b"]
    # The cursor's document need not exist: the page starts where it would have been.
    gone = ("2024-01-01T00:00:02Z", "cz")
    assert _ids(store.page(RUNS, order_by="created_at", limit=10, after=gone)) == ["c", "a"]
    last = ("2024-01-01T00:00:01Z", "a")
    assert store.page(RUNS, order_by="created_at", limit=10, after=last) == []


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_paging_visits_every_document_once(store: Store, size: int) -> None:
    _fill(store, SAMPLE)
    assert _walk(store, size) == ["b", "e", "d", "c", "a"]
    assert _walk(store, size, equals={"job_id": "x"}) == ["d", "c", "a"]


def test_equality_filters_combine(store: Store) -> None:
    _fill(store, SAMPLE)
    page = store.page(RUNS, equals={"status": "DONE"}, order_by="created_at", limit=10)
    assert _ids(page) == ["e", "c", "a"]
    both = store.page(
        RUNS, equals={"status": "DONE", "job_id": "x"}, order_by="created_at", limit=10
    )
    assert _ids(both) == ["c", "a"]
    after = store.page(
        RUNS,
        equals={"job_id": "x", "status": "DONE"},
        order_by="created_at",
        limit=10,
        after=("2024-01-01T00:00:02Z", "c"),
    )
    assert _ids(after) == ["a"]
    numbers = store.page(RUNS, equals={"n": 4}, order_by="created_at", limit=10)
    assert _ids(numbers) == ["d"]
    assert store.page(RUNS, equals={"status": "NOPE"}, order_by="created_at", limit=10) == []


def test_only_the_collection_itself_is_paged(store: Store) -> None:
    _fill(store, SAMPLE)
    _fill(store, {"t": {"created_at": "2030-01-01T00:00:00Z"}}, "job_runs/b/task_runs")
    _fill(store, {"o": {"created_at": "2030-01-01T00:00:00Z"}}, "other")
    assert _ids(store.page(RUNS, order_by="created_at", limit=1)) == ["b"]
    assert _ids(store.page("job_runs/b/task_runs", order_by="created_at", limit=5)) == ["t"]


def test_an_empty_collection_has_empty_pages(store: Store) -> None:
    assert store.page(RUNS, order_by="created_at", limit=5) == []
    assert store.page(RUNS, equals={"job_id": "x"}, order_by="created_at", limit=5) == []
    assert store.page(RUNS, order_by="created_at", limit=5, after=("z", "z")) == []


def test_numbers_order_as_numbers(store: Store) -> None:
    _fill(store, {f"r{n}": {"created_at": "t", "n": n} for n in (9, 10, 100, 2)})
    assert _ids(store.page(RUNS, order_by="n", limit=10)) == ["r100", "r10", "r9", "r2"]
    assert _ids(store.page(RUNS, order_by="n", limit=10, after=(10, "r10"))) == ["r9", "r2"]


def test_fields_selects_top_level_fields(store: Store) -> None:
    _fill(store, {**SAMPLE, "g": {"created_at": "2024-01-01T00:00:04Z", "usage": {"in": "3"}}})
    page = store.page(RUNS, order_by="created_at", limit=2, fields=["status", "usage", "nope"])
    assert page == [("job_runs/g", {"usage": {"in": "3"}}), ("job_runs/b", {"status": "FAILED"})]
    flags = {"created_at": "t", "on": True, "off": False, "none": None, "x": 1.5, "i": 2}
    _fill(store, {"z": flags}, "other")
    assert store.page("other", order_by="created_at", limit=1, fields=list(flags)) == [
        ("other/z", flags)
    ]
    assert store.page("other", order_by="created_at", limit=1, fields=[]) == [("other/z", {})]
    page = store.page(
        RUNS, order_by="created_at", limit=1, fields=["n"], after=(SAMPLE["c"]["created_at"], "c")
    )
    assert page == [("job_runs/a", {"n": 1})]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order_by": "a.b"}, "cannot page on field"),
        ({"order_by": "x", "equals": {"x'); DROP TABLE documents; --": 1}}, "cannot page"),
        ({"order_by": "x", "fields": ["$"]}, "cannot page on field"),
        ({"order_by": "x", "equals": {"x": [1]}}, "compare with a string"),
        ({"order_by": "x", "equals": {"x": None}}, "compare with a string"),
        ({"order_by": "x", "limit": 0}, "at least one document"),
    ],
)
def test_bad_arguments_are_refused(store: Store, kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"limit": 5, **kwargs}
    with pytest.raises(StoreError, match=message):
        store.page(RUNS, **arguments)


def test_the_default_page_agrees_with_the_backend(store: Store) -> None:
    # `Store.page` on `list` (for stores that do not override it) gives the same pages.
    _fill(store, SAMPLE)
    generic = functools.partial(Store.page, store)
    for kwargs in (
        {},
        {"descending": False},
        {"equals": {"job_id": "x"}},
        {"after": ("2024-01-01T00:00:02Z", "e")},
        {"fields": ["status"], "limit": 2},
    ):
        arguments: dict[str, Any] = {"order_by": "created_at", "limit": 10, **kwargs}
        assert generic(RUNS, **arguments) == store.page(RUNS, **arguments), kwargs


# -- SQLite: the pages of job runs come from an index --------------------------------------------


def _plan(store: SqliteStore, sql: str, parameters: tuple[Any, ...]) -> str:
    rows = store._connection().execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
    return " ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(("equals", "key"), [(e, k) for c, e, k in PAGE_INDEXES if c == RUNS])
@pytest.mark.parametrize("after", [False, True])
def test_job_run_pages_read_an_index_in_order(
    tmp_path: pathlib.Path, equals: tuple[str, ...], key: str, after: bool
) -> None:
    store = SqliteStore(tmp_path / "state.db")
    try:
        sql = page_sql(RUNS, sorted(equals), key, True, after)
        plan = _plan(store, sql, ("v",) * (len(equals) + 3 * after) + (50,))
    finally:
        store.close()
    assert "USING INDEX page_job_runs_" in plan
    # Read in index order and stopped at the limit: no sort of every job run.
    assert "TEMP B-TREE" not in plan
    if after:
        assert "<?" in plan  # the cursor is a seek, not a scan from the newest run


def test_other_pages_work_without_an_index(tmp_path: pathlib.Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        store.set("job_runs/r/events/e", {"at": 2})
        assert "INDEXED BY" not in page_sql("job_runs/r/events", [], "at", True, False)
        assert _ids(store.page("job_runs/r/events", order_by="at", limit=1)) == ["e"]

"""`list_runs`: pages of job runs, newest first, on every store backend."""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import json
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from llm_scheduler import ModelRegistry, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.run_list import (
    MAX_LIMIT,
    RunPage,
    RunSummary,
    decode_cursor,
    encode_cursor,
    list_runs,
)
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Doc, Store, open_store
from llm_scheduler.store.base import Docs, is_lock_free
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2
from tests.conftest import context_for


def one_task_job(job_id: str, prompt: str = "hello") -> config_pb2.JobConfig:
    step = {"model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": prompt}}
    text = json.dumps({"job_id": job_id, "tasks": [{"task_id": "only", "steps": [step]}]})
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def run_all(store: Store, registry: ModelRegistry) -> None:
    context = context_for(registry)

    async def body() -> None:
        try:
            await Dispatcher(store, context, workers=2).run(until_idle=True)
        finally:
            await context.models.aclose()

    asyncio.run(body())


def walk(store: Store, limit: int, **filters: str) -> list[RunPage]:
    pages = [list_runs(store, limit=limit, **filters)]
    while pages[-1].next_cursor:
        pages.append(list_runs(store, limit=limit, cursor=pages[-1].next_cursor, **filters))
    return pages


def run_ids(pages: Sequence[RunPage]) -> list[str]:
    return [run.run_id for page in pages for run in page.runs]


def seconds_between(start: str, end: str) -> float:
    return (
        datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)
    ).total_seconds()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def test_a_finished_run_is_summarised_from_its_job_document(
    store: Store, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    run_id = submit_job(store, one_task_job("greet"), parent_run_id="earlier")
    run_all(store, fake_registry)
    job_run = read_job_run(store, run_id)
    assert job_run is not None
    page = list_runs(store)
    assert page.next_cursor == ""
    (summary,) = page.runs
    assert summary.run_id == run_id and summary.job_id == "greet"
    assert summary.status == "SUCCEEDED" and summary.error == ""
    assert summary.parent_run_id == "earlier"
    assert (summary.tasks_total, summary.tasks_succeeded, summary.tasks_failed) == (1, 1, 0)
    assert summary.input_tokens == job_run.usage.input_tokens > 0
    assert summary.output_tokens == job_run.usage.output_tokens > 0
    assert summary.cached_input_tokens == job_run.usage.cached_input_tokens
    assert summary.cost_usd == pytest.approx(job_run.cost_usd) and summary.cost_usd > 0
    assert summary.created_at <= summary.started_at <= summary.finished_at
    assert summary.duration_seconds == pytest.approx(
        seconds_between(summary.started_at, summary.finished_at)
    )
    as_json = summary.to_json()
    assert json.loads(json.dumps(as_json)) == as_json
    assert set(as_json) == {field.name for field in RunSummary.__dataclass_fields__.values()}
    assert page.to_json() == {"runs": [as_json], "next_cursor": ""}


def test_a_submitted_run_is_pending_without_duration(store: Store) -> None:
    run_id = submit_job(store, one_task_job("later"))
    (summary,) = list_runs(store).runs
    assert (summary.run_id, summary.status) == (run_id, "PENDING")
    assert summary.started_at == summary.finished_at == ""
    assert summary.duration_seconds is None
    assert (summary.input_tokens, summary.cost_usd, summary.tasks_total) == (0, 0.0, 1)


def test_a_failed_run_shows_its_error_and_filters_combine(
    store: Store, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    good = submit_job(store, one_task_job("a", "first"))
    run_all(store, fake_registry)
    bad = submit_job(store, one_task_job("a", "second"))
    fake_server.fail_next(3, status=500)
    run_all(store, fake_registry)
    other = submit_job(store, one_task_job("b"))

    assert run_ids([list_runs(store)]) == [other, bad, good]
    failed = list_runs(store, status="FAILED").runs
    assert [run.run_id for run in failed] == [bad]
    assert failed[0].error.startswith("task 'only' failed:")
    assert "\n" not in failed[0].error and len(failed[0].error) <= 200
    assert (failed[0].tasks_succeeded, failed[0].tasks_failed) == (0, 1)
    assert failed[0].duration_seconds is not None
    assert run_ids([list_runs(store, job_id="a")]) == [bad, good]
    assert run_ids([list_runs(store, job_id="a", status="succeeded")]) == [good]
    assert run_ids([list_runs(store, job_id="b", status="RUN_STATUS_PENDING")]) == [other]
    assert list_runs(store, job_id="b", status="FAILED") == RunPage([], "")
    assert list_runs(store, job_id="nope") == RunPage([], "")


def test_paging_visits_every_run_once_newest_first(store: Store) -> None:
    submitted = [submit_job(store, one_task_job(f"job{i % 3}")) for i in range(7)]
    # Runs created in the same microsecond: ordered by run id, also across a page boundary.
    tied = {"created_at": docs.iso(1_700_000_000.0), "status": docs.Status.SUCCEEDED}
    store.create_all(
        [(docs.job_run_path(f"tie-{n}"), {**tied, "job_id": "job0"}) for n in range(5)]
    )
    expected = [*reversed(submitted), *(f"tie-{n}" for n in reversed(range(5)))]
    assert run_ids([list_runs(store, limit=MAX_LIMIT)]) == expected
    for limit in (1, 3, 4, 12):
        pages = walk(store, limit)
        assert run_ids(pages) == expected, limit
        assert all(len(page.runs) == limit for page in pages[:-1])
        assert 1 <= len(pages[-1].runs) <= limit
    job0 = [run_id for run_id in expected if run_id in submitted[::3] or run_id.startswith("tie")]
    assert run_ids(walk(store, 2, job_id="job0")) == job0
    assert run_ids(walk(store, 2, status="SUCCEEDED")) == [f"tie-{n}" for n in (4, 3, 2, 1, 0)]


def test_runs_created_while_paging_do_not_shift_later_pages(store: Store) -> None:
    first = [submit_job(store, one_task_job("j")) for _ in range(4)]
    page = list_runs(store, limit=2)
    newer = submit_job(store, one_task_job("j"))
    rest = list_runs(store, limit=2, cursor=page.next_cursor)
    assert run_ids([page, rest]) == first[::-1]
    assert rest.next_cursor == ""  # exactly at the end: no empty page to fetch
    assert list_runs(store, limit=1).runs[0].run_id == newer


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, True, 2.5])
def test_a_limit_out_of_range_is_the_users_error(store: Store, limit: Any) -> None:
    with pytest.raises(UserError, match="limit must be a whole number from 1 to 500"):
        list_runs(store, limit=limit)


def test_an_unknown_status_is_the_users_error(store: Store) -> None:
    with pytest.raises(UserError, match="unknown run status 'DONE': use one of PENDING"):
        list_runs(store, status="DONE")
    with pytest.raises(UserError, match="unknown run status"):
        list_runs(store, status="SKIPPED")  # a task status, never a job run's


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
        base64.urlsafe_b64encode(b'["x"]').decode(),
        base64.urlsafe_b64encode(b'["", "r"]').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_cursor_not_made_by_list_runs_is_refused(store: Store, cursor: str) -> None:
    with pytest.raises(UserError, match="invalid cursor"):
        list_runs(store, cursor=cursor)


def test_cursors_are_url_safe_and_round_trip() -> None:
    for created_at, run_id in [("2024-01-01T00:00:00.000000Z", "job-20240101-abc"), ("é", "ü?/")]:
        cursor = encode_cursor(created_at, run_id)
        assert all(c.isalnum() or c in "-_" for c in cursor)
        assert decode_cursor(cursor) == (created_at, run_id)


def test_a_summary_tolerates_fields_a_document_lacks_or_a_resume_cleared() -> None:
    summary = RunSummary.from_doc(
        "r",
        {
            "status": docs.Status.RUNNING,
            "started_at": "2024-01-01T00:00:00.000000Z",
            "finished_at": None,
            "tasks_succeeded": None,
            "usage": {"input_tokens": "12"},
            "error": {"message": "x" * 300 + "\nmore"},
        },
    )
    assert (summary.status, summary.duration_seconds, summary.tasks_succeeded) == (
        "RUNNING",
        None,
        0,
    )
    assert summary.input_tokens == 12 and summary.job_id == ""
    assert len(summary.error) == 200 and summary.error.endswith("…")


class _PagesOnly(SqliteStore):
    """Refuses every read but `page`: a list must not read task runs, blobs or whole runs."""

    def get(self, path: str) -> Doc | None:
        raise AssertionError(f"read {path}")

    def list(self, collection: str) -> Docs:
        raise AssertionError(f"listed {collection}")

    def query(self, collection: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        raise AssertionError(f"queried {collection}")


def test_a_list_reads_only_a_page_of_job_runs_even_with_configs_out_of_line(
    tmp_path: pathlib.Path,
) -> None:
    big = one_task_job("big", "x" * (docs.INLINE_FIELD_BYTES + 1))
    with SqliteStore(tmp_path / "state.db") as writer:
        run_id = submit_job(writer, big)
        assert "config" not in (writer.get(docs.job_run_path(run_id)) or {})  # in a blob
    with _PagesOnly(tmp_path / "state.db") as reader:
        (summary,) = list_runs(reader).runs
    assert (summary.run_id, summary.job_id, summary.status) == (run_id, "big", "PENDING")


def test_listing_from_async_code_needs_no_write_lock(tmp_path: pathlib.Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        run_id = submit_job(store, one_task_job("j"))
        call = functools.partial(list_runs, store, status="PENDING")
        assert is_lock_free(store, call)
        page = asyncio.run(store.call(call))
    assert [run.run_id for run in page.runs] == [run_id]

"""The SSE bridge: a run's progress events as server-sent events, while it runs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.web.live import run_event_stream, sse_chunk
from tests.web.runs_support import chain_job, dispatch, run_offline


def parse(chunk: str) -> tuple[str, str, Any]:
    """(event, id, data) of one SSE chunk; ("", "", text) for comments and settings."""
    fields: dict[str, str] = {}
    for line in chunk.strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        fields[name] = value
    if "event" not in fields:
        return "", "", chunk
    return fields["event"], fields.get("id", ""), json.loads(fields["data"])


async def collect(stream: AsyncIterator[str], limit: int = 10_000) -> list[tuple[str, str, Any]]:
    found = []
    async for chunk in stream:
        found.append(parse(chunk))
        if len(found) >= limit:
            break
    return found


def events_of(chunks: list[tuple[str, str, Any]], kind: str = "progress") -> list[Any]:
    return [data for event, _, data in chunks if event == kind]


def test_sse_chunk_is_one_line_of_json() -> None:
    chunk = sse_chunk("progress", {"text": "two\nlines"}, "id-1")
    assert chunk == 'id: id-1\nevent: progress\ndata: {"text":"two\\nlines"}\n\n'


def test_events_of_a_run_executed_meanwhile_then_finished(store_url: str) -> None:
    with open_store(store_url) as store, open_store(store_url) as worker_store:
        run_id = submit_job(store, chain_job(), offline=True)

        async def body() -> list[tuple[str, str, Any]]:
            stream = run_event_stream(store, run_id, poll_interval=0.05)
            # The run executes in another thread, on its own store connection, while the
            # stream follows it.
            worker = threading.Thread(target=dispatch, args=(worker_store,))
            worker.start()
            try:
                return await collect(stream)
            finally:
                await asyncio.to_thread(worker.join)

        chunks = asyncio.run(body())
    assert chunks[0] == ("", "", "retry: 1000\n\n")
    progress = events_of(chunks)
    kinds = [(e["kind"], e["task_id"]) for e in progress]
    assert ("task_started", "first") in kinds and ("task_finished", "second") in kinds
    assert kinds.index(("task_finished", "first")) < kinds.index(("task_started", "second"))
    finished = [e for e in progress if e["kind"] == "task_finished"]
    assert {e["detail"] for e in finished} == {"succeeded"}
    assert all(e["run_id"] == run_id and e["id"] and e["time"] for e in progress)
    ids = [event_id for event, event_id, _ in chunks if event == "progress"]
    assert len(set(ids)) == len(ids)
    assert chunks[-1][0] == "finished"
    assert chunks[-1][2] == {"run_id": run_id, "status": "succeeded"}


def finished_run(store: Store) -> str:
    return run_offline(store, chain_job())


def test_a_reconnecting_client_gets_only_later_events(store_url: str) -> None:
    with open_store(store_url) as store:
        run_id = finished_run(store)
        everything = asyncio.run(collect(run_event_stream(store, run_id)))
        ids = [event_id for event, event_id, _ in everything if event == "progress"]
        middle = ids[len(ids) // 2]
        later = asyncio.run(collect(run_event_stream(store, run_id, after=middle)))
    assert [i for event, i, _ in later if event == "progress"] == ids[len(ids) // 2 + 1 :]
    assert later[-1][0] == "finished"


def test_the_stream_stops_when_the_client_leaves(tmp_path: Any) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_id = submit_job(store, chain_job(), offline=True)  # nobody runs it
        calls = 0

        async def gone() -> bool:
            nonlocal calls
            calls += 1
            return calls > 3

        chunks = asyncio.run(
            collect(
                run_event_stream(
                    store, run_id, is_disconnected=gone, poll_interval=0, keepalive_seconds=0
                )
            )
        )
    assert chunks[0][2] == "retry: 1000\n\n"
    assert [c[2] for c in chunks[1:]] == [": keep-alive\n\n"] * 3
    assert calls == 4


def test_a_run_that_disappears_ends_the_stream(tmp_path: Any) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        chunks = asyncio.run(collect(run_event_stream(store, "no-such-run")))
    assert chunks[-1] == ("finished", "", {"run_id": "no-such-run", "status": "missing"})

"""A map run in a store, through the run pages' JSON: counts, item pages, items, live events.

The map job of `map_support` is run by a dispatcher on the store (each item a task run of its
own), on every store backend; pages read it back through `read_job_run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web.live import run_event_stream
from tests.web.conftest import store_of
from tests.web.map_support import FAILED_ITEM, SECTIONS, TOPICS, map_job
from tests.web.runs_support import offline_context, run_offline
from tests.web.test_runs_live import collect, events_of

ITEMS = [json.dumps(topic) for topic in TOPICS]


def task_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(task for task in data["tasks"] if task["task_id"] == task_id)


def node_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(node for node in data["graph"]["nodes"] if node["task_id"] == task_id)


def counts(**found: int) -> dict[str, int]:
    names = ("pending", "running", "succeeded", "failed", "skipped", "cancelled", "waiting")
    return {name: found.get(name, 0) for name in names}


def test_a_stored_map_run_counts_its_items(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), map_job(ITEMS))
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "succeeded"
    write = task_of(data, "write")
    assert write["status"] == "succeeded"
    assert write["is_map"] is True
    assert write["items_total"] == len(TOPICS)
    assert write["items_counts"] == counts(succeeded=len(TOPICS))
    assert write["items_label"] == "8/8 items"
    assert node_of(data, "write")["items"]["label"] == "8/8 items"
    assert node_of(data, "write")["map"] == "for each section in %sections%"
    assert task_of(data, "plan")["items_total"] is None
    assert data["counts"] == counts(succeeded=3)


def test_a_stored_maps_items_come_a_page_at_a_time(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), map_job(ITEMS))
    url = f"/runs/{run_id}/tasks/write"
    page = any_store_client.get(f"{url}.json", params={"items_offset": 3, "items_limit": 2}).json()
    assert [row["item_index"] for row in page["items"]] == [3, 4]
    assert [row["task_run_id"] for row in page["items"]] == ["write~000003", "write~000004"]
    assert {row["status"] for row in page["items"]} == {"succeeded"}
    assert (page["items_offset"], page["items_limit"], page["items_next_offset"]) == (3, 2, 5)
    assert page["map"]["label"] == "for each section in %sections%"
    last = any_store_client.get(f"{url}.json", params={"items_offset": 6}).json()
    assert [row["item_index"] for row in last["items"]] == [6, 7]
    assert last["items_next_offset"] is None
    assert all(row["steps_done"] == 2 and row["step_count"] == 2 for row in last["items"])
    everything = any_store_client.get(f"{url}.json").json()
    assert [row["item_index"] for row in everything["items"]] == list(range(len(TOPICS)))
    html = any_store_client.get(url)
    assert html.status_code == 200 and "write" in html.text


def test_a_stored_maps_item_opens_to_its_steps(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), map_job(ITEMS))
    url = f"/runs/{run_id}/tasks/write/items"
    item = any_store_client.get(f"{url}/3.json").json()
    assert item["task_run_id"] == "write~000003"
    assert item["item_index"] == 3
    assert item["status"] == "succeeded"
    assert item["inputs"] == {"section": '"kelp"', "index": 3}
    assert item["outputs"]["topic"] == "kelp"
    steps = item["steps"]
    assert [step["status"] for step in steps] == ["succeeded", "succeeded"]
    assert steps[1]["user_prompt"] == "Write section 3 about kelp."
    assert "Write section 3 about kelp." in steps[1]["response_text"]
    assert item["map"]["item_variable"] == "section"
    html = any_store_client.get(f"{url}/3")
    assert html.status_code == 200 and "write~000003" in html.text
    assert any_store_client.get(f"{url}/{len(TOPICS)}.json").status_code == 404
    assert any_store_client.get(f"/runs/{run_id}/tasks/plan/items/0.json").status_code == 404


def test_a_stored_map_failed_by_an_item_skips_the_items_never_created(
    any_store_client: TestClient,
) -> None:
    # One item at a time: the failed item creates no next one, so items 9 to 11 have no run.
    run_id = run_offline(store_of(any_store_client), map_job())
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "failed"
    assert data["run"]["finished_at"] is not None
    write = task_of(data, "write")
    assert write["status"] == "failed"
    assert write["items_label"] == "8/12 items · 1 failed · 3 skipped"
    assert f"write[{FAILED_ITEM}]: " in write["error"]
    assert task_of(data, "join")["status"] == "skipped"
    rows = any_store_client.get(
        f"/runs/{run_id}/tasks/write.json", params={"items_offset": FAILED_ITEM}
    ).json()["items"]
    assert [row["status"] for row in rows] == ["failed", "skipped", "skipped", "skipped"]
    assert rows[0]["error"] and rows[1]["error"] is None
    failed = any_store_client.get(f"/runs/{run_id}/tasks/write/items/{FAILED_ITEM}.json").json()
    assert failed["error"]["message"]
    assert [step["status"] for step in failed["steps"]] == ["failed", "pending"]
    never = any_store_client.get(f"/runs/{run_id}/tasks/write/items/{len(SECTIONS) - 1}.json")
    assert never.status_code == 200
    assert never.json()["status"] == "skipped"
    assert never.json()["task_run_id"] == f"write~{len(SECTIONS) - 1:06d}"


def test_a_stored_map_failed_with_items_in_flight_finishes_its_run(
    any_store_client: TestClient,
) -> None:
    # Items after the failed one are in flight: they finish after the map failed, and the last
    # of them finishes the job run.
    job = map_job()
    job.tasks[1].for_each.max_in_flight = 4
    run_id = run_offline(store_of(any_store_client), job)
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "failed"
    assert data["run"]["finished_at"] is not None
    assert data["live"] is False
    write = task_of(data, "write")
    assert write["status"] == "failed"
    assert write["items_counts"]["failed"] == 1
    assert write["items_counts"]["pending"] == write["items_counts"]["running"] == 0


def waiting_job() -> config_pb2.JobConfig:
    job = map_job(ITEMS)
    job.tasks[1].for_each.max_in_flight = 2
    return job


def test_a_map_waiting_for_its_items_shows_them_pending_then_running(
    any_store_client: TestClient,
) -> None:
    store = store_of(any_store_client)
    run_id = submit_job(store, waiting_job(), offline=True)

    async def deliver(*task_ids: str) -> list[str]:
        context = offline_context()
        try:
            return [(await handle_task_run(store, run_id, t, context)).action for t in task_ids]
        finally:
            await context.models.aclose()

    assert asyncio.run(deliver("plan", "write")) == ["succeeded", "waiting"]
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    write = task_of(data, "write")
    assert write["status"] == "waiting"
    assert write["items_counts"] == counts(pending=len(TOPICS))
    assert write["items_label"] == "0/8 items"
    assert data["counts"]["waiting"] == 1
    assert data["live"] is True
    assert asyncio.run(deliver("write~000000")) == ["succeeded"]
    page = any_store_client.get(f"/runs/{run_id}/tasks/write.json").json()
    assert page["status"] == "waiting"
    statuses = [row["status"] for row in page["items"]]
    assert statuses == ["succeeded"] + ["pending"] * (len(TOPICS) - 1)
    assert page["items_label"] == "1/8 items"
    # What the map's items used so far counts before the map records its totals.
    used = page["items"][0]["usage"]
    assert used["input_tokens"] > 0
    assert page["usage"] == used
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    assert task_of(data, "write")["usage"] == used
    assert data["run"]["usage"]["input_tokens"] == used["input_tokens"]
    # An item not started yet opens to its steps, all pending.
    later = any_store_client.get(f"/runs/{run_id}/tasks/write/items/5.json").json()
    assert later["status"] == "pending"
    assert [step["status"] for step in later["steps"]] == ["pending", "pending"]


def test_the_event_stream_of_a_map_failed_by_an_item_ends_without_waiting(
    any_store_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The map gets no task_finished event (its item's worker failed it): the stream must not
    # wait for one, here for ever.
    store = store_of(any_store_client)
    run_id = run_offline(store, map_job())
    stream = run_event_stream(store, run_id, poll_interval=0.01, settle_timeout=3600.0)
    with caplog.at_level(logging.WARNING, logger="llm_scheduler.web.live"):
        chunks = asyncio.run(collect(stream))
    assert chunks[-1][0] == "finished"
    assert chunks[-1][2] == {"run_id": run_id, "status": "failed"}
    progress = events_of(chunks)
    labels = {event["task_id"] for event in progress if event["kind"] == "step_started"}
    assert {f"write[{i}]" for i in range(FAILED_ITEM + 1)} <= labels
    finished = [event["task_id"] for event in progress if event["kind"] == "task_finished"]
    assert finished == ["plan"]
    assert "no task_finished event" not in caplog.text

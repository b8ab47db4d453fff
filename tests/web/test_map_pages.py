"""Map tasks in the web UI: the graph preview, a map run's graph, item counts and item lists.

A map run is made in process (offline) and seen through the trace viewer's API, and through the
run page's view functions and templates, which only reshape a record: stores cannot run maps
yet (see test_maps_refused.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.protobuf import json_format
from starlette.requests import Request

from llm_scheduler.v1 import run_pb2
from llm_scheduler.web.graph_layout import ItemProgress, layout_job
from llm_scheduler.web.map_view import item_view, with_items
from llm_scheduler.web.routes_runs import run_page_data
from llm_scheduler.web.run_view import task_view
from tests.web.conftest import state_of, store_of
from tests.web.map_support import FAILED_ITEM, SECTIONS, map_job, map_run, map_trace
from tests.web.runs_support import chain_job, run_offline

LABEL = "8/12 items · 1 failed · 3 skipped"
STATUSES = ["succeeded"] * FAILED_ITEM + ["failed"] + ["skipped"] * 3


@pytest.fixture(scope="module")
def job_run() -> run_pb2.JobRun:
    return map_run()


def node_of(graph: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(node for node in graph["nodes"] if node["task_id"] == task_id)


def render(client: TestClient, template: str, path: str, data: dict[str, Any]) -> str:
    request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
    return state_of(client).templates.get_template(template).render(request=request, data=data)


def test_the_editor_preview_draws_a_map_as_a_stack_with_its_list(client: TestClient) -> None:
    text = json.dumps(json_format.MessageToDict(map_job(), preserving_proto_field_name=True))
    checked = client.post("/api/validate", json={"text": text, "format": "json"}).json()
    write, plan = node_of(checked["graph"], "write"), node_of(checked["graph"], "plan")
    assert write["is_map"] and write["map"] == "for each section in %sections%"
    assert not plan["is_map"] and plan["map"] == ""
    # No run: no item count and no bar.
    assert write["items"] is None and write["bars"] == []
    assert [line["class"] for line in write["lines"]][:2] == ["graph-title", "graph-map"]
    assert "for each section in %sections%" in write["tooltip"]
    assert write["height"] > plan["height"]


def test_a_map_traces_graph_counts_its_items_by_status(client: TestClient) -> None:
    data = client.post("/api/traces/view", json={"trace": map_trace()}).json()
    write = next(task for task in data["tasks"] if task["task_id"] == "write")
    assert write["is_map"] and write["items_total"] == len(SECTIONS)
    assert write["items_counts"] == {
        "pending": 0,
        "running": 0,
        "succeeded": 8,
        "failed": 1,
        "skipped": 3,
        "cancelled": 0,
        "waiting": 0,
    }
    assert write["items_label"] == LABEL
    plan = next(task for task in data["tasks"] if task["task_id"] == "plan")
    assert not plan["is_map"] and plan["items_total"] is None and plan["items_label"] is None
    node = node_of(data["graph"], "write")
    assert node["status"] == "failed" and node["items"]["label"] == LABEL
    assert [line["text"] for line in node["lines"] if line["class"] == "graph-items"] == [LABEL]
    bars = node["bars"]
    assert [bar["status"] for bar in bars] == ["pending", "succeeded", "failed", "skipped"]
    whole = bars[0]["width"]
    assert sum(bar["width"] for bar in bars[1:]) == pytest.approx(whole, abs=0.2)
    assert bars[1]["width"] == pytest.approx(whole * 8 / 12, abs=0.1)
    assert all(line["y"] < node["height"] for line in node["lines"])


def test_a_map_traces_details_list_every_item_with_its_steps(client: TestClient) -> None:
    data = client.post("/api/traces/view", json={"trace": map_trace()}).json()
    details = data["details"]["write"]
    assert details["map"] == {
        "items": "%sections%",
        "item_variable": "section",
        "index_variable": "index",
        "max_in_flight": 1,
        "max_items": 0,
        "label": "for each section in %sections%",
    }
    items = details["items"]
    assert [item["item_index"] for item in items] == list(range(len(SECTIONS)))
    assert [item["task_run_id"] for item in items] == [f"write~{i:06d}" for i in range(12)]
    assert [item["status"] for item in items] == STATUSES
    assert details["items_next_offset"] is None
    first = items[0]
    assert first["usage"]["output_tokens"] > 0 and first["duration_seconds"] is not None
    assert first["error"] is None and not first["is_map"]
    steps = first["details"]["steps"]
    assert [step["status"] for step in steps] == ["succeeded", "succeeded"]
    assert steps[1]["user_prompt"] == "Write section 0 about tides."
    failed = items[FAILED_ITEM]
    assert "no JSON found in the text 'not json'" in failed["error"]
    assert failed["details"]["error"]["type"] == "FunctionCallError"
    assert [step["status"] for step in failed["details"]["steps"]] == ["failed", "pending"]
    skipped = items[-1]["details"]
    assert skipped["status"] == "skipped" and skipped["steps"][0]["status"] == "pending"
    # A task that is no map has no items.
    assert data["details"]["plan"]["map"] is None and "items" not in data["details"]["plan"]


def test_items_are_listed_a_page_at_a_time(job_run: run_pb2.JobRun) -> None:
    view = task_view(job_run, "write")
    assert view is not None
    page = with_items(view, job_run, offset=5, limit=5)
    assert [item["item_index"] for item in page["items"]] == [5, 6, 7, 8, 9]
    assert page["items_next_offset"] == 10 and page["items_limit"] == 5
    assert "details" not in page["items"][0]  # the steps come one item at a time
    last = with_items(task_view(job_run, "write") or {}, job_run, offset=10, limit=5)
    assert [item["item_index"] for item in last["items"]] == [10, 11]
    assert last["items_next_offset"] is None


def test_one_items_details(job_run: run_pb2.JobRun) -> None:
    item = item_view(job_run, "write", 3)
    assert item is not None
    assert item["item_index"] == 3 and item["task_run_id"] == "write~000003"
    assert item["inputs"]["section"] == SECTIONS[3] and item["inputs"]["index"] == 3
    assert item["outputs"]["text"].endswith("Write section 3 about kelp.")
    assert item["map"]["label"] == "for each section in %sections%"
    assert item_view(job_run, "write", 12) is None
    assert item_view(job_run, "write", -1) is None
    assert item_view(job_run, "plan", 0) is None  # no map
    assert item_view(job_run, "nope", 0) is None


def test_a_running_map_shows_the_items_it_has_not_recorded_as_pending(
    job_run: run_pb2.JobRun,
) -> None:
    running = run_pb2.JobRun()
    running.CopyFrom(job_run)
    running.status = run_pb2.RUN_STATUS_RUNNING
    write = next(task for task in running.tasks if task.task_id == "write")
    write.status = run_pb2.RUN_STATUS_RUNNING
    del write.items[5:]
    write.items[4].status = run_pb2.RUN_STATUS_RUNNING
    data = run_page_data(running, read_only=True)
    summary = next(task for task in data["tasks"] if task["task_id"] == "write")
    assert summary["items_label"] == "4/12 items · 1 running"
    assert summary["items_counts"]["pending"] == 7
    node = node_of(data["graph"], "write")
    assert [bar["status"] for bar in node["bars"]] == ["pending", "succeeded", "running"]
    view = with_items(task_view(running, "write") or {}, running)
    assert [item["status"] for item in view["items"]][3:7] == [
        "succeeded",
        "running",
        "pending",
        "pending",
    ]
    assert view["items"][11]["task_run_id"] == "write~000011"
    # A map that has not read its list yet (and one not started) has no count.
    write.items_total = 0
    del write.items[:]
    assert node_of(run_page_data(running, read_only=True)["graph"], "write")["items"] == {
        "total": None,
        "counts": {},
        "label": "items not listed yet",
    }
    running.tasks.remove(write)
    pending = next(t for t in run_page_data(running, read_only=True)["tasks"] if t["is_map"])
    assert pending["status"] == "pending" and pending["items_label"] == "items not listed yet"


def test_the_run_page_html_draws_the_map_and_its_count(
    client: TestClient, job_run: run_pb2.JobRun
) -> None:
    data = run_page_data(job_run)
    html = render(client, "run.html", f"/runs/{job_run.run_id}", data)
    node = re.search(r'<g class="graph-node[^"]*"\s+data-task-id="write".*?</g>', html, re.S)
    assert node is not None
    assert "is-map" in node.group(0) and "status-failed" in node.group(0)
    assert 'class="graph-stack"' in node.group(0)
    assert ">for each section in %sections%</text>" in node.group(0)
    assert f">{LABEL}</text>" in node.group(0)
    assert 'class="graph-bar status-failed"' in node.group(0)
    assert f'<span class="items-label">{LABEL}</span>' in html  # the task table


def test_the_task_and_item_pages_html(client: TestClient, job_run: run_pb2.JobRun) -> None:
    base = f"/runs/{job_run.run_id}/tasks/write"
    task = with_items(task_view(job_run, "write") or {}, job_run, offset=4, limit=4)
    task["job_id"] = job_run.job_id
    html = render(client, "run_task.html", base, task)
    rows = re.findall(r'<tr data-item-index="(\d+)">', html)
    assert rows == ["4", "5", "6", "7"]
    assert f'href="{base}/items/5"' in html
    assert f'href="{base}?items_offset=0&amp;items_limit=4">← Previous items' in html
    assert f'href="{base}?items_offset=8&amp;items_limit=4">Next items →' in html
    assert "section in %sections%" in html and f">{LABEL}</dd>" in html
    assert "<h3>Steps</h3>" not in html

    item = item_view(job_run, "write", FAILED_ITEM) or {}
    item["job_id"] = job_run.job_id
    html = render(client, "run_task.html", f"{base}/items/{FAILED_ITEM}", item)
    assert f"write[{FAILED_ITEM}]" in html
    assert f'href="{base}/items/{FAILED_ITEM}.json"' in html
    assert f'<a class="mono" href="{base}">write</a>' in html
    assert "<h3>Steps</h3>" in html and "no JSON found in the text" in html


def test_a_stored_runs_task_json_has_no_map_and_no_items(client: TestClient) -> None:
    run_id = run_offline(store_of(client), chain_job())
    task = client.get(f"/runs/{run_id}/tasks/first.json").json()
    assert task["map"] is None and task["item_index"] is None and not task["is_map"]
    assert client.get(f"/runs/{run_id}/tasks/first/items/0.json").status_code == 404
    assert client.get(f"/runs/{run_id}/tasks/first/items/0").status_code == 404


def test_item_progress_labels() -> None:
    assert ItemProgress(None, {}).label() == "items not listed yet"
    assert ItemProgress(0, {}).label() == "0/0 items"
    assert ItemProgress(40, {"succeeded": 12, "running": 3}).label() == "12/40 items · 3 running"
    graph = layout_job(map_job(), items={"write": ItemProgress(0, {})})
    (bar,) = node_of(graph, "write")["bars"]  # an empty list: the bar alone, pending
    assert bar["status"] == "pending" and bar["width"] == 214

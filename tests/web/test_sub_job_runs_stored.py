"""Sub-job runs in a store on the run pages: a step links its child, the child links back.

The job of `sub_job_support` (a sub-job step in a task, and one in a map) is run by a
dispatcher on the store, on every store backend; the pages (HTML and JSON) read it back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient

from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.submit import submit_job
from tests.web.conftest import store_of
from tests.web.runs_support import dispatch, offline_context, run_offline
from tests.web.sub_job_support import SECTIONS, sub_job_job


def task_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(task for task in data["tasks"] if task["task_id"] == task_id)


def node_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(node for node in data["graph"]["nodes"] if node["task_id"] == task_id)


def test_a_sub_job_step_links_its_child_and_the_child_links_back(
    any_store_client: TestClient,
) -> None:
    client = any_store_client
    run_id = run_offline(store_of(client), sub_job_job())
    child_id = f"{run_id}~intro~0"
    data = client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "succeeded"
    assert data["run"]["caller"] is None and data["links"]["caller"] is None
    intro = node_of(data, "intro")
    assert intro["steps"] == [
        {
            "name": "write_section",
            "kind": "sub_job",
            "detail": "section_writer",
            "child_tasks": ["draft", "polish"],
        }
    ]
    texts = [line["text"] for line in intro["lines"]]
    assert "start · sub-job" in texts and "↳ draft → polish" in texts
    assert task_of(data, "intro")["waiting_child"] is None

    task = client.get(f"/runs/{run_id}/tasks/intro.json").json()
    [step] = task["steps"]
    assert (step["type"], step["sub_job"], step["child_run_id"]) == (
        "sub_job",
        "section_writer",
        child_id,
    )
    child = step["child_run"]
    assert (child["run_id"], child["url"], child["status"]) == (
        child_id,
        f"/runs/{child_id}",
        "succeeded",
    )
    assert child["job_id"] == "section_writer"
    assert child["usage"]["input_tokens"] > 0
    assert child["usage"] == step["usage"] and child["cost_usd"] == step["cost_usd"]
    assert task["waiting_child"] is None
    html = client.get(f"/runs/{run_id}/tasks/intro").text
    assert f'href="/runs/{child_id}"' in html and "Child run" in html

    page = client.get(f"/runs/{child_id}.json").json()
    assert page["run"]["status"] == "succeeded"
    assert page["run"]["caller"] == {
        "run_id": run_id,
        "task_run_id": "intro",
        "task_id": "intro",
        "item_index": None,
        "step_index": 0,
        "label": f"run {run_id}, task intro, step 0",
        "url": f"/runs/{run_id}",
        "task_url": f"/runs/{run_id}/tasks/intro",
    }
    assert page["links"]["caller"] == f"/runs/{run_id}"
    assert [task["task_id"] for task in page["tasks"]] == ["draft", "polish"]
    html = client.get(f"/runs/{child_id}").text
    assert "Called by" in html
    assert f'href="/runs/{run_id}"' in html and f'href="/runs/{run_id}/tasks/intro"' in html


def test_a_map_items_sub_job_step_links_its_child(any_store_client: TestClient) -> None:
    client = any_store_client
    run_id = run_offline(store_of(client), sub_job_job())
    for index in range(len(SECTIONS)):
        child_id = f"{run_id}~write~{index:06d}~0"
        item = client.get(f"/runs/{run_id}/tasks/write/items/{index}.json").json()
        child = item["steps"][0]["child_run"]
        assert (child["run_id"], child["url"], child["status"]) == (
            child_id,
            f"/runs/{child_id}",
            "succeeded",
        )
        page = client.get(f"/runs/{child_id}.json").json()
        caller = page["run"]["caller"]
        assert (caller["task_run_id"], caller["item_index"]) == (f"write~{index:06d}", index)
        assert caller["task_url"] == f"/runs/{run_id}/tasks/write/items/{index}"
        assert caller["label"] == f"run {run_id}, task write[{index}], step 0"
    html = client.get(f"/runs/{run_id}/tasks/write/items/1").text
    assert f'href="/runs/{run_id}~write~000001~0"' in html
    assert node_of(client.get(f"/runs/{run_id}.json").json(), "write")["is_map"] is True


def test_the_run_list_marks_child_runs(any_store_client: TestClient) -> None:
    client = any_store_client
    run_id = run_offline(store_of(client), sub_job_job())
    runs = {run["run_id"]: run for run in client.get("/runs.json").json()["runs"]}
    assert len(runs) == 1 + 1 + len(SECTIONS)
    assert runs[run_id]["caller_run_id"] == "" and runs[run_id]["caller_url"] is None
    child = runs[f"{run_id}~write~000002~0"]
    assert (child["caller_run_id"], child["caller_task_run_id"], child["caller_step_index"]) == (
        run_id,
        "write~000002",
        0,
    )
    assert child["caller_url"] == f"/runs/{run_id}"
    html = client.get("/runs").text
    assert html.count("child of") == 1 + len(SECTIONS)


def test_a_task_waiting_for_its_child_says_so(any_store_client: TestClient) -> None:
    client = any_store_client
    store = store_of(client)
    run_id = submit_job(store, sub_job_job(), offline=True)
    child_id = f"{run_id}~intro~0"

    async def deliver(task_id: str) -> str:
        context = offline_context()
        try:
            return (await handle_task_run(store, run_id, task_id, context)).action
        finally:
            await context.models.aclose()

    assert asyncio.run(deliver("intro")) == "waiting"
    data = client.get(f"/runs/{run_id}.json").json()
    intro = task_of(data, "intro")
    assert intro["status"] == "waiting"
    waiting = intro["waiting_child"]
    assert (waiting["run_id"], waiting["url"], waiting["status"]) == (
        child_id,
        f"/runs/{child_id}",
        "pending",
    )
    html = client.get(f"/runs/{run_id}").text
    assert "waiting for child run" in html and f'href="/runs/{child_id}"' in html

    task = client.get(f"/runs/{run_id}/tasks/intro.json").json()
    assert task["status"] == "waiting"
    assert task["waiting_child"]["run_id"] == child_id
    # The step waiting has no record yet: it names its child all the same.
    [step] = task["steps"]
    assert step["status"] == "pending" and step["child_run"]["run_id"] == child_id
    html = client.get(f"/runs/{run_id}/tasks/intro").text
    assert "Waiting for child run" in html and f'href="/runs/{child_id}"' in html

    child = client.get(f"/runs/{child_id}.json").json()
    assert child["run"]["status"] == "pending"
    assert child["run"]["caller"]["url"] == f"/runs/{run_id}"

    dispatch(store)
    data = client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "succeeded"
    assert task_of(data, "intro")["waiting_child"] is None
    task = client.get(f"/runs/{run_id}/tasks/intro.json").json()
    assert task["waiting_child"] is None
    assert task["steps"][0]["child_run"]["status"] == "succeeded"


def test_a_trace_names_its_children_without_links(any_store_client: TestClient) -> None:
    client = any_store_client
    run_id = run_offline(store_of(client), sub_job_job())
    trace = client.get(f"/runs/{run_id}/trace.json").json()
    data = client.post("/api/traces/view", json={"trace": trace}).json()
    child = data["details"]["intro"]["steps"][0]["child_run"]
    assert (child["run_id"], child["url"], child["status"]) == (
        f"{run_id}~intro~0",
        None,
        "succeeded",
    )
    item = data["details"]["write"]["items"][2]["details"]
    assert item["steps"][0]["child_run"]["run_id"] == f"{run_id}~write~000002~0"

"""What-if through the API: plan, replay, compare, and uploaded traces (in process, real stores)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from google.protobuf import json_format

from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.trace import to_trace
from tests.web.conftest import store_of
from tests.web.runs_support import (
    IMG,
    SCRIPT,
    chain_job,
    dispatch,
    function_step,
    job_from,
    run_offline,
    xss_job,
)

RESPONSE_EDIT = {"kind": "step_response", "task_id": "first", "step_index": 0, "value": "EDITED"}


def plan_of(client: TestClient, run_id: str, edits: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post(f"/api/runs/{run_id}/replay-plan", json={"edits": edits})
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    return plan


def test_edit_plan_replay_and_compare_on_every_store(any_store_client: TestClient) -> None:
    client = any_store_client
    store = store_of(client)
    run_id = run_offline(store, chain_job())

    unchanged = plan_of(client, run_id, [])
    assert unchanged["to_run"] == 0 and unchanged["reused"] == 3
    plan = plan_of(client, run_id, [RESPONSE_EDIT])
    actions = [(s["task_id"], s["step_index"], s["action"]) for s in plan["steps"]]
    assert actions == [("first", 0, "reuse"), ("first", 1, "run"), ("second", 0, "run")]
    assert plan["model_calls"] == 1
    assert "edited response" in plan["steps"][0]["reason"]

    started = client.post(f"/api/runs/{run_id}/replay", json={"edits": [RESPONSE_EDIT]})
    assert started.status_code == 201, started.text
    new_id = started.json()["run_id"]
    assert started.json()["url"] == f"/runs/{new_id}"
    dispatch(store)

    replayed = read_job_run(store, new_id)
    assert replayed is not None and replayed.parent_run_id == run_id
    ran = [
        (t.task_id, s.index) for t in replayed.tasks for s in t.steps if not s.reused_from_run_id
    ]
    planned = [(s["task_id"], s["step_index"]) for s in plan["steps"] if s["action"] == "run"]
    assert ran == planned
    compare = client.get(f"/runs/{new_id}/compare.json").json()
    assert compare["before_run_id"] == run_id
    first = next(t for t in compare["tasks"] if t["task_id"] == "first")
    assert first["changed"] and first["after_outputs"]["line"] == "fact: EDITED"
    page = client.get(f"/runs/{new_id}/compare")
    assert page.status_code == 200 and "fact: EDITED" in page.text


def test_what_if_page_and_task_editor_data(client: TestClient) -> None:
    store = store_of(client)
    run_id = run_offline(store, chain_job())

    page = client.get(f"/runs/{run_id}/what-if")
    assert page.status_code == 200
    assert 'id="what-if-graph"' in page.text and 'data-task-id="first"' in page.text
    task = client.get(f"/runs/{run_id}/what-if/tasks/first.json").json()
    ask, fmt = task["steps"]
    assert ask["prompt_template"] == {
        "system_prompt": "You are terse.",
        "user_prompt": "Tell me about %topic%.",
    }
    assert ask["editable"] and fmt["prompt_template"] is None
    assert client.get(f"/runs/{run_id}/what-if/tasks/nope.json").status_code == 404
    assert client.get("/runs/nope/what-if").status_code == 404


def test_bad_edits_and_invalid_prompts_are_refused_with_their_reason(client: TestClient) -> None:
    store = store_of(client)
    run_id = run_offline(store, chain_job())

    bad_kind = client.post(f"/api/runs/{run_id}/replay-plan", json={"edits": [{"kind": "x"}]})
    assert bad_kind.status_code == 400 and "unknown kind 'x'" in bad_kind.json()["error"]
    prompt = {
        "kind": "step_prompt",
        "task_id": "second",
        "step_index": 0,
        "value": {"user_prompt": "Rephrase %missing%"},
    }
    invalid = client.post(f"/api/runs/{run_id}/replay", json={"edits": [prompt]})
    assert invalid.status_code == 422
    problem = invalid.json()["problems"][0]
    assert "missing" in problem["message"] and problem["path"].startswith("tasks[1].steps[0]")
    assert len(store.list("job_runs")) == 1  # nothing was submitted


def test_an_uploaded_trace_is_planned_and_replayed(client: TestClient) -> None:
    store = store_of(client)
    run_id = run_offline(store, chain_job())
    recorded = read_job_run(store, run_id)
    assert recorded is not None
    trace = json_format.MessageToDict(to_trace(recorded), preserving_proto_field_name=True)

    plan = client.post("/api/traces/replay-plan", json={"trace": trace, "edits": [RESPONSE_EDIT]})
    assert plan.status_code == 200, plan.text
    assert plan.json()["to_run"] == 2
    started = client.post("/api/traces/replay", json={"trace": trace, "edits": []})
    assert started.status_code == 201, started.text
    dispatch(store)
    replayed = read_job_run(store, started.json()["run_id"])
    assert replayed is not None and replayed.parent_run_id == run_id
    assert all(s.reused_from_run_id for t in replayed.tasks for s in t.steps)

    bad = client.post("/api/traces/replay-plan", json={"trace": {"schema": "nope"}, "edits": []})
    assert bad.status_code == 422


def test_model_output_is_escaped_on_the_what_if_and_compare_pages(client: TestClient) -> None:
    store = store_of(client)
    run_id = run_offline(store, xss_job())
    started = client.post(
        f"/api/runs/{run_id}/replay",
        json={
            "edits": [{"kind": "step_response", "task_id": "evil", "step_index": 0, "value": IMG}]
        },
    )
    dispatch(store)
    new_id = started.json()["run_id"]
    for url in (f"/runs/{run_id}/what-if", f"/runs/{new_id}/compare"):
        html = client.get(url).text
        assert SCRIPT not in html and IMG not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get(f"/runs/{new_id}/compare").text


def test_an_embedding_step_is_edited_as_a_vector(client: TestClient) -> None:
    store = store_of(client)
    job = job_from(
        {
            "job_id": "emb",
            "tasks": [
                {
                    "task_id": "t",
                    "steps": [
                        {
                            "step_type": "STEP_TYPE_EMBEDDING",
                            "embedding_config": {"model_key": "OFFLINE_EMBEDDING", "input": "x"},
                            "output_config": {"payload": {"v": "%response%"}},
                        },
                        function_step("first", "%v.0%", "first"),
                    ],
                }
            ],
        }
    )
    run_id = run_offline(store, job)

    editor = client.get(f"/runs/{run_id}/what-if/tasks/t.json").json()
    plan = plan_of(
        client, run_id, [{"kind": "step_response", "task_id": "t", "step_index": 0, "value": [7]}]
    )
    refused = client.post(
        f"/api/runs/{run_id}/replay-plan",
        json={"edits": [{"kind": "step_response", "task_id": "t", "step_index": 0, "value": "7"}]},
    )

    step = editor["steps"][0]
    assert step["type"] == "embedding" and len(step["embedding"]) == 8
    assert step["prompt_template"] is None and step["editable"]
    assert [(s["step_type"], s["action"]) for s in plan["steps"]] == [
        ("embedding", "reuse"),
        ("function", "run"),
    ]
    assert refused.status_code == 400 and "a list of numbers" in refused.text

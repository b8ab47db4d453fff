"""The runs side of the web UI in process: run list, run page, details, actions, traces, SSE."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.errors import FunctionCallError
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.function_steps import FunctionRegistry
from llm_scheduler.store import open_store
from llm_scheduler.testing.sized_jobs import fan_out_job
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web.routes_runs import LARGE_RUN_TASKS
from tests.web.conftest import state_of, store_of
from tests.web.runs_support import (
    IMG,
    SCRIPT,
    XSS,
    chain_job,
    dispatch,
    function_step,
    job_from,
    run_offline,
    xss_job,
)


def submitted(client: TestClient, job: config_pb2.JobConfig) -> str:
    return submit_job(store_of(client), job, offline=True)


def page_json(client: TestClient, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_home_redirects_to_the_run_list(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "/runs"


def test_run_list_pages_and_filters(any_store_client: TestClient) -> None:
    client = any_store_client
    store = store_of(client)
    done = run_offline(store, chain_job("alpha"))
    pending = [submitted(client, chain_job("alpha")) for _ in range(2)]
    others = [submitted(client, chain_job("beta")) for _ in range(2)]
    everything = {done, *pending, *others}

    seen: list[str] = []
    url = "/runs.json?limit=2"
    while url:
        page = page_json(client, url)
        assert len(page["runs"]) <= 2
        seen += [run["run_id"] for run in page["runs"]]
        url = page["next_url"] and page["next_url"].replace("/runs?", "/runs.json?")
    assert len(seen) == len(everything) and set(seen) == everything
    assert seen[-1] == done  # newest first

    first = page_json(client, "/runs.json")
    assert first["next_url"] is None and first["first_url"] is None
    by_id = {run["run_id"]: run for run in first["runs"]}
    assert by_id[done]["status"] == "succeeded" and by_id[done]["url"] == f"/runs/{done}"
    assert by_id[done]["input_tokens"] > 0 and by_id[pending[0]]["status"] == "pending"

    beta = page_json(client, "/runs.json?job_id=beta")
    assert {run["run_id"] for run in beta["runs"]} == set(others)
    succeeded = page_json(client, "/runs.json?status=succeeded")
    assert [run["run_id"] for run in succeeded["runs"]] == [done]
    assert succeeded["filters"] == {"job_id": "", "status": "succeeded"}
    alpha_pending = page_json(client, "/runs.json?job_id=alpha&status=PENDING")
    assert {run["run_id"] for run in alpha_pending["runs"]} == set(pending)

    html = client.get("/runs?limit=2").text
    older = re.search(r'<a rel="next" href="([^"]+)">Older', html)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert "← Newest" in second.text
    assert f'href="/runs/{done}"' in client.get("/runs?status=succeeded").text
    assert client.get("/runs.json?status=bogus").status_code == 400
    assert client.get("/runs.json?cursor=nonsense").status_code == 400


def test_run_page_and_its_json_twin(any_store_client: TestClient) -> None:
    client = any_store_client
    run_id = run_offline(store_of(client), chain_job())
    data = page_json(client, f"/runs/{run_id}.json")
    run = data["run"]
    assert (run["run_id"], run["job_id"], run["status"]) == (run_id, "chain", "succeeded")
    assert run["usage"]["input_tokens"] > 0 and run["finished"]
    assert not run["can_cancel"] and not run["can_resume"] and not data["live"]
    assert [task["task_id"] for task in data["tasks"]] == ["first", "second"]
    assert {node["task_id"]: node["status"] for node in data["graph"]["nodes"]} == {
        "first": "succeeded",
        "second": "succeeded",
    }
    assert [edge["source"] for edge in data["graph"]["edges"]] == ["first"]
    rows = data["timeline"]["rows"]
    assert [row["task_id"] for row in rows] == ["first", "second"]
    assert all(row["bar"] is not None for row in rows)
    assert data["links"]["events"] == f"/runs/{run_id}/events"
    assert data["links"]["what_if"] == f"/runs/{run_id}/what-if"
    assert data["links"]["trace"] == f"/runs/{run_id}/trace.json"

    html = client.get(f"/runs/{run_id}").text
    assert re.search(r'class="graph-node status-succeeded[^"]*"\s+data-task-id="first"', html)
    assert 'id="timeline-box"' in html and 'id="task-details"' in html
    assert f'href="/runs/{run_id}/what-if"' in html
    assert 'id="resume-button" data-action="resume" hidden' in html

    task = page_json(client, f"/runs/{run_id}/tasks/first.json")
    assert task["run_id"] == run_id and task["job_id"] == "chain"
    ask, fmt = task["steps"]
    assert ask["user_prompt"] == "Tell me about owls." and ask["response_text"]
    assert fmt["function_name"] == "template" and fmt["function_response"]
    task_html = client.get(f"/runs/{run_id}/tasks/first").text
    assert "Tell me about owls." in task_html and "System prompt" in task_html


def test_unknown_runs_and_tasks_are_not_found(client: TestClient) -> None:
    run_id = submitted(client, chain_job())
    for url in ("/runs/nope", "/runs/nope.json", "/runs/nope/events", "/runs/nope/trace.json"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/runs/{run_id}/tasks/nope.json").status_code == 404
    assert client.post("/api/runs/nope/resume", json={}).status_code == 404


def test_a_pending_run_is_live_and_can_be_cancelled(client: TestClient) -> None:
    run_id = submitted(client, chain_job())
    data = page_json(client, f"/runs/{run_id}.json")
    assert data["live"] and data["run"]["can_cancel"] and not data["run"]["can_resume"]
    assert [task["status"] for task in data["tasks"]] == ["pending", "pending"]
    assert data["timeline"]["rows"][0]["bar"] is None
    html = client.get(f"/runs/{run_id}").text
    assert 'id="cancel-button" data-action="cancel">' in html
    response = client.post(f"/api/runs/{run_id}/cancel", json={})
    assert response.status_code == 200, response.text
    assert response.json() == {"run_id": run_id, "cancelled": ["first"]}
    data = page_json(client, f"/runs/{run_id}.json")
    assert data["run"]["status"] == "cancelled" and not data["live"]
    assert data["run"]["can_resume"] and not data["run"]["can_cancel"]
    assert data["run"]["error"]["message"]
    assert [task["status"] for task in data["tasks"]] == ["cancelled", "pending"]
    resumed = client.post(f"/api/runs/{run_id}/resume", json={})
    assert resumed.json() == {"run_id": run_id, "requeued": ["first"]}
    assert page_json(client, f"/runs/{run_id}.json")["run"]["status"] == "running"


def test_model_answers_and_function_outputs_are_escaped_in_html(client: TestClient) -> None:
    run_id = run_offline(store_of(client), xss_job())
    task = page_json(client, f"/runs/{run_id}/tasks/evil.json")
    ask, fn = task["steps"]
    assert XSS in ask["response_text"] and fn["function_response"] == XSS
    assert task["name"] == f"Task {IMG}"
    for url in (f"/runs/{run_id}", f"/runs/{run_id}/tasks/evil", "/runs"):
        html = client.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html, url
        assert "onerror=alert(1)&gt;" in html or url == "/runs", url
    page = client.get(f"/runs/{run_id}").text
    assert SCRIPT not in page
    assert "Job &lt;script&gt;alert(1)&lt;/script&gt;" in page  # the job's name
    assert "Task &lt;img src=x onerror=alert(1)&gt;" in page  # the task's name
    details = client.get(f"/runs/{run_id}/tasks/evil").text
    assert (
        "Repeat &lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;" in details
    )
    # The only <script> elements are the page's own.
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == [
        '<script src="/static/app.js" defer>',
        '<script type="application/json" id="run-page">',
        '<script src="/static/run.js" defer>',
    ]


def failing_job() -> config_pb2.JobConfig:
    return job_from(
        {
            "job_id": "fragile",
            "tasks": [
                {
                    "task_id": "prepare",
                    "steps": [function_step("a", "ready", "word")],
                    "next_task": "fragile",
                },
                {
                    "task_id": "fragile",
                    "steps": [
                        {
                            "id": "check",
                            "step_type": "STEP_TYPE_FUNCTION_CALL",
                            "function_call_config": {
                                "function_name": "needs_fix",
                                "request": {"word": "%word%"},
                            },
                            "output_config": {"payload": {"checked": "%response%"}},
                        }
                    ],
                },
            ],
        }
    )


def test_a_failed_run_shows_its_error_and_resumes(client: TestClient) -> None:
    fixed = threading.Event()

    def needs_fix(word: str) -> str:
        if not fixed.is_set():
            raise FunctionCallError("the <b>fix</b> is not in yet")
        return word.upper()

    functions = FunctionRegistry.with_builtins()
    functions.register(needs_fix, "needs_fix")
    store = store_of(client)
    run_id = run_offline(store, failing_job(), functions)
    data = page_json(client, f"/runs/{run_id}.json")
    assert data["run"]["status"] == "failed" and data["run"]["can_resume"]
    summary = {task["task_id"]: (task["status"], task["steps_done"]) for task in data["tasks"]}
    assert summary == {"prepare": ("succeeded", 1), "fragile": ("failed", 0)}
    fragile = page_json(client, f"/runs/{run_id}/tasks/fragile.json")
    assert "fix" in fragile["error"]["message"]
    assert fragile["steps"][0]["status"] == "failed"
    assert fragile["steps"][0]["error"]["type"] == "FunctionCallError"
    html = client.get(f"/runs/{run_id}").text
    assert 'id="resume-button" data-action="resume">' in html
    assert (
        "the &lt;b&gt;fix&lt;/b&gt; is not in yet"
        in client.get(f"/runs/{run_id}/tasks/fragile").text
    )

    # A form post is refused (CSRF), a JSON one goes through.
    refused = client.post(
        f"/api/runs/{run_id}/resume",
        content="x=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 403
    fixed.set()
    response = client.post(f"/api/runs/{run_id}/resume", json={})
    assert response.status_code == 200, response.text
    assert response.json() == {"run_id": run_id, "requeued": ["fragile"]}
    assert page_json(client, f"/runs/{run_id}.json")["live"]
    dispatch(store, functions)
    data = page_json(client, f"/runs/{run_id}.json")
    assert data["run"]["status"] == "succeeded" and not data["run"]["can_resume"]
    assert data["run"]["outputs"] == {"fragile": {"checked": "READY"}}
    again = client.post(f"/api/runs/{run_id}/resume", json={})
    assert again.status_code == 400 and "already succeeded" in again.json()["error"]


def test_trace_download_and_view_round_trip(client: TestClient) -> None:
    run_id = run_offline(store_of(client), xss_job())
    response = client.get(f"/runs/{run_id}/trace.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == f'attachment; filename="trace-{run_id}.json"'
    trace = response.json()
    assert trace["schema"] == "llm-scheduler.trace" and trace["job_run"]["run_id"] == run_id

    viewed = client.post("/api/traces/view", json={"trace": trace})
    assert viewed.status_code == 200, viewed.text
    view = viewed.json()
    page = page_json(client, f"/runs/{run_id}.json")
    assert view["run"] == {**page["run"], "can_cancel": False, "can_resume": False}
    assert view["tasks"] == page["tasks"] and view["graph"] == page["graph"]
    assert view["read_only"] and not view["live"] and view["links"] == {}
    task = page_json(client, f"/runs/{run_id}/tasks/evil.json")
    del task["job_id"]
    assert view["details"] == {"evil": task}
    assert 'id="trace-file"' in client.get("/traces/view").text


@pytest.mark.parametrize(
    ("trace", "message"),
    [
        ([1, 2], "a trace is a JSON object"),
        ({"schema": "something.else", "schema_version": 1}, "not an llm-scheduler trace"),
        ({"schema": "llm-scheduler.trace", "schema_version": 99}, "format version 99"),
        ({"schema": "llm-scheduler.trace", "schema_version": 1}, "the trace holds no run"),
        (
            {"schema": "llm-scheduler.trace", "schema_version": 1, "job_run": {"bogus": 1}},
            "bogus",
        ),
    ],
)
def test_bad_traces_are_refused_clearly(client: TestClient, trace: Any, message: str) -> None:
    response = client.post("/api/traces/view", json={"trace": trace})
    assert response.status_code == 422
    body = response.json()
    assert message in body["error"]
    assert body["problems"] and body["problems"][0]["file"] == "the uploaded trace"


def test_events_stream_a_run_executed_meanwhile(client: TestClient) -> None:
    run_id = submitted(client, chain_job())
    url = state_of(client).settings.store_url
    with open_store(url) as worker_store:
        worker = threading.Thread(target=dispatch, args=(worker_store,))
        with client.stream("GET", f"/runs/{run_id}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            worker.start()
            text = "".join(response.iter_text())
        worker.join()
    chunks = [chunk for chunk in text.split("\n\n") if chunk]
    events = []
    for chunk in chunks:
        lines = dict(line.split(": ", 1) for line in chunk.split("\n") if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    kinds = [(data["kind"], data["task_id"]) for event, data in events if event == "progress"]
    assert ("task_started", "first") in kinds and ("task_finished", "second") in kinds
    assert events[-1] == ("finished", {"run_id": run_id, "status": "succeeded"})


def test_a_large_runs_table_and_timeline_are_left_to_the_script(client: TestClient) -> None:
    size = LARGE_RUN_TASKS + 1
    run_id = run_offline(store_of(client), fan_out_job(size))
    data = page_json(client, f"/runs/{run_id}.json")
    assert data["large"] and len(data["tasks"]) == size
    assert len(data["timeline"]["rows"]) == size
    assert {(task["status"], task["steps_done"]) for task in data["tasks"]} == {("succeeded", 1)}
    html = client.get(f"/runs/{run_id}").text
    assert 'id="tasks"' not in html and 'id="run-timeline"' not in html
    assert f"Listing {size} tasks" in html
    assert html.count('class="graph-node ') == size
    assert '"large": true' in html
    small = page_json(client, f"/runs/{run_offline(store_of(client), chain_job())}.json")
    assert not small["large"]


def test_an_embedding_step_shows_its_input_and_vector(client: TestClient) -> None:
    job = job_from(
        {
            "job_id": "emb",
            "input_config": {"payload": {"topic": "tides"}},
            "tasks": [
                {
                    "task_id": "embed",
                    "steps": [
                        {
                            "id": "vec",
                            "step_type": "STEP_TYPE_EMBEDDING",
                            "embedding_config": {
                                "model_key": "OPENAI_EMBEDDING_SMALL",
                                "input": f"About %topic% {SCRIPT}",
                                "dimensions": 4,
                            },
                        }
                    ],
                }
            ],
        }
    )
    run_id = submitted(client, job)
    dispatch(store_of(client))

    graph = page_json(client, f"/runs/{run_id}.json")["graph"]
    task = page_json(client, f"/runs/{run_id}/tasks/embed.json")
    html = client.get(f"/runs/{run_id}/tasks/embed").text

    assert graph["nodes"][0]["steps"] == [
        {"name": "vec", "kind": "embedding", "detail": "OPENAI_EMBEDDING_SMALL"}
    ]
    [step] = task["steps"]
    assert step["type"] == "embedding" and step["model_key"] == "OPENAI_EMBEDDING_SMALL"
    assert step["embedding_input"] == f"About tides {SCRIPT}"
    assert len(step["embedding"]) == 4 and step["parameters"] == {"dimensions": 4}
    assert step["outputs"] == {"response": step["embedding"]}
    assert "Embedding (4 dimensions)" in html and SCRIPT not in html
    assert str(step["embedding"][0]) in html

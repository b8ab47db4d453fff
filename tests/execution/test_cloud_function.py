"""The Cloud Functions in functions/main.py, served by a real functions-framework server."""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import functions_framework
import pytest

from llm_scheduler.config.formats import load
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cloudevents import (
    DOCUMENT_CREATED,
    build_document_event,
    cloudevent_sender,
)
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import Outcome
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.run_requests import run_request_path
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import REPO_ROOT
from tests.execution import events_json
from tests.execution.functions_server import SOURCE, Server, free_port, post_bytes, post_json


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("functions")
    store_url = f"sqlite:///{root}/state.db"
    env = {"LLM_SCHEDULER_STORE": store_url, "LLM_SCHEDULER_OFFLINE": "1"}
    # All start at once: startup (importing the package and the SDKs) dominates.
    events = Server("on_task_run", "cloudevent", env, root / "on_task_run.log")
    requests = Server("on_run_request", "cloudevent", env, root / "on_run_request.log")
    http = Server("run_task_http", "http", env, root / "run_task_http.log")
    try:
        events.wait_ready()
        requests.wait_ready()
        http.wait_ready()
        yield {"events": events, "requests": requests, "http": http, "store_url": store_url}
    finally:
        events.stop()
        requests.stop()
        http.stop()


def test_dispatcher_runs_a_fan_out_job_through_the_cloud_function(
    servers: dict[str, Any],
) -> None:
    job = load(REPO_ROOT / "examples" / "sample_fanout_job_config.json", config_pb2.JobConfig)
    Validator().check_job(job)
    with open_store(servers["store_url"]) as store:
        run_id = submit_job(store, job)
        context = RunContext(models=ModelClient(offline=True))
        dispatcher = Dispatcher(
            store, context, sender=cloudevent_sender(servers["events"].url), workers=4
        )
        stats = asyncio.run(asyncio.wait_for(dispatcher.run(until_idle=True), 60))
        record = read_job_run(store, run_id)
    assert stats.handled.get("post_failed", 0) == 0, servers["events"].log.read_text()
    assert stats.handled["posted"] >= len(job.tasks)
    assert record is not None
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [t.task_id for t in record.tasks] == [t.task_id for t in job.tasks]
    assert {t.status for t in record.tasks} == {run_pb2.RUN_STATUS_SUCCEEDED}
    log = servers["events"].log.read_text()
    assert '"action": "succeeded"' in log


def test_a_failed_post_is_reported_not_raised(servers: dict[str, Any]) -> None:
    send = cloudevent_sender(f"http://127.0.0.1:{free_port()}/", failure_delay=0)

    async def post() -> Outcome:
        return await send("job_runs/R/task_runs/T", {"status": "RUN_STATUS_PENDING"})

    outcome = asyncio.run(post())
    assert outcome.action == "post_failed"
    assert "Error" in outcome.detail


def _start_task_run(store_url: str, run_id: str) -> tuple[str, dict[str, Any]]:
    """Submits the two-step sample job; returns its start task run's path and document."""
    job = load(REPO_ROOT / "examples" / "sample_job_config.json", config_pb2.JobConfig)
    Validator().check_job(job)
    with open_store(store_url) as store:
        submit_job(store, job, run_id=run_id)
        path = docs.task_run_path(run_id, job.tasks[0].task_id)
        doc = store.get(path)
    assert doc is not None and doc["status"] == Status.PENDING
    return path, doc


def _encoded(mode: str, path: str, doc: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """One Firestore event for ``doc`` in an Eventarc content mode and data encoding."""
    headers, protobuf = build_document_event("local", "(default)", path, doc)
    if mode == "binary_protobuf":
        return headers, protobuf
    data = events_json.event_data("local", path, doc)
    if mode == "binary_json":
        return events_json.binary_headers(path), json.dumps(data).encode()
    if mode == "structured_json":
        event = events_json.structured_event(path, data=data)
    else:
        event = events_json.structured_event(
            path,
            data_base64=base64.b64encode(protobuf).decode(),
            content_type="application/protobuf",
        )
    return {"content-type": "application/cloudevents+json"}, json.dumps(event).encode()


@pytest.mark.parametrize(
    "mode", ["binary_protobuf", "binary_json", "structured_json", "structured_protobuf"]
)
def test_on_task_run_runs_a_task_from_every_event_encoding(
    servers: dict[str, Any], mode: str
) -> None:
    path, doc = _start_task_run(servers["store_url"], f"R-{mode}")
    headers, body = _encoded(mode, path, doc)
    status, text = post_bytes(servers["events"].url, body, headers)
    assert status == 200, text
    with open_store(servers["store_url"]) as store:
        after = store.get(path)
    assert after is not None and after["status"] == Status.SUCCEEDED, servers["events"].log
    (entry,) = [e for e in servers["events"].entries() if e.get("run_id") == f"R-{mode}"]
    assert entry["severity"] == "INFO"
    assert entry["action"] == "succeeded"
    assert entry["logging.googleapis.com/labels"] == {"run_id": f"R-{mode}", "task_id": "draft"}


_TASK_RUN = docs.task_run_path("R-bad", "draft")
_PENDING = {"status": Status.PENDING}


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (
            events_json.binary_headers(_TASK_RUN, content_type="application/protobuf"),
            b"\x0a\xff\xff\xff",
            "protobuf",
        ),
        (events_json.binary_headers(_TASK_RUN), b"{not json", "JSON"),
        (events_json.binary_headers(_TASK_RUN), b"[1, 2, 3]", "list"),
        (events_json.binary_headers(_TASK_RUN), b"", "no data"),
        (
            events_json.binary_headers(_TASK_RUN, event_type="com.example.unknown"),
            json.dumps(events_json.event_data("local", _TASK_RUN, _PENDING)).encode(),
            "not a Firestore document event",
        ),
        (
            events_json.binary_headers("job_runs/R-bad"),
            json.dumps(events_json.event_data("local", "job_runs/R-bad", _PENDING)).encode(),
            "not a task run",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            json.dumps(events_json.structured_event(_TASK_RUN, data={"value": {}})).encode(),
            "names no document",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            json.dumps(events_json.structured_event(_TASK_RUN, data="garbage")).encode(),
            "JSON",
        ),
    ],
    ids=[
        "bad_protobuf",
        "bad_json",
        "json_list",
        "empty_body",
        "unknown_type",
        "not_a_task_run",
        "structured_empty_value",
        "structured_string",
    ],
)
def test_events_that_can_never_succeed_are_logged_and_acknowledged(
    servers: dict[str, Any], headers: dict[str, str], body: bytes, reason: str
) -> None:
    status, text = post_bytes(servers["events"].url, body, headers)
    assert status == 200, text  # acknowledged: redelivering it would fail the same way
    event_id = headers.get("ce-id") or json.loads(body)["id"]
    (entry,) = [e for e in servers["events"].entries() if e.get("event_id") == event_id]
    assert entry["severity"] == "WARNING"
    assert entry["action"] == "discarded"
    assert reason in entry["message"]
    assert "Traceback" not in servers["events"].log.read_text()


def test_a_store_failure_is_a_server_error_so_the_event_comes_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    # A store that cannot be opened (its folder is a file) stands for one that is unreachable.
    (tmp_path / "not-a-folder").write_text("")
    app = _in_process_app(monkeypatch, "on_task_run", "cloudevent")
    monkeypatch.setenv("LLM_SCHEDULER_STORE", f"sqlite:///{tmp_path}/not-a-folder/state.db")
    headers, body = build_document_event("local", "(default)", _TASK_RUN, _PENDING)
    response = app.test_client().post("/", data=body, headers=headers)
    assert response.status_code == 500


def _in_process_app(monkeypatch: pytest.MonkeyPatch, target: str, signature: str) -> Any:
    # functions-framework's own app factory, in process, to control the environment.
    # create_app records the target and signature in os.environ; let monkeypatch restore them.
    monkeypatch.setenv("FUNCTION_TARGET", target)
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", signature)
    # It also registers the source as sys.modules["main"] and appends its folder to sys.path.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "main", types.ModuleType("main"))
    return functions_framework.create_app(  # type: ignore[no-untyped-call]  # untyped upstream
        target, str(SOURCE), signature
    )


def test_on_run_request_starts_the_run_a_request_asks_for(servers: dict[str, Any]) -> None:
    config = json.loads((REPO_ROOT / "examples" / "sample_job_config.json").read_text())
    path = run_request_path("req-http")
    with open_store(servers["store_url"]) as store:
        store.set(path, {"config": config, "inputs": {"topic": "owls"}})
    # The JSON encoding, as a trigger made with `gcloud eventarc triggers create` sends it.
    headers = events_json.binary_headers(path, event_type=DOCUMENT_CREATED)
    body = json.dumps(events_json.event_data("local", path, {"config": {}})).encode()
    status, text = post_bytes(servers["requests"].url, body, headers)
    assert status == 200, text
    # A redelivery changes nothing.
    assert post_bytes(servers["requests"].url, body, headers)[0] == 200
    with open_store(servers["store_url"]) as store:
        request = store.get(path)
        job_run = store.get(docs.job_run_path("req-http"))
    assert request is not None and request["status"] == "ACCEPTED", request
    assert request["run_id"] == "req-http"
    assert job_run is not None and job_run["inputs"]["topic"] == "owls"
    entries = [e for e in servers["requests"].entries() if e.get("request_id") == "req-http"]
    assert [(e["severity"], e["action"]) for e in entries] == [
        ("INFO", "accepted"),
        ("DEBUG", "noop"),
    ]


def test_on_run_request_rejects_a_bad_request(servers: dict[str, Any]) -> None:
    path = run_request_path("req-http-bad")
    with open_store(servers["store_url"]) as store:
        store.set(path, {"job_id": "no-such-job", "inputs": [1]})
    headers, body = build_document_event(
        "local", "(default)", path, {"job_id": "no-such-job"}, DOCUMENT_CREATED
    )
    status, text = post_bytes(servers["requests"].url, body, headers)
    assert status == 200, text
    with open_store(servers["store_url"]) as store:
        request = store.get(path)
        assert store.get(docs.job_run_path("req-http-bad")) is None
    assert request is not None and request["status"] == "REJECTED"
    assert {p["path"] for p in request["problems"]} == {"inputs"}
    (entry,) = [e for e in servers["requests"].entries() if e.get("request_id") == "req-http-bad"]
    assert entry["severity"] == "WARNING"
    assert entry["problems"][0]["path"] == "inputs"


def _task() -> dict[str, Any]:
    path = REPO_ROOT / "examples" / "sample_task_config.json"
    task: dict[str, Any] = json.loads(path.read_text())
    return task


def test_run_task_http_runs_a_valid_task(servers: dict[str, Any]) -> None:
    status, record = post_json(servers["http"].url, {"task": _task(), "inputs": {"topic": "owls"}})
    assert status == 200, record
    assert record["status"] == "RUN_STATUS_SUCCEEDED"
    assert set(record["outputs"]) >= {"joke", "explanation"}
    assert record["inputs"]["topic"] == "owls"
    assert len(record["steps"]) == 2
    assert "task_id" in record  # snake_case field names


def test_run_task_http_inputs_win_over_the_task_defaults(servers: dict[str, Any]) -> None:
    # The same rule as task_runner --var and job_submitter --var (docs/config_reference.md).
    task = _task()
    assert task["input_config"]["payload"]["topic"] == "computers"
    status, record = post_json(servers["http"].url, {"task": task, "inputs": {"topic": "owls"}})
    assert status == 200, record
    assert record["steps"][0]["user_prompt"] == "Tell me a short joke about owls."
    status, record = post_json(servers["http"].url, {"task": task})
    assert status == 200, record
    assert record["steps"][0]["user_prompt"] == "Tell me a short joke about computers."


def test_run_task_http_reports_every_problem_with_its_field_path(
    servers: dict[str, Any],
) -> None:
    task = _task()
    task["steps"][1]["model_query_config"]["model_key"] = "NO_SUCH_MODEL"
    status, body = post_json(servers["http"].url, {"task": task})
    assert status == 400, body
    paths = [problem["path"] for problem in body["problems"]]
    assert "steps[1].model_query_config.model_key" in paths
    assert all({"path", "message", "hint"} <= set(p) for p in body["problems"])
    assert "NO_SUCH_MODEL" in body["error"]


def test_run_task_http_rejects_bad_requests(servers: dict[str, Any]) -> None:
    url = servers["http"].url
    assert post_json(url, None, method="GET")[0] == 405
    assert post_json(url, {"inputs": {}})[0] == 400
    assert post_json(url, {"task": _task(), "inputs": [1]})[0] == 400
    status, body = post_json(url, {"task": {"task_id": "t", "stepz": []}})
    assert status == 400
    assert body["problems"]


def test_run_task_http_reports_a_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLM_SCHEDULER_OFFLINE", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = _in_process_app(monkeypatch, "run_task_http", "http")
    response = app.test_client().post("/", json={"task": _task()})
    assert response.status_code == 400
    assert "GEMINI_API_KEY" in response.get_json()["error"]

"""The Cloud Functions in functions/main.py, served by a real functions-framework server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import functions_framework
import pytest

from llm_scheduler.config.formats import load
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution.cloudevents import cloudevent_sender
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.protocol import Outcome
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import REPO_ROOT

FUNCTIONS_FRAMEWORK = pathlib.Path(sys.executable).parent / "functions-framework"
SOURCE = REPO_ROOT / "functions" / "main.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A functions-framework server running one target in a subprocess."""

    def __init__(self, target: str, signature: str, env: dict[str, str], log: pathlib.Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(FUNCTIONS_FRAMEWORK),
                    "--source",
                    str(SOURCE),
                    "--target",
                    target,
                    "--signature-type",
                    signature,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env={**os.environ, "WORKERS": "1", "THREADS": "8", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("functions")
    store_url = f"sqlite:///{root}/state.db"
    env = {"LLM_SCHEDULER_STORE": store_url, "LLM_SCHEDULER_OFFLINE": "1"}
    # Both start at once: startup (importing the package and the SDKs) dominates.
    events = Server("on_task_run", "cloudevent", env, root / "on_task_run.log")
    http = Server("run_task_http", "http", env, root / "run_task_http.log")
    try:
        events.wait_ready()
        http.wait_ready()
        yield {"events": events, "http": http, "store_url": store_url}
    finally:
        events.stop()
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
    send = cloudevent_sender(f"http://127.0.0.1:{_free_port()}/", failure_delay=0)

    async def post() -> Outcome:
        return await send("job_runs/R/task_runs/T", {"status": "RUN_STATUS_PENDING"})

    outcome = asyncio.run(post())
    assert outcome.action == "post_failed"
    assert "Error" in outcome.detail


def test_a_non_protobuf_event_is_a_server_error(servers: dict[str, Any]) -> None:
    event = {
        "specversion": "1.0",
        "id": "1",
        "source": "test",
        "type": "google.cloud.firestore.document.v1.written",
        "data": {"value": {}},
    }
    status, _ = _post(servers["events"].url, event, content_type="application/cloudevents+json")
    assert status == 500
    assert "protobuf" in servers["events"].log.read_text()


def _post(
    url: str, body: Any, *, method: str = "POST", content_type: str = "application/json"
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            text = error.read().decode()
        with contextlib.suppress(ValueError):
            return error.code, json.loads(text)
        return error.code, text


def _task() -> dict[str, Any]:
    path = REPO_ROOT / "examples" / "sample_task_config.json"
    task: dict[str, Any] = json.loads(path.read_text())
    return task


def test_run_task_http_runs_a_valid_task(servers: dict[str, Any]) -> None:
    status, record = _post(servers["http"].url, {"task": _task(), "inputs": {"topic": "owls"}})
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
    status, record = _post(servers["http"].url, {"task": task, "inputs": {"topic": "owls"}})
    assert status == 200, record
    assert record["steps"][0]["user_prompt"] == "Tell me a short joke about owls."
    status, record = _post(servers["http"].url, {"task": task})
    assert status == 200, record
    assert record["steps"][0]["user_prompt"] == "Tell me a short joke about computers."


def test_run_task_http_reports_every_problem_with_its_field_path(
    servers: dict[str, Any],
) -> None:
    task = _task()
    task["steps"][1]["model_query_config"]["model_key"] = "NO_SUCH_MODEL"
    status, body = _post(servers["http"].url, {"task": task})
    assert status == 400, body
    paths = [problem["path"] for problem in body["problems"]]
    assert "steps[1].model_query_config.model_key" in paths
    assert all({"path", "message", "hint"} <= set(p) for p in body["problems"])
    assert "NO_SUCH_MODEL" in body["error"]


def test_run_task_http_rejects_bad_requests(servers: dict[str, Any]) -> None:
    url = servers["http"].url
    assert _post(url, None, method="GET")[0] == 405
    assert _post(url, {"inputs": {}})[0] == 400
    assert _post(url, {"task": _task(), "inputs": [1]})[0] == 400
    status, body = _post(url, {"task": {"task_id": "t", "stepz": []}})
    assert status == 400
    assert body["problems"]


def test_run_task_http_reports_a_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # In process (functions-framework's own app factory) to control the environment.
    for name in ("LLM_SCHEDULER_OFFLINE", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # create_app records the target and signature in os.environ; let monkeypatch restore them.
    monkeypatch.setenv("FUNCTION_TARGET", "run_task_http")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "http")
    # It also registers the source as sys.modules["main"] and appends its folder to sys.path.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "main", types.ModuleType("main"))
    app = functions_framework.create_app(  # type: ignore[no-untyped-call]  # untyped upstream
        "run_task_http", str(SOURCE), "http"
    )
    response = app.test_client().post("/", json={"task": _task()})
    assert response.status_code == 400
    assert "GEMINI_API_KEY" in response.get_json()["error"]

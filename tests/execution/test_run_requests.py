"""Run requests: a document written by any program starts a run, or says why it cannot.

On Firestore (the emulator) requests are written with the plain google-cloud-firestore client,
as a program that is not ours would; on SQLite through the store, as raw dicts.
"""

from __future__ import annotations

import copy
import datetime
import json
import pathlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from llm_scheduler.config import formats
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cloudevents import DOCUMENT_CREATED, build_document_event
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.run_request_schema import (
    render_run_request_json_schema,
    run_request_json_schema,
)
from llm_scheduler.execution.run_requests import (
    REQUEST_FIELDS,
    handle_pending_run_requests,
    handle_run_request,
    handle_run_request_event,
    pending_run_requests,
    run_request_path,
)
from llm_scheduler.execution.submit import save_job_definition, submit_job
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2
from tests.conftest import REPO_ROOT
from tests.execution import events_json
from tests.execution.functions_server import Server, post_bytes

SCHEMA_FILE = REPO_ROOT / "docs" / "run_request.schema.json"
DOC_FILE = REPO_ROOT / "docs" / "run_requests.md"


def _config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        (REPO_ROOT / "examples" / "sample_job_config.json").read_text()
    )
    return config


class Requests:
    """Writes and reads run requests as an outside program does, on either backend."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.store = open_store(store_url)
        self.client: Any = None
        if store_url.startswith("firestore://"):
            from google.cloud import firestore

            self.client = firestore.Client(project=store_url.removeprefix("firestore://"))

    def write(self, request_id: str, doc: dict[str, Any]) -> None:
        if self.client is not None:
            self.client.collection("run_requests").document(request_id).create(doc)
        else:
            self.store.set(run_request_path(request_id), doc)

    def read(self, request_id: str) -> dict[str, Any]:
        if self.client is not None:
            snapshot = self.client.collection("run_requests").document(request_id).get()
            assert snapshot.exists
            found: dict[str, Any] = snapshot.to_dict()
            return found
        doc = self.store.get(run_request_path(request_id))
        assert doc is not None
        return doc

    def close(self) -> None:
        self.store.close()
        if self.client is not None:
            self.client.close()


@pytest.fixture
def requests(store_url: str) -> Iterator[Requests]:
    requests = Requests(store_url)
    try:
        yield requests
    finally:
        requests.close()


def test_a_request_with_a_config_starts_the_run(requests: Requests) -> None:
    requests.write("req-1", {"config": _config(), "inputs": {"topic": "owls"}})
    outcome = handle_run_request(requests.store, "req-1")
    assert (outcome.action, outcome.run_id) == ("accepted", "req-1")
    request = requests.read("req-1")
    assert request["status"] == "ACCEPTED"
    assert request["run_id"] == "req-1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", request["handled_at"])
    job_run = requests.store.get(docs.job_run_path("req-1"))
    assert job_run is not None
    assert job_run["job_id"] == "poem"
    assert job_run["inputs"]["topic"] == "owls"
    start = requests.store.get(docs.task_run_path("req-1", "draft"))
    assert start is not None and start["status"] == Status.PENDING
    # Handled again (a redelivered event): nothing changes, no second run.
    again = handle_run_request(requests.store, "req-1")
    assert again.action == "noop" and "ACCEPTED" in again.detail
    assert requests.read("req-1") == request
    assert [path for path, _ in requests.store.list("job_runs")] == [docs.job_run_path("req-1")]


def test_a_request_naming_a_saved_job_starts_the_run(requests: Requests) -> None:
    config = _config()
    requests.store.set(docs.job_definition_path("poem"), config)
    requests.write("req-saved", {"job_id": "poem", "inputs": {"topic": "owls"}, "offline": False})
    outcome = handle_run_request(requests.store, "req-saved")
    assert outcome.action == "accepted", outcome
    assert requests.read("req-saved")["status"] == "ACCEPTED"
    job_run = requests.store.get(docs.job_run_path("req-saved"))
    assert job_run is not None and job_run["config"]["job_id"] == "poem"


_BAD_TASK = {"task_id": "t", "stepz": []}


def _bad_model_key() -> dict[str, Any]:
    config = _config()
    config["tasks"][1]["steps"][0]["model_query_config"]["model_key"] = "GEMINI_FLSH"
    return config


@pytest.mark.parametrize(
    ("request_doc", "paths", "message"),
    [
        ({"config": _config(), "priority": "high"}, {"priority"}, "unknown field 'priority'"),
        (
            {"config": _bad_model_key()},
            {"config.tasks[1].steps[0].model_query_config.model_key"},
            "GEMINI_FLSH",
        ),
        (
            {"config": {"job_id": "x", "tasks": [_BAD_TASK]}},
            {"config.tasks[0].stepz"},
            "unknown field 'stepz'",
        ),
        ({"config": "not a map"}, {"config"}, "not a str"),
        ({"config": _config(), "inputs": ["owls"]}, {"inputs"}, "not a list"),
        ({"config": _config(), "offline": "yes"}, {"offline"}, "true or false"),
        ({"job_id": 5}, {"job_id"}, "not a job id"),
        ({"job_id": "a/b"}, {"job_id"}, "not a job id"),
        ({"job_id": "nowhere"}, {"job_id"}, "no job 'nowhere' is saved at jobs/nowhere"),
        ({"job_id": "poem", "config": _config()}, {""}, "exactly one of job_id and config"),
        ({"inputs": {}}, {""}, "exactly one of job_id and config"),
        ({"config": _config(), "status": "DONE"}, {"status"}, "'DONE'"),
        ({"config": _config(), "run_id": "mine"}, {"run_id"}, "written by the scheduler"),
    ],
    ids=[
        "unknown_field",
        "unknown_model_key",
        "unknown_config_field",
        "config_not_a_map",
        "inputs_not_a_map",
        "offline_not_a_bool",
        "job_id_not_a_string",
        "job_id_with_slash",
        "no_saved_job",
        "job_id_and_config",
        "no_job",
        "bad_status",
        "result_field",
    ],
)
def test_a_bad_request_is_rejected_with_readable_problems_and_no_run(
    requests: Requests, request_doc: dict[str, Any], paths: set[str], message: str
) -> None:
    request_id = f"bad-{uuid.uuid4().hex[:8]}"
    requests.write(request_id, request_doc)
    outcome = handle_run_request(requests.store, request_id)
    assert outcome.action == "rejected"
    request = requests.read(request_id)
    assert request["status"] == "REJECTED"
    assert request.get("run_id") == request_doc.get("run_id")  # never set by a rejection
    assert {p["path"] for p in request["problems"]} == paths
    assert all(set(p) >= {"path", "message", "hint"} for p in request["problems"])
    assert message in request["error"]
    assert request["error"].startswith(f"run request run_requests/{request_id} is invalid")
    assert requests.store.get(docs.job_run_path(request_id)) is None
    assert requests.store.list(docs.task_runs_collection(request_id)) == []
    # A rejected request stays rejected.
    assert handle_run_request(requests.store, request_id).action == "noop"


def test_problems_in_a_saved_job_name_its_document(requests: Requests) -> None:
    requests.store.set(docs.job_definition_path("broken"), _bad_model_key())
    requests.write("req-broken", {"job_id": "broken"})
    assert handle_run_request(requests.store, "req-broken").action == "rejected"
    (problem,) = requests.read("req-broken")["problems"]
    assert problem["path"] == "tasks[1].steps[0].model_query_config.model_key"
    assert problem["document"] == "jobs/broken"


def test_values_json_cannot_hold_are_rejected(
    firestore_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Firestore timestamp could never be stored in a run (SQLite holds only JSON), so the
    # request is rejected instead of failing on every retry.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    requests = Requests(f"firestore://test-{uuid.uuid4().hex[:12]}")
    try:
        when = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
        requests.write("req-time", {"config": _config(), "inputs": {"when": when}})
        assert handle_run_request(requests.store, "req-time").action == "rejected"
        (problem,) = requests.read("req-time")["problems"]
        assert problem["path"] == "inputs"
        assert "inputs.when" in problem["message"]
        # A field the console adds out of habit: a server timestamp.
        from google.cloud import firestore

        requests.write("req-stamp", {"config": _config(), "created_at": firestore.SERVER_TIMESTAMP})
        assert handle_run_request(requests.store, "req-stamp").action == "rejected"
        stamped = requests.read("req-stamp")
        assert [p["path"] for p in stamped["problems"]] == ["created_at"]
        assert stamped["created_at"].endswith("Z")  # kept, as text
        assert requests.read("req-time")["inputs"]["when"] == "2025-06-01T00:00:00Z"
    finally:
        requests.close()


def test_an_offline_request_starts_a_run_every_worker_runs_offline(requests: Requests) -> None:
    requests.write("req-offline", {"config": _config(), "offline": True})
    outcome = handle_run_request(requests.store, "req-offline")
    assert outcome.action == "accepted"
    job_run = requests.store.get(docs.job_run_path("req-offline"))
    assert job_run is not None and job_run["offline"] is True


def test_a_request_naming_a_job_saved_by_job_submitter_starts_the_run(requests: Requests) -> None:
    job = formats.loads(json.dumps(_config()), config_pb2.JobConfig, formats.ConfigFormat.JSON)
    save_job_definition(requests.store, job)
    requests.write("req-submitted", {"job_id": job.job_id, "inputs": {"topic": "owls"}})
    outcome = handle_run_request(requests.store, "req-submitted")
    assert outcome.action == "accepted", outcome
    assert requests.store.get(docs.job_run_path("req-submitted")) is not None


def test_api_keys_are_checked_when_the_handler_holds_the_workers_environment(
    tmp_path: pathlib.Path,
) -> None:
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        store.set(run_request_path("req-keys"), {"config": _config()})
        store.set(run_request_path("req-keys-offline"), {"config": _config()})
        no_keys = ModelClient(offline=False, credentials={})
        outcome = handle_run_request(store, "req-keys", credentials=no_keys)
        assert outcome.action == "rejected"
        assert "GEMINI_API_KEY" in outcome.detail
        offline = ModelClient(offline=True)
        accepted = handle_run_request(store, "req-keys-offline", credentials=offline)
        assert accepted.action == "accepted"


def test_pending_requests_are_found_and_handled_once(requests: Requests) -> None:
    requests.write("a", {"config": _config()})
    requests.write("b", {"config": {"job_id": "x"}})
    requests.write("c", {"config": _config(), "status": "PENDING"})
    assert pending_run_requests(requests.store) == ["a", "b", "c"]
    outcomes = handle_pending_run_requests(requests.store)
    assert [(o.request_id, o.action) for o in outcomes] == [
        ("a", "accepted"),
        ("b", "rejected"),
        ("c", "accepted"),
    ]
    assert pending_run_requests(requests.store) == []
    assert handle_pending_run_requests(requests.store) == []


def test_a_request_whose_run_exists_is_accepted(requests: Requests) -> None:
    # Another handler submitted the run and had not recorded it yet.
    from llm_scheduler.config.formats import ConfigFormat, loads
    from llm_scheduler.v1 import config_pb2

    job = loads(json.dumps(_config()), config_pb2.JobConfig, ConfigFormat.JSON)
    submit_job(requests.store, job, run_id="req-raced")
    requests.write("req-raced", {"config": _config()})
    assert handle_run_request(requests.store, "req-raced").action == "accepted"
    assert requests.read("req-raced")["run_id"] == "req-raced"


def test_events_about_requests(requests: Requests) -> None:
    requests.write("req-event", {"config": _config()})
    path = run_request_path("req-event")
    data = events_json.event_data("p", path, {"config": {}})
    outcome = handle_run_request_event(
        data, requests.store, event_type=DOCUMENT_CREATED, content_type="application/json"
    )
    assert outcome.action == "accepted"
    discarded = [
        handle_run_request_event(b"\xff", requests.store),
        handle_run_request_event(data, requests.store, event_type="com.example.other"),
        handle_run_request_event(
            events_json.event_data("p", "job_runs/R", {"x": 1}), requests.store
        ),
    ]
    assert [o.action for o in discarded] == ["discarded"] * 3
    assert "not a run request" in discarded[2].detail
    deleted = events_json.event_data("p", path, None, {"config": {}})
    assert handle_run_request_event(deleted, requests.store).action == "noop"


@pytest.fixture(scope="module")
def emulator_server(
    firestore_emulator: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    project = f"test-{uuid.uuid4().hex[:12]}"
    env = {
        "LLM_SCHEDULER_STORE": f"firestore://{project}",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
    }
    log = tmp_path_factory.mktemp("on_run_request") / "server.log"
    server = Server("on_run_request", "cloudevent", env, log)
    try:
        server.wait_ready()
        yield server, project
    finally:
        server.stop()


def test_on_run_request_over_http_on_firestore(
    emulator_server: tuple[Server, str], monkeypatch: pytest.MonkeyPatch, firestore_emulator: Any
) -> None:
    server, project = emulator_server
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    requests = Requests(f"firestore://{project}")
    try:
        requests.write("ok", {"config": _config(), "inputs": {"topic": "owls"}})
        requests.write("bad", {"config": _config(), "inputz": {}})
        for request_id in ("ok", "bad"):
            path = run_request_path(request_id)
            headers, body = build_document_event(
                project, "(default)", path, {"config": {}}, DOCUMENT_CREATED
            )
            status, text = post_bytes(server.url, body, headers)
            assert status == 200, text
        ok, bad = requests.read("ok"), requests.read("bad")
        assert (ok["status"], ok["run_id"]) == ("ACCEPTED", "ok")
        assert bad["status"] == "REJECTED"
        assert [p["path"] for p in bad["problems"]] == ["inputz"]
        assert requests.store.get(docs.job_run_path("ok")) is not None
        assert requests.store.get(docs.job_run_path("bad")) is None
    finally:
        requests.close()


# -- the published format ---------------------------------------------------------------------


def test_the_schema_file_is_fresh_and_valid() -> None:
    assert SCHEMA_FILE.read_text() == render_run_request_json_schema(), (
        "docs/run_request.schema.json is stale: run "
        "python -m llm_scheduler.execution.run_request_schema > docs/run_request.schema.json"
    )
    schema = run_request_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(REQUEST_FIELDS) <= set(schema["properties"])


def _doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC_FILE.read_text(), re.S)
    return [json.loads(block) for block in blocks]


def test_the_documented_examples_are_what_the_code_does(tmp_path: pathlib.Path) -> None:
    validator = jsonschema.Draft202012Validator(
        run_request_json_schema(), format_checker=jsonschema.FormatChecker()
    )
    examples = _doc_examples()
    assert len(examples) == 4
    saved, whole, accepted, rejected = examples
    for example in (saved, whole, accepted, _config_request()):
        validator.validate(example)
    assert list(validator.iter_errors({"job_id": "poem", "priority": 1}))
    assert list(validator.iter_errors({"inputs": {}}))
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        store.set(docs.job_definition_path("poem"), _config())
        for request_id, example in (("saved", saved), ("whole", whole)):
            store.set(run_request_path(request_id), example)
            assert handle_run_request(store, request_id).action == "accepted"
            handled = store.get(run_request_path(request_id))
            assert handled is not None
            validator.validate(handled)
            assert set(handled) - set(example) == set(accepted) - set(saved)
        request = {key: rejected[key] for key in ("config", "inputs")}
        store.set(run_request_path("bad-1"), copy.deepcopy(request))
        assert handle_run_request(store, "bad-1").action == "rejected"
        handled = store.get(run_request_path("bad-1"))
        assert handled is not None
        del handled["handled_at"], rejected["handled_at"]
        assert handled == rejected


def _config_request() -> dict[str, Any]:
    return {"config": _config(), "inputs": {"topic": "owls"}, "offline": False}

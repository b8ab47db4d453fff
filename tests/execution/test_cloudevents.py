"""Firestore CloudEvents: encoding, decoding, and what the trigger does with a delivery."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from typing import Any

import pytest
from cloudevents.http import from_http
from google.events.cloud.firestore_v1.types import DocumentEventData

from llm_scheduler.config.formats import load
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cloudevents import (
    DOCUMENT_CREATED,
    DOCUMENT_EVENT_TYPES,
    TASK_RUN_EVENT_TYPES,
    build_document_event,
    decode_document_event,
    handle_document_event,
)
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import Store, open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import REPO_ROOT
from tests.execution import events_json

PATH = docs.task_run_path("R1", "draft")

EVERY_TYPE: dict[str, Any] = {
    "null": None,
    "yes": True,
    "no": False,
    "int": 42,
    "int_min": -(2**63),
    "int_max": 2**63 - 1,
    "float": 1.5,
    "float_zero": 0.0,
    "text": "héllo 火🔥",
    "empty_text": "",
    "list": [1, "two", None, 3.5, {"in": "list"}],
    "empty_list": [],
    "map": {"nested": {"deep": [True, False]}, "n": 7},
    "empty_map": {},
}


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/state.db")


@pytest.fixture
def context() -> RunContext:
    return RunContext(models=ModelClient(offline=True))


def test_event_types() -> None:
    assert TASK_RUN_EVENT_TYPES == (
        "google.cloud.firestore.document.v1.created",
        "google.cloud.firestore.document.v1.written",
    )


def test_headers_are_an_eventarc_binary_mode_event() -> None:
    headers, _ = build_document_event("proj", "(default)", PATH, {"status": Status.PENDING})
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == "//firestore.googleapis.com/projects/proj/databases/(default)"
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.written"
    assert headers["ce-subject"] == f"documents/{PATH}"
    assert headers["ce-document"] == PATH
    assert headers["ce-project"] == "proj"
    assert headers["ce-database"] == "(default)"
    assert headers["ce-namespace"] == "(default)"
    assert headers["content-type"] == "application/protobuf"
    assert headers["ce-time"].endswith("Z")
    other, _ = build_document_event("proj", "(default)", PATH, {})
    assert headers["ce-id"] and other["ce-id"] != headers["ce-id"]


def test_cloudevents_sdk_reads_the_event_as_functions_framework_does() -> None:
    headers, body = build_document_event("proj", "db", PATH, {"status": Status.PENDING})
    event = from_http(headers, body)
    assert event["type"] == "google.cloud.firestore.document.v1.written"
    assert event["document"] == PATH
    assert event["datacontenttype"] == "application/protobuf"
    assert event.data == body


def test_round_trip_of_every_value_type() -> None:
    _, body = build_document_event("proj", "db", PATH, EVERY_TYPE)
    event = decode_document_event(body)
    assert event.path == PATH
    assert not event.deleted
    assert event.old_fields is None
    assert event.fields == EVERY_TYPE
    # Equal is not enough: True == 1 and 0 == 0.0 in Python, not in Firestore.
    assert type(event.fields["yes"]) is bool
    assert type(event.fields["int"]) is int
    assert type(event.fields["float_zero"]) is float


def test_body_holds_typed_firestore_values() -> None:
    _, body = build_document_event("proj", "db", PATH, EVERY_TYPE)
    data = DocumentEventData.deserialize(body)
    assert data.value.name == f"projects/proj/databases/db/documents/{PATH}"
    fields = data.value.fields
    assert fields["int"].integer_value == 42
    assert fields["float_zero"].double_value == 0.0
    assert fields["yes"].boolean_value is True
    assert fields["text"].string_value == "héllo 火🔥"
    assert fields["map"].map_value.fields["n"].integer_value == 7
    assert [v.string_value for v in fields["list"].array_value.values][1] == "two"
    assert "old_value" not in data


def test_values_firestore_cannot_hold_are_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        build_document_event("p", "d", PATH, {"bad": {1, 2}})
    with pytest.raises(ValueError, match="64-bit"):
        build_document_event("p", "d", PATH, {"big": 2**63})


def test_decoding_a_deleted_document() -> None:
    _, body = build_document_event("p", "d", PATH, None, old_doc={"status": Status.SUCCEEDED})
    event = decode_document_event(body)
    assert event.deleted
    assert event.path == PATH
    assert event.fields == {}
    assert event.old_fields == {"status": Status.SUCCEEDED}


def test_decoding_an_update_keeps_both_snapshots() -> None:
    _, body = build_document_event(
        "p", "d", PATH, {"status": Status.RUNNING}, old_doc={"status": Status.PENDING}
    )
    event = decode_document_event(body)
    assert not event.deleted
    assert event.fields == {"status": Status.RUNNING}
    assert event.old_fields == {"status": Status.PENDING}


def test_decoding_garbage_fails_clearly() -> None:
    with pytest.raises(ValueError, match="DocumentEventData"):
        decode_document_event(b"\xff\xff\xff")
    with pytest.raises(ValueError, match="names no document"):
        decode_document_event(b"")


# google-cloudevents' testdata/google/events/cloud/firestore/v1/DocumentEventData-complex.json:
# a created document in the JSON encoding, every value type, an empty oldValue.
COMPLEX_JSON = """{
  "oldValue": {},
  "updateMask": {},
  "value": {
    "createTime": "2020-04-23T14:25:05.349632Z",
    "fields": {
      "arrayValue": {"arrayValue": {"values": [{"integerValue": "1"}, {"integerValue": "2"}]}},
      "booleanValue": {"booleanValue": true},
      "doubleValue": {"doubleValue": 5.5},
      "geoPointValue": {"geoPointValue": {"latitude": 51.4543, "longitude": -0.9781}},
      "intValue": {"integerValue": "50"},
      "mapValue": {"mapValue": {"fields": {
        "field1": {"stringValue": "x"},
        "field2": {"arrayValue": {"values": [{"stringValue": "x"}, {"integerValue": "1"}]}}
      }}},
      "nullValue": {"nullValue": null},
      "referenceValue": {
        "referenceValue": "projects/project-id/databases/(default)/documents/foo/bar/baz/qux"
      },
      "stringValue": {"stringValue": "text"},
      "timestampValue": {"timestampValue": "2020-04-23T14:23:53.241Z"}
    },
    "name": "projects/project-id/databases/(default)/documents/gcf-test/IH75dRdeYJKd4uuQiqch",
    "updateTime": "2020-04-23T14:25:05.349632Z"
  }
}"""


def test_decoding_the_json_encoding_of_every_value_type() -> None:
    expected = {
        "arrayValue": [1, 2],
        "booleanValue": True,
        "doubleValue": 5.5,
        "geoPointValue": {"latitude": 51.4543, "longitude": -0.9781},
        "intValue": 50,
        "mapValue": {"field1": "x", "field2": ["x", 1]},
        "nullValue": None,
        "referenceValue": "projects/project-id/databases/(default)/documents/foo/bar/baz/qux",
        "stringValue": "text",
        "timestampValue": "2020-04-23T14:23:53.241Z",
    }
    # As the CloudEvents SDK hands it over (parsed), as bytes and as text.
    for data, content_type in (
        (json.loads(COMPLEX_JSON), "application/json"),
        (COMPLEX_JSON.encode(), "application/json; charset=utf-8"),
        (COMPLEX_JSON.encode(), ""),
        (COMPLEX_JSON, ""),
    ):
        event = decode_document_event(data, content_type)
        assert event.path == "gcf-test/IH75dRdeYJKd4uuQiqch"
        assert event.fields == expected
        assert type(event.fields["intValue"]) is int
        assert not event.deleted
        assert event.old_fields is None  # "oldValue": {} names no document


def test_json_and_protobuf_encodings_decode_alike() -> None:
    doc = {k: v for k, v in EVERY_TYPE.items() if k != "empty_map"}
    old = {"status": Status.PENDING, "attempt": 0}
    _, body = build_document_event("proj", "(default)", PATH, doc, old_doc=old)
    data = events_json.event_data("proj", PATH, doc, old)
    from_json = decode_document_event(data, "application/json")
    assert from_json == decode_document_event(body, "application/protobuf")
    assert from_json.fields == doc
    assert from_json.old_fields == old
    deleted = decode_document_event(events_json.event_data("proj", PATH, None, old))
    assert deleted.deleted and deleted.path == PATH


@pytest.mark.parametrize(
    ("data", "content_type", "reason"),
    [
        (None, "", "has no data"),
        (b"", "application/protobuf", "names no document"),
        (b"\x0a\xff\xff", "application/protobuf", "protobuf"),
        (b"{not json", "application/json", "JSON"),
        (b"\xff\xfe", "application/json", "JSON"),
        ("[1, 2]", "", "JSON list"),
        ([1, 2], "application/json", "list"),
        ({"value": {"fields": {"n": {"integerValue": "x"}}}}, "application/json", "integerValue"),
        ({"value": {"name": "no-documents-segment"}}, "application/json", "document name"),
        ({"value": {}}, "application/json", "names no document"),
        ({"something": "else"}, "application/json", "names no document"),
    ],
    ids=[
        "none",
        "empty",
        "bad_protobuf",
        "bad_json",
        "not_utf8",
        "json_list_text",
        "json_list",
        "bad_integer",
        "bad_name",
        "empty_value",
        "other_json",
    ],
)
def test_undecodable_data_is_a_value_error_saying_why(
    data: Any, content_type: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_document_event(data, content_type)


def test_protobuf_is_never_taken_for_json() -> None:
    # A body whose first field is 123 bytes long starts with "\n{", which looks like JSON text
    # after a newline; the lengths below run through 123 whatever the timestamps' sizes.
    ambiguous = 0
    for length in range(1, 30):
        path = docs.task_run_path("R" * length, "draft")
        _, body = build_document_event("p", "d", path, {"status": Status.PENDING})
        ambiguous += body.startswith(b"\n{")
        assert decode_document_event(body).path == path
        assert decode_document_event(body, "application/protobuf").path == path
    assert ambiguous >= 1


def test_every_firestore_document_event_type_is_known() -> None:
    assert set(TASK_RUN_EVENT_TYPES) <= set(DOCUMENT_EVENT_TYPES)
    assert "google.cloud.firestore.document.v1.written.withAuthContext" in DOCUMENT_EVENT_TYPES
    assert len(DOCUMENT_EVENT_TYPES) == 8


@pytest.mark.parametrize(
    ("data", "event_type", "reason"),
    [
        (b"\xff\xff\xff", "", "DocumentEventData"),
        (b"{", "", "JSON"),
        (
            events_json.event_data("p", PATH, {"status": Status.PENDING}),
            "google.cloud.pubsub.topic.v1.messagePublished",
            "not a Firestore document event",
        ),
        (events_json.event_data("p", "job_runs/R1", {"status": Status.PENDING}), "", "not a task"),
        (
            events_json.event_data("p", docs.step_run_path("R1", "draft", 0), {"status": 1}),
            "",
            "not a task run",
        ),
    ],
    ids=["garbage", "bad_json", "wrong_type", "job_run", "step_run"],
)
def test_deliveries_that_can_never_succeed_are_discarded(
    store: Store, context: RunContext, data: Any, event_type: str, reason: str
) -> None:
    outcome = asyncio.run(
        handle_document_event(data, store, context, event_type=event_type or DOCUMENT_CREATED)
    )
    assert outcome.action == "discarded"
    assert reason in outcome.detail


def test_a_json_event_runs_the_task(store: Store, context: RunContext) -> None:
    job = _two_task_job()
    run_id = submit_job(store, job, run_id="R-json")
    path = docs.task_run_path(run_id, job.tasks[0].task_id)
    doc = store.get(path)
    assert doc is not None
    data = events_json.event_data("p", path, doc)
    outcome = asyncio.run(
        handle_document_event(
            data, store, context, event_type=DOCUMENT_CREATED, content_type="application/json"
        )
    )
    assert outcome.action == "succeeded"


def _handle(data: bytes, store: Store, context: RunContext) -> tuple[str, str]:
    outcome = asyncio.run(handle_document_event(data, store, context))
    return outcome.action, outcome.detail


@pytest.mark.parametrize(
    ("path", "doc", "old_doc", "detail"),
    [
        (PATH, {"status": Status.SUCCEEDED}, None, "succeeded"),
        (PATH, {"status": Status.SKIPPED}, None, "skipped"),
        (PATH, None, {"status": Status.PENDING}, "deleted"),
        (
            PATH,
            {"status": Status.RUNNING, "lease_expires_at": time.time() + 600},
            None,
            "live lease",
        ),
    ],
    ids=["succeeded", "skipped", "deleted", "leased"],
)
def test_deliveries_with_nothing_to_run_are_noops(
    store: Store,
    context: RunContext,
    path: str,
    doc: dict[str, Any] | None,
    old_doc: dict[str, Any] | None,
    detail: str,
) -> None:
    _, body = build_document_event("p", "(default)", path, doc, old_doc=old_doc)
    action, text = _handle(body, store, context)
    assert action == "noop"
    assert detail in text


def _two_task_job() -> config_pb2.JobConfig:
    job = load(REPO_ROOT / "examples" / "sample_job_config.json", config_pb2.JobConfig)
    del job.tasks[2:]
    job.tasks[1].ClearField("next_task")
    Validator().check_job(job)
    return job


def test_a_job_runs_hop_by_hop_through_events(store: Store, context: RunContext) -> None:
    job = _two_task_job()
    run_id = submit_job(store, job, run_id="R-events")
    first, second = (task.task_id for task in job.tasks)

    start_doc = store.get(docs.task_run_path(run_id, first))
    assert start_doc is not None and start_doc["status"] == Status.PENDING
    _, start_event = build_document_event(
        "p", "(default)", docs.task_run_path(run_id, first), start_doc
    )
    assert _handle(start_event, store, context)[0] == "succeeded"
    # The same event again (a redelivery): the task is finished, nothing runs twice.
    assert _handle(start_event, store, context)[0] == "noop"

    next_doc = store.get(docs.task_run_path(run_id, second))
    assert next_doc is not None and next_doc["status"] == Status.PENDING
    _, next_event = build_document_event(
        "p", "(default)", docs.task_run_path(run_id, second), next_doc, DOCUMENT_CREATED
    )
    assert _handle(next_event, store, context)[0] == "succeeded"

    record = read_job_run(store, run_id)
    assert record is not None
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [t.status for t in record.tasks] == [run_pb2.RUN_STATUS_SUCCEEDED] * 2
    assert [len(t.steps) for t in record.tasks] == [1, 1]

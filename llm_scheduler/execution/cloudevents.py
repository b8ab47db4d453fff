"""Firestore document events as CloudEvents: building, decoding and handling them.

Eventarc delivers a Firestore trigger to a Cloud Function as a binary-mode CloudEvent: the
attributes travel as ``ce-*`` headers and the body is a ``DocumentEventData``
(``google.events.cloud.firestore.v1``), whose documents hold typed Firestore values. The body is
a serialized protobuf (``application/protobuf``, what ``gcloud functions deploy`` sets up) or
the same message in the proto3 JSON mapping (``application/json``, the default of a trigger made
with ``gcloud eventarc triggers create``): ``{"value": {"name": ..., "fields": {"status":
{"stringValue": "..."}, "attempt": {"integerValue": "1"}, ...}}, "oldValue": {...}}``.
`decode_document_event` reads both.

`build_document_event` produces the protobuf form, so the local dispatcher can POST real events
to a functions-framework server (`cloudevent_sender`), and `handle_document_event` is what the
deployed function does with one: decode it, and hand a runnable task run to `handle_task_run`.
An event that can never succeed (an unknown type, a body that does not decode, a document that is
not a task run) is answered with a ``discarded`` outcome rather than an exception: with retries
on, an exception makes the platform deliver the same event again, for days.

The protobuf types come from the ``google-events`` package (the ``cloud`` extra), imported
lazily so the in-process engine does not need it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import MissingDependencyError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Sender
from llm_scheduler.execution.documents import RUNNABLE, Status
from llm_scheduler.execution.protocol import Outcome, handle_task_run
from llm_scheduler.store.base import Doc, Store

__all__ = [
    "DOCUMENT_CREATED",
    "DOCUMENT_EVENT_TYPES",
    "DOCUMENT_WRITTEN",
    "TASK_RUN_EVENT_TYPES",
    "DocumentEvent",
    "build_document_event",
    "cloudevent_sender",
    "decode_document_event",
    "handle_document_event",
]

DOCUMENT_CREATED = "google.cloud.firestore.document.v1.created"
DOCUMENT_WRITTEN = "google.cloud.firestore.document.v1.written"
# Event types a task-run trigger may use. `written` is the one to deploy: handoffs put a task
# back to PENDING with an update, which `created` would never deliver.
TASK_RUN_EVENT_TYPES = (DOCUMENT_CREATED, DOCUMENT_WRITTEN)
# Every Firestore (native mode) document event type; any of them can be decoded.
DOCUMENT_EVENT_TYPES = tuple(
    f"google.cloud.firestore.document.v1.{change}{suffix}"
    for change in ("created", "updated", "deleted", "written")
    for suffix in ("", ".withAuthContext")
)

DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/"
    "firestore/v1/data.proto"
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclasses.dataclass(frozen=True)
class DocumentEvent:
    """A decoded Firestore document event.

    Attributes:
        path: The document path relative to ``documents/`` (``job_runs/R/task_runs/T``).
        fields: The document after the write, as plain Python values (timestamps as RFC 3339
            strings); empty when the document was deleted.
        deleted: Whether the write deleted the document (only the old snapshot is set).
        old_fields: The document before the write, when the event carries it.
    """

    path: str
    fields: Doc
    deleted: bool = False
    old_fields: Doc | None = None


def _event_data_type() -> Any:
    """The raw protobuf class of ``DocumentEventData`` (proto-plus wrappers are not needed)."""
    try:
        from google.events.cloud.firestore_v1.types import data
    except ImportError:
        raise MissingDependencyError(
            "google-events", "cloud", "encoding and decoding Firestore events"
        ) from None
    return data.DocumentEventData.pb()


def document_name(project: str, database: str, path: str) -> str:
    """The full resource name of a document."""
    return f"projects/{project}/databases/{database}/documents/{path}"


def build_document_event(
    project: str,
    database: str,
    path: str,
    doc: Doc | None,
    event_type: str = DOCUMENT_WRITTEN,
    *,
    old_doc: Doc | None = None,
    location: str = "",
    namespace: str = "(default)",
) -> tuple[dict[str, str], bytes]:
    """A Firestore document event as Eventarc delivers it (binary content mode).

    Args:
        project: The Google Cloud project.
        database: The Firestore database id, e.g. ``(default)``.
        path: The document path (``job_runs/R/task_runs/T``).
        doc: The document after the write (JSON-compatible values); None for a deletion.
        event_type: The CloudEvent type, one of the ``google.cloud.firestore.document.v1.*``.
        old_doc: The document before the write, for updates and deletions.
        location: The database location (``ce-location``), left out when empty.
        namespace: The namespace (``ce-namespace``), left out when empty.

    Returns:
        The HTTP headers and the body (a serialized ``DocumentEventData``). Both snapshots'
        create and update times are the event time: the caller does not know the real ones.

    Raises:
        TypeError: A value is not JSON-compatible.
        ValueError: An integer does not fit Firestore's 64 bits.
        MissingDependencyError: ``google-events`` is not installed.
    """
    if doc is None and old_doc is None:
        raise ValueError("an event needs the document after the write, before it, or both")
    now = datetime.datetime.now(datetime.UTC)
    event = _event_data_type()()
    name = document_name(project, database, path)
    for snapshot, document in ((doc, event.value), (old_doc, event.old_value)):
        if snapshot is None:
            continue
        document.name = name
        document.create_time.FromDatetime(now)
        document.update_time.FromDatetime(now)
        for key, value in snapshot.items():
            _set_value(document.fields[key], value)
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/{database}",
        "ce-type": event_type,
        "ce-subject": f"documents/{path}",
        "ce-time": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "ce-dataschema": DATA_SCHEMA,
        "ce-project": project,
        "ce-database": database,
        "ce-document": path,
        "content-type": "application/protobuf",
    }
    if location:
        headers["ce-location"] = location
    if namespace:
        headers["ce-namespace"] = namespace
    body: bytes = event.SerializeToString()
    return headers, body


def decode_document_event(data: object, content_type: str = "") -> DocumentEvent:
    """Decodes the data of a Firestore document event, protobuf or JSON.

    Args:
        data: The event data as the CloudEvents SDK hands it over: bytes (a serialized
            ``DocumentEventData``, or JSON text), or an already parsed JSON object (the SDK
            parses every body that is JSON). A str is read as JSON text.
        content_type: The event's ``datacontenttype``; bytes are read as JSON when it names
            JSON, or when it is empty and they start with ``{``, and as protobuf otherwise.

    Raises:
        ValueError: The data is not a document event naming a document; the message says why.
        MissingDependencyError: ``google-events`` is not installed.
    """
    event = _event_data_type()()
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        # Sniff only the first byte: no DocumentEventData starts with "{" (field 15, which it
        # does not have), while leading whitespace would be ambiguous ("\n" is field 1's tag).
        if "json" in content_type.lower() or (not content_type and raw[:1] == b"{"):
            _parse_json(_json_object(raw), event)
        else:
            _parse_protobuf(raw, event)
    elif isinstance(data, str):
        _parse_json(_json_object(data), event)
    elif isinstance(data, Mapping):
        _parse_json(data, event)
    elif data is None:
        raise ValueError("the event has no data: expected a Firestore DocumentEventData")
    else:
        raise ValueError(
            f"the event data is a JSON {type(data).__name__}, not a Firestore DocumentEventData"
        )
    # The JSON form of a created document may carry an empty "oldValue": {}; a document
    # without a name is no document.
    has_value = event.HasField("value") and bool(event.value.name)
    has_old = event.HasField("old_value") and bool(event.old_value.name)
    if not has_value and not has_old:
        raise ValueError("not a Firestore document event: it names no document")
    name = event.value.name if has_value else event.old_value.name
    _, sep, path = name.partition("/documents/")
    if not sep or not path:
        raise ValueError(f"not a Firestore document event: document name {name!r}")
    return DocumentEvent(
        path=path,
        fields=_fields(event.value.fields) if has_value else {},
        deleted=has_old and not has_value,
        old_fields=_fields(event.old_value.fields) if has_old else None,
    )


def _parse_protobuf(raw: bytes, event: Any) -> None:
    from google.protobuf.message import DecodeError

    try:
        event.ParseFromString(raw)
    except DecodeError as error:
        raise ValueError(f"not a protobuf Firestore DocumentEventData: {error}") from None


def _json_object(text: bytes | str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not a JSON Firestore DocumentEventData: {error}") from None
    if not isinstance(value, Mapping):
        raise ValueError(f"not a JSON Firestore DocumentEventData: a JSON {type(value).__name__}")
    return value


def _parse_json(value: Mapping[str, Any], event: Any) -> None:
    from google.protobuf import json_format

    try:
        # Unknown fields are ignored: newer events may carry fields this version does not know.
        json_format.ParseDict(dict(value), event, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise ValueError(f"not a JSON Firestore DocumentEventData: {error}") from None


async def handle_document_event(
    data: object,
    store: Store,
    context: RunContext,
    *,
    event_type: str = "",
    content_type: str = "",
    deadline: float | None = None,
    worker_id: str = "",
    clock: Callable[[], float] = time.time,
) -> Outcome:
    """What the task-run trigger does with one delivery: run the task run it names, if runnable.

    A written trigger also fires for the claim and for every lease renewal; those snapshots are
    RUNNING under a live lease, so they are answered from the event alone without a store read.
    Redeliveries and stale snapshots are safe: `handle_task_run` claims in a transaction.

    A delivery that can never succeed is answered with a ``discarded`` outcome whose detail says
    why: an event type that is not a Firestore document event, data that does not decode, a
    document that is not a task run (the trigger's path pattern is wrong). Other failures (the
    store unreachable) raise, so that the platform delivers the event again.

    Args:
        data: The event data (see `decode_document_event`).
        store: Where the run lives.
        context: Models and functions for the steps.
        event_type: The CloudEvent ``type``; not checked when empty.
        content_type: The CloudEvent ``datacontenttype``.
        deadline: `time.monotonic()` value by which the invocation must return.
        worker_id: The lease owner to record; a new one by default.
        clock: Wall-clock time, for leases.
    """
    if event_type and event_type not in DOCUMENT_EVENT_TYPES:
        return Outcome("discarded", f"not a Firestore document event: type {event_type!r}")
    try:
        event = decode_document_event(data, content_type)
    except ValueError as error:
        return Outcome("discarded", str(error))
    parsed = docs.parse_task_run_path(event.path)
    if parsed is None:
        return Outcome(
            "discarded",
            f"not a task run: {event.path} (the trigger's path pattern must be "
            "job_runs/{run_id}/task_runs/{task_id})",
        )
    if event.deleted:
        return Outcome("noop", f"task run deleted: {event.path}")
    status = event.fields.get("status")
    if status not in RUNNABLE:
        return Outcome("noop", f"task run is {docs.status_name(status)}")
    if status == Status.RUNNING and _number(event.fields.get("lease_expires_at")) > clock():
        return Outcome("noop", "task run is running under a live lease")
    run_id, task_id = parsed
    return await handle_task_run(
        store, run_id, task_id, context, worker_id=worker_id, deadline=deadline, clock=clock
    )


def _number(value: Any) -> float:
    # A lease time the event cannot vouch for counts as expired: the claim re-reads the store.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0


def cloudevent_sender(
    target_url: str,
    *,
    project: str = "local",
    database: str = "(default)",
    timeout: float = 600.0,
    failure_delay: float = 1.0,
) -> Sender:
    """A dispatcher `Sender` that POSTs each task run as a Firestore CloudEvent to a function.

    Failures are reported, not raised: the task run stays runnable, so the dispatcher sends it
    again. ``failure_delay`` paces those retries while the function is down.

    Args:
        target_url: The function's URL (e.g. a local functions-framework server).
        project: The project named in the event.
        database: The database named in the event.
        timeout: Seconds to wait for the function's response (it runs the task first).
        failure_delay: Seconds to wait before reporting a failed POST.
    """

    def post(path: str, doc: Doc) -> Outcome:
        headers, body = build_document_event(project, database, path, doc)
        request = urllib.request.Request(target_url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Outcome("posted", f"HTTP {response.status}")
        except urllib.error.HTTPError as error:
            with error:
                detail = error.read(300).decode("utf-8", errors="replace").strip()
            return Outcome("post_failed", f"HTTP {error.code}: {detail}")
        except (OSError, ValueError) as error:
            return Outcome("post_failed", f"{type(error).__name__}: {error}")

    async def send(path: str, doc: Doc) -> Outcome:
        outcome = await asyncio.to_thread(post, path, doc)
        if outcome.action == "post_failed" and failure_delay > 0:
            await asyncio.sleep(failure_delay)
        return outcome

    return send


def _set_value(target: Any, value: Any) -> None:
    # bool before int: a bool is an int in Python but a distinct type in Firestore.
    if value is None:
        target.null_value = 0
    elif isinstance(value, bool):
        target.boolean_value = value
    elif isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} does not fit Firestore's 64-bit integers")
        target.integer_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, list | tuple):
        target.array_value.SetInParent()
        for item in value:
            _set_value(target.array_value.values.add(), item)
    elif isinstance(value, Mapping):
        target.map_value.SetInParent()
        for key, item in value.items():
            _set_value(target.map_value.fields[str(key)], item)
    else:
        raise TypeError(f"cannot store a {type(value).__name__} in a Firestore document")


def _fields(fields: Any) -> Doc:
    return {key: _python_value(value) for key, value in fields.items()}


def _python_value(value: Any) -> Any:
    kind = value.WhichOneof("value_type")
    if kind is None or kind == "null_value":
        return None
    if kind == "array_value":
        return [_python_value(item) for item in value.array_value.values]
    if kind == "map_value":
        return _fields(value.map_value.fields)
    if kind == "timestamp_value":
        return value.timestamp_value.ToJsonString()
    if kind == "geo_point_value":
        point = value.geo_point_value
        return {"latitude": point.latitude, "longitude": point.longitude}
    return getattr(value, kind)

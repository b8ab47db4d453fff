"""Firestore document events in the JSON encoding, written out by hand.

What a trigger with ``application/json`` event data delivers: ``DocumentEventData`` in the
proto3 JSON mapping (camelCase names, typed values, 64-bit integers as strings), as in
google-cloudevents' ``testdata/google/events/cloud/firestore/v1/DocumentEventData-*.json``.
Built without the package's own encoder, so tests of the decoder do not check it against itself.
"""

from __future__ import annotations

import uuid
from typing import Any


def firestore_value(value: Any) -> dict[str, Any]:
    """A Firestore ``Value`` in the proto3 JSON mapping."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [firestore_value(item) for item in value]}}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: firestore_value(v) for k, v in value.items()}}}
    raise TypeError(type(value).__name__)


def document(project: str, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A Firestore ``Document`` in the proto3 JSON mapping."""
    return {
        "name": f"projects/{project}/databases/(default)/documents/{path}",
        "fields": {key: firestore_value(value) for key, value in doc.items()},
        "createTime": "2020-04-23T09:58:53.211035Z",
        "updateTime": "2020-04-23T12:00:27.247187Z",
    }


def event_data(
    project: str, path: str, doc: dict[str, Any] | None, old_doc: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``DocumentEventData`` in the proto3 JSON mapping (a created document: empty oldValue)."""
    data: dict[str, Any] = {"oldValue": {}, "updateMask": {}}
    if doc is not None:
        data["value"] = document(project, path, doc)
    if old_doc is not None:
        data["oldValue"] = document(project, path, old_doc)
    return data


def binary_headers(
    path: str,
    *,
    event_type: str = "google.cloud.firestore.document.v1.written",
    content_type: str = "application/json",
    project: str = "local",
) -> dict[str, str]:
    """Binary-mode CloudEvent headers as Eventarc sends them for a Firestore event."""
    return {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
        "ce-type": event_type,
        "ce-subject": f"documents/{path}",
        "ce-time": "2020-04-23T12:00:27.247187Z",
        "ce-document": path,
        "ce-database": "(default)",
        "ce-project": project,
        "content-type": content_type,
    }


def structured_event(
    path: str,
    *,
    data: Any = None,
    data_base64: str | None = None,
    event_type: str = "google.cloud.firestore.document.v1.written",
    content_type: str = "application/json",
    project: str = "local",
) -> dict[str, Any]:
    """A structured-mode CloudEvent (``application/cloudevents+json``) for a Firestore event."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
        "type": event_type,
        "subject": f"documents/{path}",
        "document": path,
        "datacontenttype": content_type,
    }
    if data_base64 is not None:
        event["data_base64"] = data_base64
    else:
        event["data"] = data
    return event

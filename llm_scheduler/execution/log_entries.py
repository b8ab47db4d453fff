"""Structured log entries for Cloud Logging: one JSON object per line on stdout.

Cloud Run functions turn each line a process writes to stdout into a log entry, and a line that
is a JSON object into a structured one: Cloud Logging reads its ``severity`` and ``message``,
and its ``logging.googleapis.com/labels`` (string values) become the entry's labels, which the
Logs Explorer filters on (``labels.run_id="..."``). The other fields land in ``jsonPayload``.

An entry must reach stdout as one whole line. ``print`` writes the text and the newline in two
calls, so two threads logging at once could put two entries on one line, which then parses as
neither. `write_entry` writes each line in one call, under a lock, and flushes it.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from typing import Any, TextIO

from llm_scheduler.execution import documents as docs

__all__ = [
    "LABELS_FIELD",
    "format_entry",
    "labels_for_path",
    "severity_of",
    "write_entry",
]

LABELS_FIELD = "logging.googleapis.com/labels"

# Cloud Logging severities by outcome action: what went wrong stands out, routine work does not.
_SEVERITIES = {
    "noop": "DEBUG",
    "succeeded": "INFO",
    "accepted": "INFO",
    "handed_off": "NOTICE",
    "lost_lease": "NOTICE",
    "cancelled": "NOTICE",
    "rejected": "WARNING",
    "discarded": "WARNING",
    "failed": "ERROR",
}

_lock = threading.Lock()


def severity_of(action: str) -> str:
    """The log severity of an outcome action (``INFO`` for an action it does not know)."""
    return _SEVERITIES.get(action, "INFO")


def labels_for_path(path: str) -> dict[str, str]:
    """The labels of a log entry about a document: run and task ids, or a run request's id."""
    parsed = docs.parse_task_run_path(path)
    if parsed is not None:
        return {"run_id": parsed[0], "task_id": parsed[1]}
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == "job_runs":
        return {"run_id": parts[1]}
    if len(parts) == 2 and parts[0] == "run_requests":
        return {"request_id": parts[1]}
    return {}


def format_entry(
    severity: str, message: str, *, labels: Mapping[str, str] | None = None, **fields: Any
) -> str:
    """One log entry as a line of JSON, newline included.

    Labels are also copied into the entry as top-level fields, so they show in ``jsonPayload``
    too (and wherever the labels are not read). Values that are not JSON are written as strings.
    """
    entry: dict[str, Any] = {"severity": severity, "message": message}
    if labels:
        entry.update(labels)
        entry[LABELS_FIELD] = {key: str(value) for key, value in labels.items()}
    entry.update(fields)
    return json.dumps(entry, ensure_ascii=False, default=str) + "\n"


def write_entry(
    severity: str,
    message: str,
    *,
    labels: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
    **fields: Any,
) -> None:
    """Writes one log entry as one line, whole, even while other threads write theirs.

    Args:
        severity: A Cloud Logging severity (``DEBUG``, ``INFO``, ``NOTICE``, ``WARNING``,
            ``ERROR``, ...).
        message: The entry's text.
        labels: Entry labels (``run_id``, ``task_id``, ...).
        stream: Where to write; ``sys.stdout`` at the time of the call by default.
        **fields: More fields of the entry.
    """
    line = format_entry(severity, message, labels=labels, **fields)
    with _lock:
        out = sys.stdout if stream is None else stream
        out.write(line)
        out.flush()

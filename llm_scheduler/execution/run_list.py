"""Listing job runs a page at a time, newest first, for a run list (web UI, CLI).

A page is one indexed query on the ``job_runs`` collection (`Store.page`), reading only the
fields a summary shows: never task runs, blobs, or a run's config and inputs. A run's totals
(tokens, cost, task counts) are those its job-run document gets when the run finishes, so they
are 0 while it runs. The cursor is the position after a page's last run, ``(created_at, run
id)``, so paging stays as fast on the hundredth page as on the first, and runs created while
someone pages never shift the pages after them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import json
from typing import Any

from llm_scheduler.errors import UserError
from llm_scheduler.store.base import Doc, Store, lock_free

__all__ = ["MAX_LIMIT", "STATUSES", "RunPage", "RunSummary", "list_runs"]

# The job-run statuses a list can be filtered on (short names of `RunStatus`).
STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")
MAX_LIMIT = 500
# An error in a summary is its first line, cut to this many characters.
MAX_ERROR_CHARS = 200

_COLLECTION = "job_runs"
_ORDER_BY = "created_at"
_STATUS_PREFIX = "RUN_STATUS_"
# What a summary reads of a job-run document (see `submit_job` and `completion`).
_FIELDS = (
    "job_id",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "usage",
    "cost_usd",
    "parent_run_id",
    "tasks_total",
    "tasks_succeeded",
    "tasks_failed",
    "error",
    "caller_run_id",
    "caller_task_run_id",
    "caller_step_index",
)


@dataclasses.dataclass(frozen=True)
class RunSummary:
    """One job run as a run list shows it, built from its job-run document alone.

    Attributes:
        run_id: The run.
        job_id: The job it runs.
        status: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``.
        created_at: When it was submitted (RFC 3339, UTC).
        started_at: When its start task was first claimed, or "".
        finished_at: When it finished, or "" (also after a resume, until it finishes again).
        duration_seconds: From start to finish; None until it has finished.
        input_tokens: Tokens in, once it has finished (0 before).
        output_tokens: Tokens out, once it has finished.
        cached_input_tokens: The part of ``input_tokens`` served from a prompt cache.
        cost_usd: Its cost, once it has finished.
        parent_run_id: The run it was derived from, or "".
        tasks_total: The tasks it can reach from its start task.
        tasks_succeeded: Tasks that succeeded, once it has finished.
        tasks_failed: Tasks that failed, once it has finished.
        error: The first line of its error, shortened, or "".
        caller_run_id: For the child run of a sub-job step: the run of that step, else "".
        caller_task_run_id: The task run of that step (``write~000002`` for a map item), or "".
        caller_step_index: The index of that step in its task (0 when no child).
    """

    run_id: str
    job_id: str
    status: str
    created_at: str
    started_at: str
    finished_at: str
    duration_seconds: float | None
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_usd: float
    parent_run_id: str
    tasks_total: int
    tasks_succeeded: int
    tasks_failed: int
    error: str
    caller_run_id: str = ""
    caller_task_run_id: str = ""
    caller_step_index: int = 0

    @classmethod
    def from_doc(cls, run_id: str, doc: Doc) -> RunSummary:
        """The summary of a job-run document (fields it lacks count as empty or 0)."""
        usage = doc.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        started = _text(doc.get("started_at"))
        finished = _text(doc.get("finished_at"))
        return cls(
            run_id=run_id,
            job_id=_text(doc.get("job_id")),
            status=_text(doc.get("status")).removeprefix(_STATUS_PREFIX),
            created_at=_text(doc.get("created_at")),
            started_at=started,
            finished_at=finished,
            duration_seconds=_duration(started, finished),
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cached_input_tokens=_int(usage.get("cached_input_tokens")),
            cost_usd=_float(doc.get("cost_usd")),
            parent_run_id=_text(doc.get("parent_run_id")),
            tasks_total=_int(doc.get("tasks_total")),
            tasks_succeeded=_int(doc.get("tasks_succeeded")),
            tasks_failed=_int(doc.get("tasks_failed")),
            error=_short_error(doc.get("error")),
            caller_run_id=_text(doc.get("caller_run_id")),
            caller_task_run_id=_text(doc.get("caller_task_run_id")),
            caller_step_index=_int(doc.get("caller_step_index")),
        )

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON object (field names as above)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunPage:
    """One page of a run list.

    Attributes:
        runs: The runs, newest first.
        next_cursor: Pass it to `list_runs` for the next page; "" when there is none.
    """

    runs: list[RunSummary]
    next_cursor: str

    def to_json(self) -> dict[str, Any]:
        """The page as a JSON object: ``{"runs": [...], "next_cursor": "..."}``."""
        return {"runs": [run.to_json() for run in self.runs], "next_cursor": self.next_cursor}


@lock_free
def list_runs(
    store: Store, *, job_id: str = "", status: str = "", limit: int = 50, cursor: str = ""
) -> RunPage:
    """A page of the job runs in ``store``, newest first (by ``created_at``, then run id).

    It only reads (`lock_free`): from async code, ``await store.call(functools.partial(
    list_runs, store, status="FAILED"))`` runs in place on SQLite.

    Args:
        store: The store.
        job_id: Only runs of this job; all jobs when empty.
        status: Only runs in this status (``FAILED``, ``failed`` or ``RUN_STATUS_FAILED``); any
            when empty.
        limit: At most this many runs, 1 to `MAX_LIMIT`.
        cursor: The ``next_cursor`` of the previous page; the first page when empty.

    Raises:
        UserError: ``limit`` is out of range, ``status`` is not a job-run status, or ``cursor``
            is not one this function made.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise UserError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    equals: dict[str, Any] = {}
    if job_id:
        equals["job_id"] = job_id
    if status:
        equals["status"] = _STATUS_PREFIX + _status_name(status)
    after = decode_cursor(cursor) if cursor else None
    # One more than asked: whether it comes back says whether there is a next page.
    found = store.page(
        _COLLECTION,
        equals=equals,
        order_by=_ORDER_BY,
        descending=True,
        limit=limit + 1,
        after=after,
        fields=_FIELDS,
    )
    runs = [RunSummary.from_doc(path.rsplit("/", 1)[1], doc) for path, doc in found[:limit]]
    next_cursor = ""
    if len(found) > limit:
        next_cursor = encode_cursor(runs[-1].created_at, runs[-1].run_id)
    return RunPage(runs=runs, next_cursor=next_cursor)


def encode_cursor(created_at: str, run_id: str) -> str:
    """The opaque, URL-safe cursor of the position after the run ``(created_at, run_id)``."""
    text = json.dumps([created_at, run_id], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The ``(created_at, run_id)`` of a cursor `encode_cursor` made.

    Raises:
        UserError: It is not one.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, binascii.Error):
        value = None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(part, str) and part for part in value)
    ):
        return value[0], value[1]
    raise UserError(
        f"invalid cursor {cursor[:40]!r}: pass the next_cursor of a previous page unchanged, "
        "or no cursor for the first page"
    )


def _status_name(status: str) -> str:
    name = status.strip().upper().removeprefix(_STATUS_PREFIX)
    if name not in STATUSES:
        raise UserError(f"unknown run status {status!r}: use one of {', '.join(STATUSES)}")
    return name


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    # int64 fields are strings in the proto JSON mapping ("usage": {"input_tokens": "12"}).
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _duration(started: str, finished: str) -> float | None:
    if not started or not finished:
        return None
    try:
        seconds = (_parse_time(finished) - _parse_time(started)).total_seconds()
    except ValueError:
        return None
    return max(seconds, 0.0)


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _short_error(error: Any) -> str:
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        return ""
    line = message.strip().split("\n", 1)[0]
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"

"""Trace context of a run: W3C ``traceparent`` values and span ids derived from run records.

A job run is one trace however many processes ran it. Spans that start in one process and end
in another (a job run, a task handed over at a deadline or retried after a crash) are never
live spans: each is built when its record finishes, by whichever process finishes it, with an
id every process derives alike from the run's ids. The trace id is the one of the
``traceparent`` stored with the run when it was submitted (the submitter's current span, e.g. a
web request's), else one derived from the run id.

This module imports no OpenTelemetry package (`current_traceparent` reads the API only when the
process has imported it already).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys

__all__ = [
    "TraceContext",
    "child_traceparent",
    "current_traceparent",
    "format_traceparent",
    "job_span_id",
    "parse_traceparent",
    "run_trace",
    "step_span_id",
    "task_span_id",
]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


@dataclasses.dataclass(frozen=True)
class TraceContext:
    """Where a run's spans go.

    Attributes:
        trace_id: The trace (128 bits, never 0).
        parent_span_id: The span the job span is a child of (a submitter's span), 0 for none.
        sampled: Whether the run's spans are recorded (the parent's decision, when there is one).
    """

    trace_id: int
    parent_span_id: int = 0
    sampled: bool = True


def _hash_id(bits: int, *parts: str) -> int:
    data = "\0".join(parts).encode("utf-8", "surrogatepass")
    value = int.from_bytes(hashlib.sha256(data).digest()[: bits // 8], "big")
    return value or 1  # 0 is the invalid id


def parse_traceparent(value: str) -> TraceContext | None:
    """A W3C ``traceparent`` (version 00) as a context; None when empty or malformed."""
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return TraceContext(trace_id, span_id, bool(int(match.group(3), 16) & 1))


def format_traceparent(trace_id: int, span_id: int, sampled: bool = True) -> str:
    """A W3C ``traceparent`` value."""
    return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}"


def run_trace(run_id: str, traceparent: str = "") -> TraceContext:
    """The trace of a run: its stored ``traceparent``'s, else one derived from its id."""
    parsed = parse_traceparent(traceparent) if traceparent else None
    if parsed is not None:
        return parsed
    return TraceContext(_hash_id(128, "trace", run_id))


def job_span_id(run_id: str) -> int:
    """The span id of a job run."""
    return _hash_id(64, "job", run_id)


def task_span_id(run_id: str, task_run_id: str) -> int:
    """The span id of a task run (a map's item is a task run: ``T~000003``)."""
    return _hash_id(64, "task", run_id, task_run_id)


def step_span_id(run_id: str, task_run_id: str, index: int, attempt: int) -> int:
    """The span id of a step as run by one attempt of its task run.

    A step run again after a crash (its first result never persisted) was called twice: two
    spans, one per attempt.
    """
    return _hash_id(64, "step", run_id, task_run_id, str(index), str(attempt))


def child_traceparent(caller_run_id: str, caller_traceparent: str, caller_task_run_id: str) -> str:
    """The ``traceparent`` of a sub-job step's child run: in its caller's trace, under its task."""
    trace = run_trace(caller_run_id, caller_traceparent)
    parent = task_span_id(caller_run_id, caller_task_run_id)
    return format_traceparent(trace.trace_id, parent, trace.sampled)


def current_traceparent() -> str:
    """The ``traceparent`` of this thread's current OpenTelemetry span; empty when none.

    A job submitted while a span is current (a web request's, traced by the application) joins
    its trace. Without one, a valid ``TRACEPARENT`` environment variable (as CI systems and
    ``otel-cli`` pass a trace to a command) is the context. Nothing is imported: a process that
    never imported OpenTelemetry has no span.
    """
    api = sys.modules.get("opentelemetry.trace")
    if api is not None:
        context = api.get_current_span().get_span_context()
        if context.is_valid:
            return format_traceparent(
                context.trace_id, context.span_id, context.trace_flags.sampled
            )
    inherited = os.environ.get("TRACEPARENT", "")
    return inherited.strip().lower() if parse_traceparent(inherited) is not None else ""

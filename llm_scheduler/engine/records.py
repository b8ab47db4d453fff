"""Small helpers that fill run records (timestamps, errors, usage)."""

from __future__ import annotations

import time

from google.protobuf import timestamp_pb2

from llm_scheduler.errors import ProviderError
from llm_scheduler.models.base import Usage
from llm_scheduler.v1 import run_pb2

__all__ = ["add_usage", "error_info", "now", "stamp", "usage_of"]


def now() -> timestamp_pb2.Timestamp:
    """The current time as a protobuf timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def stamp(timestamp: timestamp_pb2.Timestamp) -> None:
    """Sets a record's timestamp field to the current time, in place."""
    nanos = time.time_ns()
    timestamp.seconds = nanos // 1_000_000_000
    timestamp.nanos = nanos % 1_000_000_000


def error_info(error: BaseException) -> run_pb2.ErrorInfo:
    """Describes an exception for a run record (never includes credentials)."""
    info = run_pb2.ErrorInfo(type=type(error).__name__, message=str(error))
    if isinstance(error, ProviderError):
        info.retryable = error.retryable
        info.http_status = error.status or 0
    return info


def usage_of(usage: Usage) -> run_pb2.TokenUsage:
    """Converts model usage to its record."""
    return run_pb2.TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_input_tokens=usage.cache_write_input_tokens,
    )


def add_usage(total: run_pb2.TokenUsage, part: run_pb2.TokenUsage) -> None:
    """Adds ``part`` into ``total``."""
    total.input_tokens += part.input_tokens
    total.output_tokens += part.output_tokens
    total.cached_input_tokens += part.cached_input_tokens
    total.cache_write_input_tokens += part.cache_write_input_tokens

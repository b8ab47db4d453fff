"""Finished spans built from run records, with the OpenTelemetry GenAI conventions for model calls.

A span here is never started live: it is a `ReadableSpan` with explicit ids (`ids`), parent and
start and end times taken from the record, handed to a span processor once the record is
final. Needs the ``otel`` extra.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import timestamp_pb2
from opentelemetry import trace as trace_api
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.telemetry.ids import TraceContext
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "PROVIDER_NAMES",
    "SpanFactory",
    "operation_name",
    "provider_name",
    "step_attributes",
]

# Our provider names as the GenAI conventions' `gen_ai.provider.name` values.
PROVIDER_NAMES = {"google": "gcp.gemini", "gemini": "gcp.gemini"}
# Parameters recorded as `gen_ai.request.*`: ours (and the providers' spellings) to theirs.
_REQUEST_PARAMETERS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "seed": "gen_ai.request.seed",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
}
_OK = trace_api.Status(trace_api.StatusCode.UNSET)
_FLAGS_SAMPLED = trace_api.TraceFlags(trace_api.TraceFlags.SAMPLED)
_FLAGS_NOT_SAMPLED = trace_api.TraceFlags(trace_api.TraceFlags.DEFAULT)
Attributes = dict[str, AttributeValue]


def provider_name(provider: str) -> str:
    """The GenAI ``gen_ai.provider.name`` of one of our provider names."""
    return PROVIDER_NAMES.get(provider, provider)


def operation_name(record: run_pb2.StepRun) -> str:
    """The GenAI ``gen_ai.operation.name`` of a step: chat, embeddings or execute_tool."""
    step_type = record.step_type
    if step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
        return "chat"
    if step_type == config_pb2.STEP_TYPE_EMBEDDING:
        return "embeddings"
    if step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        return "execute_tool"
    return "invoke_workflow"  # a sub-job step runs a job


def _nanos(stamp: timestamp_pb2.Timestamp, default: int) -> int:
    nanos = stamp.seconds * 1_000_000_000 + stamp.nanos
    return nanos if nanos > 0 else default


def _status(record_status: int, error: run_pb2.ErrorInfo) -> trace_api.Status:
    if record_status == run_pb2.RUN_STATUS_FAILED:
        return trace_api.Status(trace_api.StatusCode.ERROR, error.message or None)
    return _OK


def step_attributes(record: run_pb2.StepRun, run_id: str, task_run_id: str) -> Attributes:
    """A step span's attributes: GenAI ones for model calls, ``llm_scheduler.*`` for ours."""
    operation = operation_name(record)
    attributes: Attributes = {
        "gen_ai.operation.name": operation,
        "llm_scheduler.run.id": run_id,
        "llm_scheduler.task_run.id": task_run_id,
        "llm_scheduler.step.index": record.index,
        "llm_scheduler.step.status": _status_name(record.status),
    }
    if record.step_id:
        attributes["llm_scheduler.step.id"] = record.step_id
    if record.name:
        attributes["llm_scheduler.step.name"] = record.name
    if record.model_key:
        attributes["llm_scheduler.model_key"] = record.model_key
        attributes["gen_ai.provider.name"] = provider_name(record.provider)
        attributes["gen_ai.request.model"] = record.provider_model
        if record.status == run_pb2.RUN_STATUS_SUCCEEDED:
            attributes["gen_ai.response.model"] = record.provider_model
        usage = record.usage
        attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if usage.cached_input_tokens:
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_input_tokens
        if usage.cache_write_input_tokens:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_input_tokens
        attributes["llm_scheduler.cost_usd"] = record.cost_usd
        attributes["llm_scheduler.cache_hit"] = record.cache_hit
        if record.parameters.fields:
            for name, value in struct_to_dict(record.parameters).items():
                key = _REQUEST_PARAMETERS.get(name)
                if key is not None and isinstance(value, int | float) and value is not True:
                    attributes[key] = value
        if record.step_type == config_pb2.STEP_TYPE_EMBEDDING and record.embedding:
            attributes["gen_ai.embeddings.dimension.count"] = len(record.embedding)
    if record.function_name:
        attributes["gen_ai.tool.name"] = record.function_name
        attributes["gen_ai.tool.type"] = "function"
    if record.attempts:
        attributes["llm_scheduler.attempts"] = record.attempts
    if record.reused_from_run_id:
        attributes["llm_scheduler.reused_from_run_id"] = record.reused_from_run_id
    if record.child_run_id:
        attributes["llm_scheduler.child_run.id"] = record.child_run_id
    if record.status == run_pb2.RUN_STATUS_FAILED:
        attributes["error.type"] = record.error.type or "_OTHER"
        if record.error.http_status:
            attributes["http.response.status_code"] = record.error.http_status
    return attributes


def _status_name(status: int) -> str:
    return run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower()


def _text_messages(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


def _content_event(record: run_pb2.StepRun, time: int) -> Event | None:
    """The prompts and response of a step (`gen_ai.client.inference.operation.details`)."""
    attributes: Attributes = {}
    step_type = record.step_type
    if step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
        if record.system_prompt:
            attributes["gen_ai.system_instructions"] = json.dumps(
                [{"type": "text", "content": record.system_prompt}]
            )
        attributes["gen_ai.input.messages"] = _text_messages("user", record.user_prompt)
        if record.status == run_pb2.RUN_STATUS_SUCCEEDED:
            attributes["gen_ai.output.messages"] = _text_messages("assistant", record.response_text)
    elif step_type == config_pb2.STEP_TYPE_EMBEDDING:
        attributes["gen_ai.input.messages"] = _text_messages("user", record.embedding_input)
    elif step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        attributes["gen_ai.tool.call.arguments"] = _json(record.function_request)
        if record.status == run_pb2.RUN_STATUS_SUCCEEDED:
            attributes["gen_ai.tool.call.result"] = _json(record.function_response)
    if not attributes:
        return None
    return Event("gen_ai.client.inference.operation.details", attributes, time)


def _json(value: Any) -> str:
    from google.protobuf import json_format

    return json.dumps(json_format.MessageToDict(value), ensure_ascii=False)


class SpanFactory:
    """Builds the finished spans of one process (its resource and instrumentation scope).

    Args:
        resource: The process's resource (service name, instance, pid).
        capture_content: Whether step spans carry the prompts and responses as an event.
    """

    def __init__(self, resource: Resource, *, capture_content: bool = False) -> None:
        from llm_scheduler.telemetry import SCOPE_NAME, SCOPE_VERSION

        self.resource = resource
        self.capture_content = capture_content
        self.scope = InstrumentationScope(SCOPE_NAME, SCOPE_VERSION)

    def _span(
        self,
        name: str,
        trace: TraceContext,
        span_id: int,
        parent_id: int,
        kind: trace_api.SpanKind,
        attributes: Attributes,
        start: int,
        end: int,
        status: trace_api.Status = _OK,
        events: tuple[Event, ...] = (),
    ) -> ReadableSpan:
        flags = _FLAGS_SAMPLED if trace.sampled else _FLAGS_NOT_SAMPLED
        context = trace_api.SpanContext(trace.trace_id, span_id, False, flags)
        parent = (
            trace_api.SpanContext(trace.trace_id, parent_id, False, flags) if parent_id else None
        )
        return ReadableSpan(
            name=name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            events=events,
            kind=kind,
            status=status,
            start_time=start,
            end_time=max(end, start),
            instrumentation_scope=self.scope,
        )

    def step_span(
        self,
        record: run_pb2.StepRun,
        trace: TraceContext,
        span_id: int,
        parent_id: int,
        run_id: str,
        task_run_id: str,
    ) -> ReadableSpan:
        """A step's span: ``chat {model}``, ``embeddings {model}``, ``execute_tool {function}``."""
        start = _nanos(record.started_at, 1)
        end = _nanos(record.finished_at, start)
        operation = operation_name(record)
        attributes = step_attributes(record, run_id, task_run_id)
        if record.model_key:
            name = f"{operation} {record.provider_model or record.model_key}"
        elif record.function_name:
            name = f"{operation} {record.function_name}"
        else:
            name = f"{operation} {record.child_run_id or record.name or record.index}"
        events: list[Event] = []
        for attempt in range(2, record.attempts + 1):  # the record has no time per attempt
            events.append(Event("llm_scheduler.retry", {"llm_scheduler.attempt": attempt}, start))
        if record.cache_hit:
            events.append(Event("llm_scheduler.cache_hit", {}, start))
        if record.status == run_pb2.RUN_STATUS_FAILED:
            events.append(
                Event(
                    "exception",
                    {
                        "exception.type": record.error.type or "_OTHER",
                        "exception.message": record.error.message,
                    },
                    end,
                )
            )
        if self.capture_content:
            content = _content_event(record, end)
            if content is not None:
                events.append(content)
        kind = trace_api.SpanKind.CLIENT if record.model_key else trace_api.SpanKind.INTERNAL
        return self._span(
            name,
            trace,
            span_id,
            parent_id,
            kind,
            attributes,
            start,
            end,
            _status(record.status, record.error),
            tuple(events),
        )

    def task_span(
        self,
        record: run_pb2.TaskRun,
        trace: TraceContext,
        span_id: int,
        parent_id: int,
        run_id: str,
    ) -> ReadableSpan:
        """A task run's span, ``task {task_id}`` (a map's item: ``task {task_id}[{index}]``)."""
        start = _nanos(record.started_at, 1)
        end = _nanos(record.finished_at, start)
        task_run_id = record.task_run_id or record.task_id
        attributes: Attributes = {
            "llm_scheduler.run.id": run_id,
            "llm_scheduler.task.id": record.task_id,
            "llm_scheduler.task_run.id": task_run_id,
            "llm_scheduler.task.status": _status_name(record.status),
            "llm_scheduler.task.attempt": record.attempt,
            **_usage_attributes(record.usage, record.cost_usd),
        }
        name = f"task {record.task_id}"
        if task_run_id != record.task_id:
            name = f"task {task_run_id}"
            attributes["llm_scheduler.task.item_index"] = record.item_index
        if record.variation:
            attributes["llm_scheduler.task.variation"] = record.variation
        if record.items_total:
            attributes["llm_scheduler.task.items_total"] = record.items_total
        if record.status == run_pb2.RUN_STATUS_FAILED:
            attributes["error.type"] = record.error.type or "_OTHER"
        return self._span(
            name,
            trace,
            span_id,
            parent_id,
            trace_api.SpanKind.INTERNAL,
            attributes,
            start,
            end,
            _status(record.status, record.error),
        )

    def job_span(
        self,
        record: run_pb2.JobRun,
        trace: TraceContext,
        span_id: int,
        extra: Mapping[str, AttributeValue] | None = None,
    ) -> ReadableSpan:
        """A job run's span, ``invoke_workflow {job_id}``.

        The root of the run's trace, or the child of the submitter's span.
        """
        start = _nanos(record.started_at, 1)
        end = _nanos(record.finished_at, start)
        attributes: Attributes = {
            "gen_ai.operation.name": "invoke_workflow",
            "gen_ai.workflow.name": record.job_id,
            "llm_scheduler.run.id": record.run_id,
            "llm_scheduler.job.id": record.job_id,
            "llm_scheduler.run.status": _status_name(record.status),
            **_usage_attributes(record.usage, record.cost_usd),
        }
        if record.parent_run_id:
            attributes["llm_scheduler.parent_run.id"] = record.parent_run_id
        if record.caller_run_id:
            attributes["llm_scheduler.caller_run.id"] = record.caller_run_id
        if record.status == run_pb2.RUN_STATUS_FAILED:
            attributes["error.type"] = record.error.type or "_OTHER"
        attributes.update(extra or {})
        return self._span(
            f"invoke_workflow {record.job_id or record.run_id}",
            trace,
            span_id,
            trace.parent_span_id,
            trace_api.SpanKind.INTERNAL,
            attributes,
            start,
            end,
            _status(record.status, record.error),
        )


def _usage_attributes(usage: run_pb2.TokenUsage, cost_usd: float) -> Attributes:
    attributes: Attributes = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_input_tokens,
        "llm_scheduler.cost_usd": cost_usd,
    }
    if usage.cache_write_input_tokens:
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_input_tokens
    return attributes

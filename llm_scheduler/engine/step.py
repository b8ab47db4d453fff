"""Running one step: render its templates, call the model or function, compute its outputs."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.parameters import coerce_parameters
from llm_scheduler.config.structs import struct_to_dict, to_struct, to_value, value_to_python
from llm_scheduler.config.template import Template, format_value
from llm_scheduler.engine import records
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.values import compute_outputs, render_request
from llm_scheduler.errors import ProviderError
from llm_scheduler.models.base import ModelRequest, ResponseFormatSpec
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["StepResult", "run_step"]

_FORMATS: dict[int, Any] = {
    config_pb2.ResponseFormat.TYPE_TEXT: "text",
    config_pb2.ResponseFormat.TYPE_JSON: "json",
    config_pb2.ResponseFormat.TYPE_JSON_SCHEMA: "json_schema",
}


@dataclasses.dataclass(frozen=True)
class StepResult:
    """A finished step.

    Attributes:
        record: The step's run record (status SUCCEEDED or FAILED).
        outputs: The step's outputs (empty when it failed).
        response: The response: the text of a model query, the value a function returned.
    """

    record: run_pb2.StepRun
    outputs: dict[str, Any]
    response: Any

    @property
    def ok(self) -> bool:
        """Whether the step succeeded."""
        return self.record.status == run_pb2.RUN_STATUS_SUCCEEDED


async def run_step(
    step: config_pb2.StepConfig,
    variables: Mapping[str, Any],
    context: RunContext,
    *,
    index: int = 0,
    task_id: str = "",
    step_count: int = 1,
) -> StepResult:
    """Runs one step with the given variables; failures are recorded, not raised.

    Args:
        step: The step config (validated).
        variables: The variables visible to the step; its ``input_config`` fills in defaults.
        context: Models, functions and the progress listener.
        index: The step's position in its task.
        task_id: The task's id, for progress events.
        step_count: The number of steps in the task, for progress events.
    """
    record = run_pb2.StepRun(
        step_id=step.id,
        index=index,
        name=step.name,
        step_type=step.step_type,
        status=run_pb2.RUN_STATUS_RUNNING,
        started_at=records.now(),
    )
    label = step.name or step.id or f"step {index + 1}"
    context.emit(EngineEvent(EventKind.STEP_STARTED, task_id, index, step_count, label))
    scope = {**dataflow.payload(step.input_config), **variables}
    used = set(dataflow.payload(step.input_config))
    for _, template in dataflow.step_templates(step):
        used |= template.names
    record.inputs.CopyFrom(to_struct({k: scope[k] for k in sorted(used) if k in scope}))
    started = time.perf_counter()
    try:
        if step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
            response = await _call_function(step, scope, record, context)
        else:
            response = await _query_model(step, scope, record, context)
        passthrough = set(dataflow.payload(step.input_config))
        outputs = compute_outputs(step.output_config, scope, response, passthrough)
        record.outputs.CopyFrom(to_struct(outputs))
    except Exception as error:  # every failure is recorded in the run
        record.status = run_pb2.RUN_STATUS_FAILED
        record.error.CopyFrom(records.error_info(error))
        if isinstance(error, ProviderError):
            record.attempts = error.attempts
        record.latency_seconds = time.perf_counter() - started
        record.finished_at.CopyFrom(records.now())
        detail = f"{type(error).__name__}: {error}"
        context.emit(EngineEvent(EventKind.STEP_FAILED, task_id, index, step_count, label, detail))
        return StepResult(record=record, outputs={}, response=None)
    record.status = run_pb2.RUN_STATUS_SUCCEEDED
    record.latency_seconds = time.perf_counter() - started
    record.finished_at.CopyFrom(records.now())
    detail = f"{record.latency_seconds:.2f}s"
    context.emit(EngineEvent(EventKind.STEP_FINISHED, task_id, index, step_count, label, detail))
    return StepResult(record=record, outputs=outputs, response=response)


async def _query_model(
    step: config_pb2.StepConfig,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> str:
    query = step.model_query_config
    record.model_key = query.model_key
    spec = context.models.resolve(query.model_key)
    record.provider = spec.provider
    record.provider_model = spec.model
    raw = struct_to_dict(query.parameters) if query.HasField("parameters") else {}
    parameters, _ = coerce_parameters(raw, "parameters")  # validation reported any problems
    record.parameters.CopyFrom(to_struct(parameters))
    record.response_format.CopyFrom(query.response_format)
    record.system_prompt = Template.parse(query.system_prompt).render(scope)
    record.user_prompt = Template.parse(query.user_prompt).render(scope)
    response_format = query.response_format
    request = ModelRequest(
        model=spec.model,
        system_prompt=record.system_prompt,
        user_prompt=record.user_prompt,
        parameters=parameters,
        response_format=ResponseFormatSpec(
            kind=_FORMATS.get(response_format.type, "text"),
            json_schema=struct_to_dict(response_format.json_schema)
            if response_format.HasField("json_schema")
            else None,
            schema_name=response_format.schema_name or "response",
        ),
    )
    call = await context.models.generate(query.model_key, request)
    record.provider_model = call.response.model or spec.model
    record.response_text = call.response.text
    record.usage.CopyFrom(records.usage_of(call.response.usage))
    record.cost_usd = call.cost_usd
    record.attempts = call.attempts
    return call.response.text


async def _call_function(
    step: config_pb2.StepConfig,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> Any:
    function = step.function_call_config
    record.function_name = function.function_name
    raw = value_to_python(function.request) if function.HasField("request") else {}
    request = render_request(raw, scope)
    record.function_request.CopyFrom(to_value(request))
    record.attempts = 1
    result = await context.functions.call(function.function_name, request)
    record.function_response.CopyFrom(to_value(result))
    record.response_text = format_value(result)
    return result

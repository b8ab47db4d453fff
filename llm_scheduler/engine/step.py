"""Running one step: render its templates, call the model or function, compute its outputs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config.structs import fill_struct, to_value
from llm_scheduler.config.template import format_value
from llm_scheduler.engine import records
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.fingerprint import (
    call_fingerprint,
    embedding_fingerprint,
    embedding_request_key,
    query_fingerprint,
    request_key,
    step_digests,
)
from llm_scheduler.engine.plans import EmbeddingPlan, QueryPlan, StepPlan, step_plan
from llm_scheduler.engine.replay import Reuse
from llm_scheduler.engine.sub_job import ChildPending, run_sub_job, sub_job_inputs
from llm_scheduler.engine.values import apply_outputs, render_request
from llm_scheduler.errors import ProviderError, RunError
from llm_scheduler.models.base import EmbeddingRequest, ModelRequest, Usage
from llm_scheduler.models.registry import ModelSpec
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["StepResult", "prepare_request", "run_step"]


@dataclasses.dataclass(frozen=True)
class StepResult:
    """A finished step.

    Attributes:
        record: The step's run record (status SUCCEEDED or FAILED).
        outputs: The step's outputs (empty when it failed).
        response: The response: the text of a model query, the value a function returned,
            the vector (a list of numbers) of an embedding.
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
    run_id: str = "",
    task_run_id: str = "",
    record: run_pb2.StepRun | None = None,
) -> StepResult:
    """Runs one step with the given variables; failures are recorded, not raised.

    Args:
        step: The step config (validated).
        variables: The variables visible to the step; its ``input_config`` fills in defaults.
            Read, never modified.
        context: Models, functions and the progress listener.
        index: The step's position in its task.
        task_id: The task's id, for progress events.
        step_count: The number of steps in the task, for progress events.
        run_id: The job run, for progress events (and a sub-job's child run id).
        task_run_id: The task run holding the step, for a sub-job's child run id; ``task_id``
            by default.
        record: An empty record to fill in place (e.g. ``task_run.steps.add()``, which saves
            copying it into the task's record); a new one by default.
    """
    plan = step_plan(step)
    if record is None:
        record = run_pb2.StepRun()
    record.step_id = step.id
    record.index = index
    record.name = step.name
    record.step_type = step.step_type
    record.status = run_pb2.RUN_STATUS_RUNNING
    records.stamp(record.started_at)
    label = plan.label or f"step {index + 1}"

    def emit(kind: EventKind, detail: str = "", **extra: Any) -> None:
        if context.on_event is not None:  # events are only built for a listener
            context.emit(
                EngineEvent(kind, task_id, index, step_count, label, detail, run_id, **extra)
            )

    emit(EventKind.STEP_STARTED)
    # Defaults under the variables; without defaults the variables are only read, not copied.
    scope = {**plan.fresh_defaults(), **variables} if plan.defaults else variables
    fill_struct(record.inputs, {k: scope[k] for k in plan.used if k in scope})
    started = time.perf_counter()
    try:
        request = prepare_request(step, plan, scope, record, context)
        reuse = context.replay.take(record.fingerprint) if context.replay else None
        response: Any
        if plan.kind == "sub_job":  # the child replays its own steps
            response = await run_sub_job(
                step,
                request,
                record,
                context,
                run_id=run_id,
                task_run_id=task_run_id or task_id,
                step_index=index,
            )
            outputs = apply_outputs(plan.outputs, scope, response, plan.defaults)
        elif reuse is not None:
            _reuse(record, reuse, context)
            response = reuse.response
            if reuse.outputs_edited and not reuse.response_edited:
                outputs = reuse.outputs
            else:
                outputs = apply_outputs(plan.outputs, scope, response, plan.defaults)
            emit(EventKind.STEP_REUSED, f"from run {record.reused_from_run_id}")
        else:
            if plan.query is not None:
                response = await _query_model(step, request, record, context)
            elif plan.embedding is not None:
                response = await _embed(step, request, record, context)
            else:
                response = await _call_function(step, request, record, context)
            if record.cache_hit:
                emit(EventKind.CACHE_HIT)
            outputs = apply_outputs(plan.outputs, scope, response, plan.defaults)
        fill_struct(record.outputs, outputs)
        record.response_digest, record.outputs_digest = step_digests(response, outputs)
    except ChildPending:
        raise  # not a failure: the step's task waits for its child run in the store
    except Exception as error:  # every failure is recorded in the run
        record.ClearField("outputs")  # a value that is not JSON may have left some behind
        record.status = run_pb2.RUN_STATUS_FAILED
        record.error.CopyFrom(records.error_info(error))
        if isinstance(error, ProviderError):
            record.attempts = error.attempts
        record.latency_seconds = time.perf_counter() - started
        records.stamp(record.finished_at)
        emit(EventKind.STEP_FAILED, f"{type(error).__name__}: {error}")
        return StepResult(record=record, outputs={}, response=None)
    record.status = run_pb2.RUN_STATUS_SUCCEEDED
    record.latency_seconds = time.perf_counter() - started
    records.stamp(record.finished_at)
    if context.on_event is not None:
        usage = record.usage
        emit(
            EventKind.STEP_FINISHED,
            f"{record.latency_seconds:.2f}s",
            usage=Usage(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens),
            cost_usd=record.cost_usd,
        )
    return StepResult(record=record, outputs=outputs, response=response)


def prepare_request(
    step: config_pb2.StepConfig,
    plan: StepPlan,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> Any:
    """Renders a step's request into its record and sets the record's fingerprint.

    Nothing is called: this is what decides whether a replay reuses a recorded step.

    Returns:
        The `ModelRequest` of a model step, the `EmbeddingRequest` of an embedding step, the
        rendered request of a function step, or the child job's inputs of a sub-job step (which
        has no fingerprint: its child's steps have theirs).

    Raises:
        InterpolationError: A template names a missing variable or field.
        RunError: An embedding's input renders to an empty text.
        UserError: The model key cannot be resolved.
    """
    if plan.embedding is not None:
        embedding_request = _prepare_embedding(plan.embedding, scope, record, context)
        record.fingerprint = embedding_fingerprint(
            record.model_key, record.provider, embedding_request
        )
        return embedding_request
    if plan.kind == "sub_job":
        return sub_job_inputs(step, scope)
    if plan.query is None:
        request = _prepare_function(step, plan, scope, record)
        record.fingerprint = call_fingerprint(record.function_name, request)
        return request
    model_request = _prepare_query(step, plan.query, scope, record, context)
    record.fingerprint = query_fingerprint(
        record.model_key,
        record.provider,
        model_request,
        static_json=plan.query.static_json,
    )
    return model_request


def _reuse(record: run_pb2.StepRun, reuse: Reuse, context: RunContext) -> None:
    """Fills a step's record from a recorded step instead of calling anything."""
    recorded = reuse.record
    if record.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        record.response_text = format_value(reuse.response)
        record.function_response.CopyFrom(recorded.function_response)
    else:
        record.response_text = recorded.response_text
        record.embedding[:] = recorded.embedding
        record.provider_model = recorded.provider_model or record.provider_model
    assert context.replay is not None
    record.reused_from_run_id = recorded.reused_from_run_id or context.replay.run_id
    record.attempts = 0  # nothing was called; usage and cost stay with the original run


def _resolve_into(record: run_pb2.StepRun, model_key: str, context: RunContext) -> ModelSpec:
    """Resolves a step's model key and records the key, provider and provider model."""
    record.model_key = model_key
    spec = context.models.resolve(model_key)
    record.provider = spec.provider
    record.provider_model = spec.model
    return spec


def _prepare_query(
    step: config_pb2.StepConfig,
    query: QueryPlan,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> ModelRequest:
    spec = _resolve_into(record, query.model_key, context)
    record.parameters.CopyFrom(query.parameters_struct)
    record.response_format.CopyFrom(step.model_query_config.response_format)
    record.system_prompt = query.system.render(scope)
    record.user_prompt = query.user.render(scope)
    return ModelRequest(
        model=spec.model,
        system_prompt=record.system_prompt,
        user_prompt=record.user_prompt,
        parameters=dict(query.parameters),
        response_format=query.response_format,
        timeout_seconds=spec.timeout_seconds,
    )


def _prepare_embedding(
    embedding: EmbeddingPlan,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> EmbeddingRequest:
    spec = _resolve_into(record, embedding.model_key, context)
    record.parameters.CopyFrom(embedding.parameters_struct)
    record.embedding_input = embedding.input.render(scope)
    if not record.embedding_input.strip():
        # Every embeddings API refuses an empty text; say why before calling any.
        raise RunError(
            "the embedding input renders to an empty text; the variables it reads are empty"
        )
    return EmbeddingRequest(
        model=spec.model,
        input=record.embedding_input,
        dimensions=embedding.dimensions,
        timeout_seconds=spec.timeout_seconds,
    )


def _prepare_function(
    step: config_pb2.StepConfig, plan: StepPlan, scope: Mapping[str, Any], record: run_pb2.StepRun
) -> Any:
    record.function_name = step.function_call_config.function_name
    request = render_request(plan.request, scope)
    record.function_request.CopyFrom(to_value(request))
    return request


async def _query_model(
    step: config_pb2.StepConfig,
    request: ModelRequest,
    record: run_pb2.StepRun,
    context: RunContext,
) -> str:
    policy = context.cache_policy(step)
    key = request_key(record.provider, request) if policy != config_pb2.CACHE_POLICY_OFF else ""
    if policy == config_pb2.CACHE_POLICY_USE and context.cache is not None:
        cached = await asyncio.to_thread(context.cache.lookup, key)
        if cached is not None:
            record.cache_hit = True
            record.response_text = cached.text
            record.provider_model = cached.model or record.provider_model
            record.usage.CopyFrom(records.usage_of(cached.usage))
            record.attempts = 0  # no provider call, so no cost
            return cached.text
    call = await context.models.generate(record.model_key, request)
    response = call.response
    record.provider_model = response.model or record.provider_model
    record.response_text = response.text
    usage = record.usage
    usage.input_tokens = response.usage.input_tokens
    usage.output_tokens = response.usage.output_tokens
    usage.cached_input_tokens = response.usage.cached_input_tokens
    record.cost_usd = call.cost_usd
    record.attempts = call.attempts
    if policy != config_pb2.CACHE_POLICY_OFF and context.cache is not None:
        await asyncio.to_thread(context.cache.store, key, response)
    return response.text


async def _embed(
    step: config_pb2.StepConfig,
    request: EmbeddingRequest,
    record: run_pb2.StepRun,
    context: RunContext,
) -> list[float]:
    policy = context.cache_policy(step)
    key = (
        embedding_request_key(record.provider, request)
        if policy != config_pb2.CACHE_POLICY_OFF
        else ""
    )
    if policy == config_pb2.CACHE_POLICY_USE and context.cache is not None:
        cached = await asyncio.to_thread(context.cache.lookup_embedding, key)
        if cached is not None:
            record.cache_hit = True
            record.embedding[:] = cached.vector
            record.provider_model = cached.model or record.provider_model
            record.usage.CopyFrom(records.usage_of(cached.usage))
            record.attempts = 0  # no provider call, so no cost
            return list(cached.vector)
    call = await context.models.embed(record.model_key, request)
    response = call.response
    record.provider_model = response.model or record.provider_model
    record.embedding[:] = response.vector
    record.usage.CopyFrom(records.usage_of(response.usage))
    record.cost_usd = call.cost_usd
    record.attempts = call.attempts
    if policy != config_pb2.CACHE_POLICY_OFF and context.cache is not None:
        await asyncio.to_thread(context.cache.store_embedding, key, response)
    return list(response.vector)


async def _call_function(
    step: config_pb2.StepConfig,
    request: Any,
    record: run_pb2.StepRun,
    context: RunContext,
) -> Any:
    record.attempts = 1
    result = await context.functions.call(step.function_call_config.function_name, request)
    record.function_response.CopyFrom(to_value(result))
    record.response_text = format_value(result)
    return result

"""Running one step: render its templates, call the model or function, compute its outputs."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config.structs import fill_new_struct, set_value
from llm_scheduler.config.template import format_value
from llm_scheduler.engine import records
from llm_scheduler.engine.budget import plan_embedding, plan_query
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.fingerprint import (
    call_fingerprint,
    embedding_fingerprint,
    embedding_request_key,
    query_fingerprint_with_head,
    request_key,
    step_digests,
)
from llm_scheduler.engine.plans import EmbeddingPlan, QueryPlan, StepPlan, step_plan
from llm_scheduler.engine.renderers import format_text
from llm_scheduler.engine.replay import Reuse
from llm_scheduler.engine.sub_job import ChildPending, run_sub_job, sub_job_inputs
from llm_scheduler.engine.values import apply_outputs, render_request
from llm_scheduler.errors import ProviderError, RunError
from llm_scheduler.models.base import EmbeddingRequest, ModelRequest, ModelResponse, Usage
from llm_scheduler.models.registry import ModelSpec
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["StepResult", "prepare_request", "run_planned_step", "run_step"]


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
    if record is None:
        record = run_pb2.StepRun()
    outputs, response = await run_planned_step(
        step,
        step_plan(step),
        variables,
        context,
        record,
        index,
        task_id,
        step_count,
        run_id,
        task_run_id,
    )
    return StepResult(record=record, outputs=outputs, response=response)


async def run_planned_step(
    step: config_pb2.StepConfig,
    plan: StepPlan,
    variables: Mapping[str, Any],
    context: RunContext,
    record: run_pb2.StepRun,
    index: int,
    task_id: str,
    step_count: int,
    run_id: str,
    task_run_id: str,
) -> tuple[dict[str, Any], Any]:
    """`run_step` with the step's plan (`plans.step_plan`), for a task's step loop.

    Args:
        step: The step config (validated).
        plan: Its plan.
        variables: As for `run_step`.
        context: As for `run_step`.
        record: An empty record, filled in place; its status says whether the step succeeded.
        index: As for `run_step`.
        task_id: As for `run_step`.
        step_count: As for `run_step`.
        run_id: As for `run_step`.
        task_run_id: As for `run_step` ("" for ``task_id``).

    Returns:
        The step's outputs and response (``{}`` and None when it failed).
    """
    # This runs for every step of every run: it calls as little as it can (see
    # docs/benchmarks.md, "Where the time goes").
    if plan.record_head:  # its id, name and type; nothing to write when all are defaults
        record.MergeFromString(plan.record_head)
    record.index = index
    record.status = run_pb2.RUN_STATUS_RUNNING
    stamp = record.started_at
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
    if context.on_event is not None:  # events are only built for a listener
        _emit(context, EventKind.STEP_STARTED, plan, index, task_id, step_count, run_id)
    # Defaults under the variables; without defaults the variables are only read, not copied.
    scope = {**plan.fresh_defaults(), **variables} if plan.defaults else variables
    fill_new_struct(record.inputs, scope, plan.used)
    started = time.perf_counter()
    try:
        query = plan.query
        request: Any
        if query is not None:
            spec, request = _prepare_query(query, scope, record, context)
        elif plan.request is not None:  # its function name is in the record's head
            request = _prepare_function(plan, scope, record)
        else:
            request = prepare_request(step, plan, scope, record, context)
        reuse = context.replay.take(record.fingerprint) if context.replay is not None else None
        response: Any
        if query is None and plan.request is None and plan.embedding is None:
            # A sub-job: the child replays its own steps.
            response = await run_sub_job(
                step,
                request,
                record,
                context,
                run_id=run_id,
                task_run_id=task_run_id or task_id,
                step_index=index,
            )
            outputs = _outputs(plan, scope, response)
        elif reuse is not None:
            _reuse(record, reuse, context)
            response = reuse.response
            if reuse.outputs_edited and not reuse.response_edited:
                outputs = reuse.outputs
            else:
                outputs = _outputs(plan, scope, response)
            if context.on_event is not None:
                _emit(
                    context,
                    EventKind.STEP_REUSED,
                    plan,
                    index,
                    task_id,
                    step_count,
                    run_id,
                    f"from run {record.reused_from_run_id}",
                )
        else:
            if query is not None:
                if context.cache is None and context.budget is None:
                    # The model call without a cache's or a budget's layer.
                    answer, attempts = await context.models.send(query.model_key, request)
                    response = _record_response(record, spec, answer, attempts)
                else:
                    response = await _query_model(step, spec, request, record, context)
            elif plan.embedding is not None:
                response = await _embed(step, request, record, context)
            else:
                record.attempts = 1
                response = await context.functions.call(plan.function_name, request)
                kind = type(response)
                if kind is str:  # `set_value` and `format_text`, without the calls
                    record.function_response.string_value = response
                    record.response_text = response
                elif kind is int:
                    record.function_response.number_value = response
                    record.response_text = int.__repr__(response)
                else:
                    set_value(record, "function_response", response)
                    record.response_text = format_text(response)
            if context.on_event is not None and record.cache_hit:
                _emit(context, EventKind.CACHE_HIT, plan, index, task_id, step_count, run_id)
            names = plan.response_outputs
            outputs = (  # `_outputs`, without the call
                dict.fromkeys(names, response)
                if names is not None
                else apply_outputs(plan.outputs, scope, response, plan.defaults)
            )
        fill_new_struct(record.outputs, outputs)
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
        if context.on_event is not None:
            _emit(
                context,
                EventKind.STEP_FAILED,
                plan,
                index,
                task_id,
                step_count,
                run_id,
                f"{type(error).__name__}: {error}",
            )
        return {}, None
    record.status = run_pb2.RUN_STATUS_SUCCEEDED
    record.latency_seconds = time.perf_counter() - started
    stamp = record.finished_at
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
    if context.on_event is not None:
        usage = record.usage
        _emit(
            context,
            EventKind.STEP_FINISHED,
            plan,
            index,
            task_id,
            step_count,
            run_id,
            f"{record.latency_seconds:.2f}s",
            usage=Usage(
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.cache_write_input_tokens,
            ),
            cost_usd=record.cost_usd,
        )
    return outputs, response


def _emit(
    context: RunContext,
    kind: EventKind,
    plan: StepPlan,
    index: int,
    task_id: str,
    step_count: int,
    run_id: str,
    detail: str = "",
    **extra: Any,
) -> None:
    label = plan.label or f"step {index + 1}"
    context.emit(EngineEvent(kind, task_id, index, step_count, label, detail, run_id, **extra))


def _outputs(plan: StepPlan, scope: Mapping[str, Any], response: Any) -> dict[str, Any]:
    """The step's outputs (`values.apply_outputs`)."""
    names = plan.response_outputs
    if names is not None:  # every output is the response (the common case: no call)
        return dict.fromkeys(names, response)
    return apply_outputs(plan.outputs, scope, response, plan.defaults)


def _record_response(
    record: run_pb2.StepRun, spec: ModelSpec, response: ModelResponse, attempts: int
) -> str:
    """Records a model's response, usage, cost and attempts; returns its text."""
    if response.model and response.model != spec.model:  # else it is recorded already
        record.provider_model = response.model
    record.response_text = response.text
    counts = response.usage
    usage = record.usage
    usage.input_tokens = counts.input_tokens  # sets the field, even to 0
    usage.output_tokens = counts.output_tokens
    usage.cached_input_tokens = counts.cached_input_tokens
    usage.cache_write_input_tokens = counts.cache_write_input_tokens
    if spec.priced:  # else it costs 0.0
        record.cost_usd = spec.cost(
            counts.input_tokens,
            counts.output_tokens,
            counts.cached_input_tokens,
            cache_write_input_tokens=counts.cache_write_input_tokens,
        )
    record.attempts = attempts
    return response.text


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
    query = plan.query
    if query is not None:
        return _prepare_query(query, scope, record, context)[1]
    if plan.embedding is not None:
        embedding_request = _prepare_embedding(plan.embedding, scope, record, context)
        record.fingerprint = embedding_fingerprint(
            record.model_key, record.provider, embedding_request
        )
        return embedding_request
    if plan.request is None:
        return sub_job_inputs(step, scope)
    record.function_name = plan.function_name
    return _prepare_function(plan, scope, record)


def _prepare_function(plan: StepPlan, scope: Mapping[str, Any], record: run_pb2.StepRun) -> Any:
    """`prepare_request` of a function step, but for its ``function_name`` (the caller's)."""
    renderer = plan.request_renderer
    request = (
        renderer.render(scope) if renderer is not None else render_request(plan.request, scope)
    )
    if type(request) is str:  # `set_value`, without the call
        record.function_request.string_value = request
    else:
        set_value(record, "function_request", request)
    record.fingerprint = call_fingerprint(plan.function_name, request)
    return request


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
    query: QueryPlan,
    scope: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
) -> tuple[ModelSpec, ModelRequest]:
    """`prepare_request` of a model step; also returns the entry its key resolved to."""
    try:
        spec = context.models.resolve(query.model_key)
    except Exception:
        record.model_key = query.model_key  # the key that failed, as the record keeps it
        raise
    resolved = query.resolved(spec.provider, spec.model)
    # Key, provider, provider model, parameters and response format in one call.
    record.MergeFromString(resolved.record_fields)
    # Set one by one: a failing user prompt leaves the system prompt recorded.
    system_prompt = record.system_prompt = query.system_template.render(scope)
    user_prompt = record.user_prompt = query.user_template.render(scope)
    record.fingerprint = query_fingerprint_with_head(
        resolved.fingerprint_head, system_prompt, user_prompt
    )
    # Positional: a third cheaper than by keyword, for a frozen dataclass built every step.
    request = ModelRequest(
        spec.model,
        system_prompt,
        user_prompt,
        dict(query.parameters),
        query.response_format,
        spec.timeout_seconds,
    )
    return spec, request


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


async def _query_model(
    step: config_pb2.StepConfig,
    spec: ModelSpec,
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
    budget = context.budget
    if budget is None:
        call = await context.models.generate(record.model_key, request)
    else:  # reserved before the call, settled after it (see `engine.budget`)
        estimate = await budget.reserve(plan_query(record.model_key, spec, request))
        try:
            call = await context.models.generate(record.model_key, request)
        except Exception:
            await budget.settle(estimate, 0.0, 0)  # providers do not bill failed requests
            raise
    text = _record_response(record, call.spec, call.response, call.attempts)
    if budget is not None:
        usage = call.response.usage
        await budget.settle(estimate, record.cost_usd, usage.output_tokens, usage.input_tokens)
    if policy != config_pb2.CACHE_POLICY_OFF and context.cache is not None:
        await asyncio.to_thread(context.cache.store, key, call.response)
    return text


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
    budget = context.budget
    if budget is None:
        call = await context.models.embed(record.model_key, request)
    else:  # reserved before the call, settled after it (see `engine.budget`)
        spec = context.models.resolve(record.model_key)
        estimate = await budget.reserve(plan_embedding(record.model_key, spec, request))
        try:
            call = await context.models.embed(record.model_key, request)
        except Exception:
            await budget.settle(estimate, 0.0, 0)
            raise
        await budget.settle(estimate, call.cost_usd, 0, call.response.usage.input_tokens)
    response = call.response
    record.provider_model = response.model or record.provider_model
    record.embedding[:] = response.vector
    record.usage.CopyFrom(records.usage_of(response.usage))
    record.cost_usd = call.cost_usd
    record.attempts = call.attempts
    if policy != config_pb2.CACHE_POLICY_OFF and context.cache is not None:
        await asyncio.to_thread(context.cache.store_embedding, key, response)
    return list(response.vector)

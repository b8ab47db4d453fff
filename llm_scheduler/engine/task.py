"""Running one task: its steps in order, each seeing the outputs of the ones before."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config.structs import fill_struct
from llm_scheduler.engine import records
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.fingerprint import digest
from llm_scheduler.engine.items import Item
from llm_scheduler.engine.plans import TaskPlan, task_plan
from llm_scheduler.engine.step import run_planned_step
from llm_scheduler.engine.values import planned_task_outputs
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["begin_task_record", "run_task"]


async def run_task(
    task: config_pb2.TaskConfig,
    variables: Mapping[str, Any],
    context: RunContext,
    *,
    job_run_id: str = "",
    predecessors: Sequence[str] = (),
    record: run_pb2.TaskRun | None = None,
    item: Item | None = None,
    plan: TaskPlan | None = None,
) -> run_pb2.TaskRun:
    """Runs a task's steps in order; the first failing step fails the task.

    Args:
        task: The task config (validated).
        variables: The task's starting variables (see `values.task_variables`); the task's
            ``input_config`` supplies defaults for names they lack.
        context: Models, functions and the progress listener.
        job_run_id: The job run this task belongs to, if any.
        predecessors: The tasks whose outputs the task received.
        record: An empty record to fill in place (e.g. ``job_run.tasks.add()``, which saves
            copying it into the job's record); a new one by default.
        item: For one item of a map or strategy task (`engine.items`): its record's
            ``task_run_id``, ``item_index`` and ``variation`` are the item's, and the task
            reports its start and end (the item emits only its steps' events). Its own
            bindings are set over ``variables``, and only these are recorded as the item's
            inputs (the task's record holds the rest), so a map of N items does not record its
            list N times. ``task`` is then the config the item runs (`items.item_task`).
        plan: The task's plan (`plans.task_plan`), when the caller has it.

    Returns:
        The task's run record with every step's record; its outputs are set when it succeeded.
    """
    task_run_id = task.task_id if item is None else item.run_id
    if plan is None:
        plan = task_plan(task)
    run, scope = begin_task_record(
        task,
        task_run_id,
        variables,
        context,
        job_run_id,
        predecessors,
        record,
        item.inputs if item is not None else None,
        plan,
    )
    if item is not None:
        run.item_index = item.index
        run.variation = item.variation
    events = item is None
    if events and context.on_event is not None:
        context.emit(EngineEvent(EventKind.TASK_STARTED, task.task_id, name=task.name))
    label = task.task_id if item is None else item.label
    step_count = len(plan.steps)
    add = run.steps.add
    # Usage and cost are summed here and written once (the same additions, in the same order,
    # as adding each step's into the record).
    usage = run.usage
    input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    cached_input_tokens, cost_usd = usage.cached_input_tokens, run.cost_usd
    cache_write_input_tokens = usage.cache_write_input_tokens
    response: Any = None
    status = run_pb2.RUN_STATUS_SUCCEEDED
    ran = False
    try:
        for index, (step, step_plan) in enumerate(zip(task.steps, plan.steps, strict=True)):
            step_run = add()  # filled in place: records are not copied
            outputs, response = await run_planned_step(
                step,
                step_plan,
                scope,
                context,
                step_run,
                index,
                label,
                step_count,
                job_run_id,
                task_run_id,
            )
            if step_plan.request is None:  # a function step has no usage nor cost
                step_usage = step_run.usage
                input_tokens += step_usage.input_tokens
                output_tokens += step_usage.output_tokens
                cached_input_tokens += step_usage.cached_input_tokens
                cache_write_input_tokens += step_usage.cache_write_input_tokens
                cost_usd += step_run.cost_usd
            ran = True
            if step_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
                run.error.CopyFrom(step_run.error)
                status = run_pb2.RUN_STATUS_FAILED
                break
            scope.update(outputs)
    finally:
        if ran:
            usage.input_tokens = input_tokens
            usage.output_tokens = output_tokens
            usage.cached_input_tokens = cached_input_tokens
            usage.cache_write_input_tokens = cache_write_input_tokens
            run.cost_usd = cost_usd
    if status == run_pb2.RUN_STATUS_FAILED:
        return _finish(run, status, context, events=events)
    try:
        outputs = planned_task_outputs(plan, scope, response)
    except Exception as error:  # recorded in the run
        run.error.CopyFrom(records.error_info(error))
        return _finish(run, run_pb2.RUN_STATUS_FAILED, context)
    fill_struct(run.outputs, outputs)
    return _finish(run, run_pb2.RUN_STATUS_SUCCEEDED, context, events=events)


def _finish(
    run: run_pb2.TaskRun,
    status: run_pb2.RunStatus,
    context: RunContext,
    *,
    events: bool = True,
) -> run_pb2.TaskRun:
    run.status = status
    records.stamp(run.finished_at)
    if events and context.on_event is not None:
        detail = run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower()
        context.emit(EngineEvent(EventKind.TASK_FINISHED, run.task_id, detail=detail))
    return run


def begin_task_record(
    task: config_pb2.TaskConfig,
    task_run_id: str,
    variables: Mapping[str, Any],
    context: RunContext,
    job_run_id: str,
    predecessors: Sequence[str],
    record: run_pb2.TaskRun | None,
    item_inputs: Mapping[str, Any] | None = None,
    plan: TaskPlan | None = None,
) -> tuple[run_pb2.TaskRun, dict[str, Any]]:
    """A task's record, started (RUNNING, attempt 1, inputs recorded), and its scope.

    The scope is the task's defaults under ``variables`` (and a map item's ``item_inputs``),
    with any inputs a person edited for ``task_run_id`` in the replayed run over them. A map
    item records only its own inputs (edited ones included). ``plan`` is the task's plan
    (`plans.task_plan`), when the caller has it.
    """
    run = record if record is not None else run_pb2.TaskRun()
    run.task_run_id = task_run_id
    run.task_id = task.task_id
    run.job_run_id = job_run_id
    run.status = run_pb2.RUN_STATUS_RUNNING
    run.config.CopyFrom(task)
    run.predecessors[:] = list(predecessors)
    run.attempt = 1
    records.stamp(run.started_at)
    if plan is None:
        plan = task_plan(task)
    scope = {**plan.fresh_defaults(), **variables} if plan.defaults else dict(variables)
    own = dict(item_inputs) if item_inputs is not None else None
    if context.replay is not None:
        edited = context.replay.edited_task_inputs(task_run_id)
        if own is not None:
            own.update(edited)
        scope.update(edited)
    if own is not None:
        scope.update(own)
    recorded = own if own is not None else scope
    fill_struct(run.inputs, recorded)
    run.inputs_digest = digest(recorded)
    return run, scope

"""Running a sub-job step in process: the child job as one step, nested.

A sub-job step (step type 3, `SubJobConfig`) renders its ``inputs`` templates over the step's
variables, runs its child job with them through `job.run_job` with the parent run's context
(models, functions, limits, cache), and takes the child's outputs, ``{final_task_id: {name:
value}}``, as its response. The child is a run of its own with a deterministic id,
``{run_id}~{task_run_id}~{step_index}``, recorded in the parent job run's ``children``; the
step's record holds that id, and the child's usage and cost. A replay of the parent replays the
child against the child's recorded run, so only what an edit changes runs again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.template import Template, format_value
from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.errors import RunError
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "ChildPending",
    "ChildRequest",
    "ChildRunner",
    "SubJobError",
    "child_run_id",
    "run_sub_job",
    "sub_job_inputs",
    "sub_job_label",
]


class SubJobError(RunError):
    """A sub-job step's child run failed."""


class ChildPending(Exception):
    """The child run was started elsewhere and has not finished: the step's task must wait.

    Raised by a `ChildRunner` that does not run children in this process (an event-driven run:
    `llm_scheduler.execution.sub_job_runs`); `run_step` lets it through unrecorded.
    """

    def __init__(self, child_id: str) -> None:
        super().__init__(f"child run {child_id!r} has not finished")
        self.child_id = child_id


@dataclasses.dataclass(frozen=True)
class ChildRequest:
    """A sub-job step's child run, as a `ChildRunner` receives it.

    Attributes:
        job: The child job's config.
        inputs: Its inputs.
        run_id: Its deterministic run id (`child_run_id`).
        caller_run_id: The job run of the step.
        caller_task_run_id: The task run holding the step (a map item's ``T~000003``).
        caller_step_index: The step's index in its task.
        recorded: In a replay, the child's recorded run, whose unchanged steps are reused.
    """

    job: config_pb2.JobConfig
    inputs: Mapping[str, Any]
    run_id: str
    caller_run_id: str
    caller_task_run_id: str
    caller_step_index: int
    recorded: run_pb2.JobRun | None


# Runs (or finds) a child run and returns its record, or raises `ChildPending`.
ChildRunner = Callable[[ChildRequest, RunContext], Awaitable[run_pb2.JobRun]]


async def _run_nested(request: ChildRequest, context: RunContext) -> run_pb2.JobRun:
    """The default `ChildRunner`: the child runs here, nested in the step."""
    from llm_scheduler.engine.job import run_job  # the job runs tasks runs steps

    child_context = dataclasses.replace(
        context,
        replay=ReplaySource(request.recorded) if request.recorded is not None else None,
    )
    return await run_job(request.job, child_context, inputs=request.inputs, run_id=request.run_id)


def child_run_id(run_id: str, task_run_id: str, step_index: int) -> str:
    """The run id of the child of step ``step_index`` of task run ``task_run_id``.

    Deterministic, so a replay (or, later, a redelivered event) finds the same child.
    """
    return f"{run_id}~{task_run_id}~{step_index}"


def sub_job_label(step: config_pb2.StepConfig) -> str:
    """How errors name a sub-job: its step's name or id, its file, or its job's id."""
    config = step.sub_job_config
    return step.name or step.id or config.job_path or config.job.job_id or "sub-job"


def sub_job_inputs(step: config_pb2.StepConfig, scope: Mapping[str, Any]) -> dict[str, Any]:
    """The child job's inputs: each ``inputs`` template rendered over the step's variables.

    A template that is one placeholder passes the value as it is (a list stays a list).

    Raises:
        InterpolationError: A template names a missing variable or field.
    """
    return {
        name: Template.parse(source).render_value(scope)
        for name, source in sorted(step.sub_job_config.inputs.items())
    }


async def run_sub_job(
    step: config_pb2.StepConfig,
    inputs: Mapping[str, Any],
    record: run_pb2.StepRun,
    context: RunContext,
    *,
    run_id: str,
    task_run_id: str,
    step_index: int,
) -> dict[str, Any]:
    """Runs a sub-job step's child job; fills the step's record with the child's id and cost.

    The child's record goes to ``context.child_runs`` (the parent `run_job` puts it in its
    record's ``children``).

    Args:
        step: The sub-job step (validated: its child job is inline).
        inputs: The child job's inputs (`sub_job_inputs`).
        record: The step's record.
        context: The parent run's context.
        run_id: The parent job run's id.
        task_run_id: The task run holding the step (a map item's ``T~000003``).
        step_index: The step's index in its task.

    Returns:
        The child's outputs: ``{final_task_id: {output_name: value}}``.

    Raises:
        SubJobError: The child run failed (its error, prefixed with the sub-job's name).
    """
    from llm_scheduler.engine.job import new_run_id  # the job runs tasks runs steps

    job = step.sub_job_config.job
    child_id = child_run_id(run_id, task_run_id, step_index) if run_id else new_run_id(job.job_id)
    recorded = context.replay.child_run(task_run_id, step_index) if context.replay else None
    request = ChildRequest(job, inputs, child_id, run_id, task_run_id, step_index, recorded)
    runner = context.child_runner or _run_nested
    child = await runner(request, context)
    child.caller_run_id = run_id
    child.caller_task_run_id = task_run_id
    child.caller_step_index = step_index
    context.child_runs.append(child)
    record.child_run_id = child.run_id
    record.usage.CopyFrom(child.usage)
    record.cost_usd = child.cost_usd
    record.attempts = 0  # the child's steps made the calls
    if child.status != run_pb2.RUN_STATUS_SUCCEEDED:
        raise SubJobError(f"sub-job {sub_job_label(step)!r}: {child.error.message}")
    outputs = struct_to_dict(child.outputs)
    record.response_text = format_value(outputs)
    return outputs

"""How `config_reader` shows sub-job steps: the child job before a run, the child runs after.

Before a run, each sub-job step reads ``write.steps[0] child (sub-job child.json): section <-
%topic%``, then its child job's graph indented under it (its map tasks and sub-job steps too,
recursively). After one, each child run of a run (`run_pb2.JobRun.children`) is named with the
task run and step that ran it: ``write[2].steps[0] child``.
"""

from __future__ import annotations

from collections.abc import Iterable

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.sub_jobs import is_sub_job
from llm_scheduler.config_tools import map_view
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "INDENT",
    "caller_json",
    "caller_label",
    "describe_job",
    "describe_sub_job",
    "sub_jobs_preview",
]

# How much deeper a child's lines (its job's graph, its run's details) are indented than its
# step's (or its run's) line.
INDENT = "    "


def describe_sub_job(step: config_pb2.StepConfig) -> str:
    """Where a sub-job step's child comes from and what it is given, in a line.

    ``child.json: section <- %topic%``, or ``inline job 'child': ...`` for a child written in
    the step; ``(no inputs)`` when nothing is routed.
    """
    return f"{_source(step)}: {_routes(step)}"


def _source(step: config_pb2.StepConfig) -> str:
    config = step.sub_job_config
    return config.job_path or f"inline job {config.job.job_id!r}"


def _routes(step: config_pb2.StepConfig) -> str:
    inputs = step.sub_job_config.inputs
    return ", ".join(f"{name} <- {inputs[name]}" for name in sorted(inputs)) or "(no inputs)"


def describe_job(job: config_pb2.JobConfig) -> list[str]:
    """A job's graph, map tasks and sub-job steps (each child expanded, recursively) as lines.

    The first line is ``job 'child': 2 tasks, 2 steps``; the graph follows as
    `TaskGraph.render_text` draws it.
    """
    steps = sum(len(task.steps) for task in job.tasks)
    counts = {task.task_id: len(task.steps) for task in job.tasks}
    graph = TaskGraph.from_job(job).render_text(counts)
    lines = [f"job {job.job_id!r}: {_count(len(job.tasks), 'task')}, {_count(steps, 'step')}"]
    lines += graph.splitlines()
    # Both previews are "" or a block that starts with a line break.
    lines += map_view.maps_preview(job.tasks).splitlines()[1:]
    lines += sub_jobs_preview(job.tasks).splitlines()[1:]
    return lines


def sub_jobs_preview(tasks: Iterable[config_pb2.TaskConfig]) -> str:
    """A ``sub-job steps:`` block for a task or job description, each child expanded; or ``""``.

    One line per sub-job step (``write.steps[0] child (sub-job child.json): section <-
    %topic%``), then its child job (`describe_job`) indented under it.
    """
    lines: list[str] = []
    for task in tasks:
        for index, step in enumerate(task.steps):
            if not is_sub_job(step):
                continue
            name = f" {step.name or step.id}" if step.name or step.id else ""
            lines.append(
                f"  {task.task_id}.steps[{index}]{name} (sub-job {_source(step)}): {_routes(step)}"
            )
            lines += (f"  {INDENT}{line}" for line in describe_job(step.sub_job_config.job))
    return "\nsub-job steps:\n" + "\n".join(lines) if lines else ""


def caller_label(parent: run_pb2.JobRun, child: run_pb2.JobRun) -> str:
    """The task run and step of ``parent`` that ran ``child``: ``write[2].steps[0] child``.

    A map item's task run id (``write~000002``) reads as ``write[2]``; the step's name (or id)
    comes from the parent's config, when it has the step.
    """
    task_id, _, index = child.caller_task_run_id.partition("~")
    task = f"{task_id}[{int(index)}]" if index.isdigit() else child.caller_task_run_id
    label = f"{task}.steps[{child.caller_step_index}]"
    for config in parent.config.tasks:
        if config.task_id == task_id and child.caller_step_index < len(config.steps):
            step = config.steps[child.caller_step_index]
            if step.name or step.id:
                label += f" {step.name or step.id}"
    return label


def caller_json(child: run_pb2.JobRun) -> dict[str, object]:
    """A child run's caller: its job run, task run and step index."""
    return {
        "caller_run_id": child.caller_run_id,
        "caller_task_run_id": child.caller_task_run_id,
        "caller_step_index": child.caller_step_index,
    }


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"

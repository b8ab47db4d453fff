"""Comparing two runs of a job step by step: what a replay (or any later run) changed.

Steps are matched by task id and position; each pair says whether the step was reused, and
whether its response and outputs changed. Tasks are matched by id, with their outputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.replay import recorded_response
from llm_scheduler.v1 import run_pb2

__all__ = ["RunComparison", "StepChange", "TaskChange", "compare_runs"]


@dataclasses.dataclass(frozen=True)
class StepChange:
    """One step in both runs (or in one of them).

    Attributes:
        index: Its position in the task.
        name: Its name or id.
        before_response: The response in the first run (None when the step did not run there).
        after_response: The response in the second run, likewise.
        before_outputs: Its outputs in the first run.
        after_outputs: Its outputs in the second run.
        reused: The second run reused the step instead of calling anything.
        changed: The response or the outputs differ.
    """

    index: int
    name: str
    before_response: Any
    after_response: Any
    before_outputs: dict[str, Any] | None
    after_outputs: dict[str, Any] | None
    reused: bool
    changed: bool


@dataclasses.dataclass(frozen=True)
class TaskChange:
    """One task in both runs, with its outputs and its steps."""

    task_id: str
    before_status: str
    after_status: str
    before_outputs: dict[str, Any] | None
    after_outputs: dict[str, Any] | None
    changed: bool
    steps: list[StepChange]


@dataclasses.dataclass(frozen=True)
class RunComparison:
    """Two runs side by side, task by task in the second run's order."""

    before_run_id: str
    after_run_id: str
    tasks: list[TaskChange]

    @property
    def changed_tasks(self) -> int:
        """How many tasks' outputs (or statuses) differ."""
        return sum(task.changed for task in self.tasks)

    def to_json(self) -> dict[str, Any]:
        """The comparison as a JSON object."""
        return {
            "before_run_id": self.before_run_id,
            "after_run_id": self.after_run_id,
            "changed_tasks": self.changed_tasks,
            "tasks": [dataclasses.asdict(task) for task in self.tasks],
        }


def compare_runs(before: run_pb2.JobRun, after: run_pb2.JobRun) -> RunComparison:
    """Compares two runs of (versions of) the same job."""
    before_tasks = {task.task_id: task for task in before.tasks}
    order = [task.task_id for task in after.tasks]
    order += [task.task_id for task in before.tasks if task.task_id not in set(order)]
    after_tasks = {task.task_id: task for task in after.tasks}
    tasks: list[TaskChange] = []
    for task_id in order:
        old, new = before_tasks.get(task_id), after_tasks.get(task_id)
        steps = _steps(old, new)
        old_outputs = struct_to_dict(old.outputs) if old is not None else None
        new_outputs = struct_to_dict(new.outputs) if new is not None else None
        old_status, new_status = _status(old), _status(new)
        tasks.append(
            TaskChange(
                task_id=task_id,
                before_status=old_status,
                after_status=new_status,
                before_outputs=old_outputs,
                after_outputs=new_outputs,
                changed=old_outputs != new_outputs or old_status != new_status,
                steps=steps,
            )
        )
    return RunComparison(before.run_id, after.run_id, tasks)


def _status(task: run_pb2.TaskRun | None) -> str:
    if task is None:
        return "not run"
    return run_pb2.RunStatus.Name(task.status).removeprefix("RUN_STATUS_").lower()


def _steps(old: run_pb2.TaskRun | None, new: run_pb2.TaskRun | None) -> list[StepChange]:
    old_steps = {step.index: step for step in old.steps} if old is not None else {}
    new_steps = {step.index: step for step in new.steps} if new is not None else {}
    changes: list[StepChange] = []
    for index in sorted(old_steps.keys() | new_steps.keys()):
        a, b = old_steps.get(index), new_steps.get(index)
        a_response = recorded_response(a) if a is not None else None
        b_response = recorded_response(b) if b is not None else None
        a_outputs = struct_to_dict(a.outputs) if a is not None else None
        b_outputs = struct_to_dict(b.outputs) if b is not None else None
        named = b if b is not None else a
        assert named is not None
        changes.append(
            StepChange(
                index=index,
                name=named.name or named.step_id or f"step {index + 1}",
                before_response=a_response,
                after_response=b_response,
                before_outputs=a_outputs,
                after_outputs=b_outputs,
                reused=b is not None and bool(b.reused_from_run_id),
                changed=a_response != b_response or a_outputs != b_outputs,
            )
        )
    return changes

"""What-if edits: changes a person makes to a recorded run before replaying it.

An edit is applied to a copy of the recorded run (the trace), exactly as a person editing an
exported trace file would change it: a step's response or outputs, a task's inputs, the job's
inputs, or a step's prompt (in the run's config). The digests recorded with each step and task
are left alone, so `ReplaySource` recognises what was edited (see `llm_scheduler.engine.replay`),
and `plan_replay` tells which steps the edited run will reuse and which it will run again.

Edits arrive as JSON from the web UI, the API and scripts::

    {"kind": "step_response", "task_id": "draft", "step_index": 0, "value": "new answer"}
    {"kind": "step_outputs", "task_id": "draft", "step_index": 0, "value": {"summary": "..."}}
    {"kind": "task_inputs", "task_id": "draft", "value": {"topic": "tides"}}
    {"kind": "job_inputs", "value": {"topic": "tides"}}
    {"kind": "step_prompt", "task_id": "draft", "step_index": 0,
     "value": {"user_prompt": "Write about %topic%.", "system_prompt": "..."}}

In a step or task-inputs edit, ``task_id`` may name an item of a map task by its task run id
(``"write~000003"``); a prompt edit names the map task itself (every item has its steps).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config.structs import fill_struct, struct_to_dict, to_value
from llm_scheduler.errors import UserError
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["Edit", "EditKind", "apply_edits", "edits_from_json"]


class EditKind(enum.Enum):
    """What an edit changes."""

    STEP_RESPONSE = "step_response"
    STEP_OUTPUTS = "step_outputs"
    TASK_INPUTS = "task_inputs"
    JOB_INPUTS = "job_inputs"
    STEP_PROMPT = "step_prompt"


_PROMPT_FIELDS = ("system_prompt", "user_prompt")


@dataclasses.dataclass(frozen=True)
class Edit:
    """One change to a recorded run.

    Attributes:
        kind: What is changed.
        value: The new value: the response (text for a model step, any JSON value for a
            function step, a list of numbers for an embedding step), an outputs or inputs
            object (merged over the recorded one), or for a prompt
            ``{"user_prompt": ..., "system_prompt": ...}`` (either or both).
        task_id: The task, for every kind but ``job_inputs``.
        step_index: The step's position in its task, for the step kinds.
    """

    kind: EditKind
    value: Any
    task_id: str = ""
    step_index: int = 0

    def describe(self) -> str:
        """A short name for the edit, for messages."""
        if self.kind is EditKind.JOB_INPUTS:
            return "the job's inputs"
        if self.kind is EditKind.TASK_INPUTS:
            return f"the inputs of task {self.task_id!r}"
        what = self.kind.value.removeprefix("step_")
        return f"the {what} of step {self.step_index} of task {self.task_id!r}"


def edits_from_json(data: object) -> list[Edit]:
    """Parses a JSON list of edits (see the module docstring).

    Raises:
        UserError: The list or one of its edits is malformed; the message names the edit.
    """
    if not isinstance(data, list):
        raise UserError("edits must be a JSON list of objects like {'kind': ..., 'value': ...}")
    edits: list[Edit] = []
    kinds = ", ".join(kind.value for kind in EditKind)
    for position, item in enumerate(data):
        where = f"edit {position}"
        if not isinstance(item, Mapping):
            raise UserError(f"{where}: an edit is an object with 'kind' and 'value'")
        unknown = set(item) - {"kind", "value", "task_id", "step_index"}
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        try:
            kind = EditKind(item.get("kind"))
        except ValueError:
            raise UserError(
                f"{where}: unknown kind {item.get('kind')!r}: use one of {kinds}"
            ) from None
        task_id = item.get("task_id", "")
        step_index = item.get("step_index", 0)
        if not isinstance(task_id, str) or (kind is not EditKind.JOB_INPUTS and not task_id):
            raise UserError(f"{where}: {kind.value} needs a 'task_id'")
        if not isinstance(step_index, int) or isinstance(step_index, bool) or step_index < 0:
            raise UserError(f"{where}: 'step_index' must be a non-negative integer")
        if "value" not in item:
            raise UserError(f"{where}: missing 'value'")
        edits.append(Edit(kind, item["value"], task_id, step_index))
    return edits


def apply_edits(source: run_pb2.JobRun, edits: Sequence[Edit]) -> run_pb2.JobRun:
    """A copy of a recorded run with the edits applied, ready to plan and replay.

    Raises:
        UserError: An edit names a task or step the run does not have, or its value has the
            wrong shape; the message names the edit.
    """
    edited = run_pb2.JobRun()
    edited.CopyFrom(source)
    for edit in edits:
        _apply(edited, edit)
    return edited


def _apply(run: run_pb2.JobRun, edit: Edit) -> None:
    if edit.kind is EditKind.JOB_INPUTS:
        fill_struct(run.inputs, {**struct_to_dict(run.inputs), **_object(edit)})
        return
    if edit.kind is EditKind.STEP_PROMPT:
        _edit_prompt(run, edit)
        return
    task_run = _task_run(run, edit)
    if edit.kind is EditKind.TASK_INPUTS:
        fill_struct(task_run.inputs, {**struct_to_dict(task_run.inputs), **_object(edit)})
        return
    step = _step_run(task_run, edit)
    if edit.kind is EditKind.STEP_OUTPUTS:
        fill_struct(step.outputs, {**struct_to_dict(step.outputs), **_object(edit)})
    elif step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        step.function_response.CopyFrom(to_value(edit.value))
    elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        step.embedding[:] = _vector(edit)
    elif isinstance(edit.value, str):
        step.response_text = edit.value
    else:
        raise UserError(f"{edit.describe()}: a model step's response is text")


def _edit_prompt(run: run_pb2.JobRun, edit: Edit) -> None:
    value = _object(edit)
    wrong = [
        key for key, item in value.items() if key not in _PROMPT_FIELDS or not isinstance(item, str)
    ]
    if wrong or not value:
        raise UserError(f"{edit.describe()}: give 'user_prompt' and/or 'system_prompt' as text")
    tasks = [task for task in run.config.tasks if task.task_id == edit.task_id]
    if not tasks:
        raise UserError(f"{edit.describe()}: the job has no task {edit.task_id!r}")
    configs = [tasks[0]] + [t.config for t in run.tasks if t.task_id == edit.task_id]
    for task in configs:
        if edit.step_index >= len(task.steps):
            raise UserError(f"{edit.describe()}: the task has {len(task.steps)} steps")
        step = task.steps[edit.step_index]
        if step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
            raise UserError(f"{edit.describe()}: a function step has no prompt")
        if step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
            raise UserError(f"{edit.describe()}: an embedding step has no prompt")
        for key, text in value.items():
            setattr(step.model_query_config, key, text)


def _task_run(run: run_pb2.JobRun, edit: Edit) -> run_pb2.TaskRun:
    for task_run in run.tasks:
        if task_run.task_id == edit.task_id:
            return task_run
        for item in task_run.items:  # a map's item, named by its task run id (`T~000003`)
            if item.task_run_id == edit.task_id:
                return item
    raise UserError(f"{edit.describe()}: the run has no record of task {edit.task_id!r}")


def _step_run(task_run: run_pb2.TaskRun, edit: Edit) -> run_pb2.StepRun:
    for step in task_run.steps:
        if step.index == edit.step_index and step.status == run_pb2.RUN_STATUS_SUCCEEDED:
            return step
    raise UserError(
        f"{edit.describe()}: the run has no succeeded step {edit.step_index} in that task "
        "(only recorded results can be edited)"
    )


def _vector(edit: Edit) -> list[float]:
    value = edit.value
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    ):
        raise UserError(f"{edit.describe()}: an embedding step's response is a list of numbers")
    return [float(x) for x in value]


def _object(edit: Edit) -> dict[str, Any]:
    if not isinstance(edit.value, Mapping) or not all(isinstance(k, str) for k in edit.value):
        raise UserError(f"{edit.describe()}: the value must be a JSON object")
    return dict(edit.value)

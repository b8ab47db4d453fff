"""Replaying a recorded run: reuse every step whose fingerprint is unchanged.

A replay is a new run of a (possibly edited) config against a recorded `JobRun`. Each step is
rendered as usual; when a recorded step has the same fingerprint, its response is reused
instead of calling the model, and its outputs are recomputed from that response. So a change
(an edited prompt, parameter, input or response) re-runs exactly the steps whose rendered
request it changes: the edited step and what depends on it.

Edits made in an exported trace are recognised by the digests recorded with each step and task:
an edited ``response_text`` (or ``function_response``, or ``embedding``) is used as the step's
response; edited ``outputs`` (with the response left alone) are used as the step's outputs;
edited task ``inputs`` override the task's variables.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any

from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.engine.fingerprint import digest
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["ReplaySource", "Reuse", "recorded_response"]


def recorded_response(record: run_pb2.StepRun) -> Any:
    """The response a step record holds: a query's text, a function's value, an embedding."""
    if record.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        return value_to_python(record.function_response)
    if record.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        return list(record.embedding)
    return record.response_text


class Reuse:
    """A recorded step chosen for reuse, with what a person edited in it."""

    def __init__(self, record: run_pb2.StepRun) -> None:
        self.record = record
        response = recorded_response(record)
        outputs = struct_to_dict(record.outputs)
        self.response = response
        self.response_edited = bool(record.response_digest) and (
            digest(response) != record.response_digest
        )
        self.outputs_edited = bool(record.outputs_digest) and (
            digest(outputs) != record.outputs_digest
        )
        self.outputs = outputs


class ReplaySource:
    """The steps and task inputs of a recorded run, looked up by fingerprint and task id."""

    def __init__(self, job_run: run_pb2.JobRun) -> None:
        self.run_id = job_run.run_id
        self._steps: dict[str, collections.deque[run_pb2.StepRun]] = {}
        self._last: dict[str, run_pb2.StepRun] = {}
        self._task_inputs: dict[str, dict[str, Any]] = {}
        self._children = {
            (child.caller_task_run_id, child.caller_step_index): child for child in job_run.children
        }
        # A map's items are task runs of their own (keyed by their `T~000003` ids).
        task_runs = itertools.chain.from_iterable(
            (task_run, *task_run.items) for task_run in job_run.tasks
        )
        for task_run in task_runs:
            inputs = struct_to_dict(task_run.inputs)
            if task_run.inputs_digest and digest(inputs) != task_run.inputs_digest:
                self._task_inputs[task_run.task_run_id or task_run.task_id] = inputs
            for step in task_run.steps:
                if step.status == run_pb2.RUN_STATUS_SUCCEEDED and step.fingerprint:
                    self._steps.setdefault(step.fingerprint, collections.deque()).append(step)
                    self._last[step.fingerprint] = step

    def take(self, fingerprint: str) -> Reuse | None:
        """The recorded step for a fingerprint, or None when the step must run.

        Identical steps are handed out in recorded order (an LLM may have answered the same
        prompt differently twice); once they run out, the last one is reused again.
        """
        queue = self._steps.get(fingerprint)
        if queue:
            return Reuse(queue.popleft())
        last = self._last.get(fingerprint)
        return Reuse(last) if last is not None else None

    def child_run(self, task_run_id: str, step_index: int) -> run_pb2.JobRun | None:
        """The recorded child run of a sub-job step (step ``step_index`` of ``task_run_id``)."""
        return self._children.get((task_run_id, step_index))

    def edited_task_inputs(self, task_id: str) -> dict[str, Any]:
        """Task inputs a person edited in the trace (empty when unedited).

        ``task_id`` is a task's id, or a map item's task run id (``T~000003``).
        """
        return dict(self._task_inputs.get(task_id, {}))

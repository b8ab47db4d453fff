"""The fields validation reads from every task of a job, read from the job's serialized bytes.

Through the protobuf (upb) API, each task and each step reached from Python gets a wrapper
object: a job of 100,000 one-step tasks spent ~0.4 s building wrappers only to learn each task's
id, links and steps. Serializing the job once (in C, ~20 ms) and reading the tasks' top-level
fields from the bytes takes less than half that. Every field of `TaskConfig` and `JobConfig` is
length-delimited (wire type 2) with a field number below 16, so each field is a one-byte tag, a
varint length and its bytes. Anything else (an unknown field of another kind) falls back to
the wrappers, with the same result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from llm_scheduler.v1 import config_pb2

__all__ = ["FOR_EACH", "INPUT_CONFIG", "OUTPUT_CONFIG", "STRATEGY", "TaskFields", "task_fields"]

# `TaskFields.fields` bits: a task sets the field of that number (see config.proto).
INPUT_CONFIG = 1 << 2
OUTPUT_CONFIG = 1 << 4
FOR_EACH = 1 << 10
STRATEGY = 1 << 11
_FIELDS = {
    "input_config": INPUT_CONFIG,
    "output_config": OUTPUT_CONFIG,
    "for_each": FOR_EACH,
    "strategy": STRATEGY,
}
_MASK = INPUT_CONFIG | OUTPUT_CONFIG | FOR_EACH | STRATEGY
# One-byte tags: field number << 3 | wire type 2 (length-delimited).
_JOB_TASKS = 4 << 3 | 2
_TASK_ID = 1 << 3 | 2
_STEPS = 3 << 3 | 2
_NEXT_TASK = 6 << 3 | 2
_NEXT_TASKS = 7 << 3 | 2
_TAG_CHECK = 0x87  # a one-byte tag of wire type 2 has these bits equal to 2


@dataclasses.dataclass(frozen=True)
class TaskFields:
    """What validation reads from every task of a job, in config order.

    Attributes:
        links: ``(task_id, next_task, next_tasks)`` per task, as `TaskGraph.from_links` takes.
        steps: Per task, its steps' bytes: each ``step.SerializeToString(deterministic=True)``.
        fields: Per task, which of ``input_config``, ``output_config``, ``for_each`` and
            ``strategy`` it sets: `INPUT_CONFIG`, `OUTPUT_CONFIG`, `FOR_EACH` and `STRATEGY`
            bits.
    """

    links: list[tuple[str, str, Sequence[str]]]
    steps: list[tuple[bytes, ...]]
    fields: list[int]


def task_fields(job: config_pb2.JobConfig) -> TaskFields:
    """The fields of ``job``'s tasks that validation reads from every task.

    Read from the job's deterministic serialization, or through the wrappers when the bytes
    hold something unexpected (`task_fields_of_wrappers`); the two agree.
    """
    return _from_bytes(job.SerializeToString(deterministic=True)) or task_fields_of_wrappers(job)


def task_fields_of_wrappers(job: config_pb2.JobConfig) -> TaskFields:
    """`task_fields` through the protobuf wrappers (slower, for any job)."""
    result = TaskFields([], [], [])
    for task in job.tasks:
        result.links.append((task.task_id, task.next_task, list(task.next_tasks)))
        result.steps.append(
            tuple(step.SerializeToString(deterministic=True) for step in task.steps)
        )
        result.fields.append(sum(bit for name, bit in _FIELDS.items() if task.HasField(name)))
    return result


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _from_bytes(raw: bytes) -> TaskFields | None:
    """`task_fields` from a serialized job, or None when it holds a field of another kind."""
    result = TaskFields([], [], [])
    links, all_steps, all_fields = result.links, result.steps, result.fields
    pos, end = 0, len(raw)
    while pos < end:  # the job's fields
        tag = raw[pos]
        if tag & _TAG_CHECK != 2:
            return None
        length = raw[pos + 1]
        if length & 0x80:
            length, pos = _varint(raw, pos + 1)
        else:
            pos += 2
        stop = pos + length
        if tag != _JOB_TASKS:
            pos = stop
            continue
        task_id = next_task = ""
        next_tasks: list[str] = []
        steps: list[bytes] = []
        fields = 0
        while pos < stop:  # the task's fields
            tag = raw[pos]
            if tag & _TAG_CHECK != 2:
                return None
            length = raw[pos + 1]
            if length & 0x80:
                length, pos = _varint(raw, pos + 1)
            else:
                pos += 2
            field_end = pos + length
            if tag == _STEPS:
                steps.append(raw[pos:field_end])
            elif tag == _TASK_ID:
                task_id = raw[pos:field_end].decode()
            elif tag == _NEXT_TASK:
                next_task = raw[pos:field_end].decode()
            elif tag == _NEXT_TASKS:
                next_tasks.append(raw[pos:field_end].decode())
            else:
                fields |= 1 << (tag >> 3)
            pos = field_end
        if pos != stop:
            return None
        links.append((task_id, next_task, next_tasks))
        all_steps.append(tuple(steps))
        all_fields.append(fields & _MASK)
    return result if pos == end else None

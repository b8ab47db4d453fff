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

__all__ = [
    "FOR_EACH",
    "INPUT_CONFIG",
    "OUTPUT_CONFIG",
    "STRATEGY",
    "TaskFields",
    "step_keys",
    "task_fields",
    "task_fields_of_wrappers",
]

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
# A one-byte tag: field number << 3 | wire type 2 (length-delimited). `_from_bytes` spells the
# task's tags as literals (it runs per field of every task).
_JOB_TASKS = 4 << 3 | 2


@dataclasses.dataclass(frozen=True)
class TaskFields:
    """What validation reads from every task of a job, in config order.

    Attributes:
        links: ``(task_id, next_task, next_tasks)`` per task, as `TaskGraph.from_links` takes.
        steps: Per task, its steps as serialized in it: a tag, a length and the step's bytes
            (``step.SerializeToString(deterministic=True)``) per step, ``b""`` for none; one
            bytes object per task (no container per task), `step_keys` splits it.
        fields: Per task, which of ``input_config``, ``output_config``, ``for_each`` and
            ``strategy`` it sets: `INPUT_CONFIG`, `OUTPUT_CONFIG`, `FOR_EACH` and `STRATEGY`
            bits.
    """

    links: list[tuple[str, str, Sequence[str]]]
    steps: list[bytes]
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
        result.links.append((task.task_id, task.next_task, tuple(task.next_tasks)))
        steps = config_pb2.TaskConfig(steps=task.steps)
        result.steps.append(steps.SerializeToString(deterministic=True))
        result.fields.append(sum(bit for name, bit in _FIELDS.items() if task.HasField(name)))
    return result


def step_keys(steps: bytes) -> tuple[bytes, ...]:
    """Each step's bytes in a `TaskFields.steps` entry."""
    keys: list[bytes] = []
    pos = 0
    while pos < len(steps):
        length, start = _varint(steps, pos + 1)
        keys.append(steps[start : start + length])
        pos = start + length
    return tuple(keys)


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
    """`task_fields` from a serialized job, or None when it holds something unexpected.

    Allocates as little as it can per task (each container the garbage collector tracks made
    it walk a growing heap more often): a tuple, and one bytes object for all the steps.
    """
    result = TaskFields([], [], [])
    links, all_steps, all_fields = result.links, result.steps, result.fields
    pos, end = 0, len(raw)
    while pos < end:  # the job's fields
        tag = raw[pos]
        if tag & 0x87 != 2:  # not a one-byte tag of wire type 2
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
        next_tasks: list[str] | None = None
        steps_start = steps_end = fields = 0
        while pos < stop:  # the task's fields
            field_start = pos
            tag = raw[pos]
            if tag & 0x87 != 2:
                return None
            length = raw[pos + 1]
            if length & 0x80:
                length, pos = _varint(raw, pos + 1)
            else:
                pos += 2
            field_end = pos + length
            if tag == 0x1A:  # steps (3): adjacent, kept as one range
                if steps_end != field_start:
                    if steps_end:
                        return None
                    steps_start = field_start
                steps_end = field_end
            elif tag == 0x0A:  # task_id (1)
                task_id = raw[pos:field_end].decode()
            elif tag == 0x32:  # next_task (6)
                next_task = raw[pos:field_end].decode()
            elif tag == 0x3A:  # next_tasks (7)
                if next_tasks is None:
                    next_tasks = []
                next_tasks.append(raw[pos:field_end].decode())
            else:
                fields |= 1 << (tag >> 3)
            pos = field_end
        if pos != stop:
            return None
        links.append((task_id, next_task, tuple(next_tasks) if next_tasks else ()))
        all_steps.append(raw[steps_start:steps_end])
        all_fields.append(fields & _MASK)
    return result if pos == end else None

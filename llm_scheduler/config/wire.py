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
    "EMBEDDING_INPUT",
    "FOR_EACH",
    "INPUT_CONFIG",
    "OUTPUT_CONFIG",
    "STRATEGY",
    "SYSTEM_PROMPT",
    "USER_PROMPT",
    "StepTexts",
    "TaskFields",
    "step_keys",
    "step_texts",
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
# `step_texts`: where each text sits in the tuple it returns, and the fields holding them by the
# tags of their sub-config and of the field in it: model_query_config (6) system_prompt (3) and
# user_prompt (4), embedding_config (11) input (2).
SYSTEM_PROMPT, USER_PROMPT, EMBEDDING_INPUT = 0, 1, 2
_TEXTS = {0x32: {0x1A: SYSTEM_PROMPT, 0x22: USER_PROMPT}, 0x5A: {0x12: EMBEDDING_INPUT}}
_STEP_TYPE = 4 << 3  # a varint
# The step types (`config_pb2.StepType`) whose templates are all among the texts.
_TEXT_STEP_TYPES = (0, 2)


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


def step_texts(step: bytes) -> tuple[bytes, tuple[str, str, str]] | None:
    """A model-query or embedding step's template texts, and the rest of its bytes.

    A wide job's steps often differ only in their prompts; the checks of the rest are shared.

    Args:
        step: A step's deterministic serialization (a `step_keys` item).

    Returns:
        ``(rest, texts)``: ``texts`` are the step's system prompt, user prompt and embedding
        input (at `SYSTEM_PROMPT`, `USER_PROMPT` and `EMBEDDING_INPUT`, "" when unset);
        ``rest`` is the step's serialization with each of these fields emptied but kept (an
        empty string is never serialized, so which texts are set stays in it). Two steps with
        the same ``rest`` differ in these texts only. None for a step of another type (whose
        templates may be elsewhere) and for bytes holding something unexpected.
    """
    split = _split(step)
    return None if split is None else (split[0], split[1])


# Where the one text of a step is (see `_split`): the position of its sub-config's length, the
# position of its bytes, their length, the sub-config's length and the text's place in `texts`.
_Layout = tuple[int, int, int, int, int]


def _split(step: bytes) -> tuple[bytes, tuple[str, str, str], _Layout | None] | None:
    """`step_texts`, and the `_Layout` of the step's text when it has one, of lengths of a byte."""
    texts = ["", "", ""]
    found: list[tuple[int, int, int]] = []  # per text: its place in texts, start, length
    layout: _Layout | None = None
    pieces: list[bytes] = []
    copied = pos = 0  # step[:copied] is in pieces
    end = len(step)
    step_type = 0
    while pos < end:  # runs per field of each distinct step: varints of one byte inline
        tag = step[pos]
        if tag & 0x87 != 2:  # not a one-byte tag of wire type 2
            if tag & 0x87 != 0:  # nor of a varint (step_type, cache)
                return None
            value = step[pos + 1]
            if value & 0x80:
                value, pos = _varint(step, pos + 1)
            else:
                pos += 2
            if tag == _STEP_TYPE:
                step_type = value
            continue
        length = step[pos + 1]
        if length & 0x80:
            length, body = _varint(step, pos + 1)
        else:
            body = pos + 2
        stop = body + length
        fields = _TEXTS.get(tag)
        if fields is not None:
            before = len(found)
            inner = _without_texts(step, body, stop, fields, texts, found)
            if inner is None:
                return None
            if len(found) == before + 1 and body == pos + 2 and found[-1][2] < 0x80:
                slot, start, size = found[-1]
                layout = (pos + 1, start, size, length, slot)
            if len(inner) != length:
                size = len(inner)
                head = bytes((tag, size)) if size < 0x80 else bytes((tag,)) + _varint_bytes(size)
                pieces += (step[copied:pos], head, inner)
                copied = stop
        pos = stop
    if pos != end or step_type not in _TEXT_STEP_TYPES:
        return None
    if len(found) != 1:
        layout = None
    if not pieces:
        return step, ("", "", ""), layout
    pieces.append(step[copied:])
    return b"".join(pieces), (texts[0], texts[1], texts[2]), layout


class StepTexts:
    """`step_texts`, faster for a step laid out like the last one read with a text.

    A wide job's steps differ in one text: a step whose bytes are the last one's but for that
    text and the lengths holding it (one byte each) has the same rest. Comparing the bytes
    around the text takes a third of the time of reading the step's fields. Not thread-safe:
    one per validation.
    """

    __slots__ = ("_last", "_layout", "_rest")

    def __init__(self) -> None:
        self._last = b""
        self._rest = b""
        self._layout: _Layout | None = None

    def __call__(self, step: bytes) -> tuple[bytes, tuple[str, str, str]] | None:
        """`step_texts` of ``step``."""
        layout = self._layout
        if layout is not None:
            at, start, size, sub, slot = layout
            last = self._last
            if start <= len(step):
                length = step[start - 1]
                outer = sub - size + length
                if (
                    0 < length < 0x80
                    and outer < 0x80
                    and len(step) - length == len(last) - size
                    and step[at] == outer
                    and step[start + length :] == last[start + size :]
                    and step[at + 1 : start - 1] == last[at + 1 : start - 1]
                    and step[:at] == last[:at]
                ):
                    try:
                        text = step[start : start + length].decode()
                    except UnicodeDecodeError:
                        return None
                    found = ["", "", ""]
                    found[slot] = text
                    return self._rest, (found[0], found[1], found[2])
        split = _split(step)
        if split is None:
            return None
        rest, texts, layout = split
        if layout is not None:
            self._last, self._rest, self._layout = step, rest, layout
        return rest, texts


def _without_texts(
    step: bytes,
    pos: int,
    end: int,
    fields: dict[int, int],
    texts: list[str],
    found: list[tuple[int, int, int]],
) -> bytes | None:
    """A sub-config's bytes (``step[pos:end]``) with its ``fields`` emptied into ``texts``.

    Appends each text's place in ``texts``, start and length to ``found``.
    """
    pieces: list[bytes] = []
    copied = pos
    while pos < end:
        tag = step[pos]
        if tag & 0x87 != 2:
            if tag & 0x87 != 0:
                return None
            _, pos = _varint(step, pos + 1)
            continue
        length = step[pos + 1]
        if length & 0x80:
            length, body = _varint(step, pos + 1)
        else:
            body = pos + 2
        stop = body + length
        index = fields.get(tag)
        if index is not None:
            try:
                texts[index] = step[body:stop].decode()
            except UnicodeDecodeError:
                return None
            found.append((index, body, length))
            pieces += (step[copied:pos], bytes((tag, 0)))
            copied = stop
        pos = stop
    if pos != end:
        return None
    pieces.append(step[copied:end])
    return b"".join(pieces)


def _varint_bytes(value: int) -> bytes:
    """``value`` as a varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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

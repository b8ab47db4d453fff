"""The rule for ids that become part of a store path: job ids, task ids and run ids.

Event-driven runs keep their documents at ``jobs/{job_id}``, ``job_runs/{run_id}`` and
``job_runs/{run_id}/task_runs/{task_id}`` (`llm_scheduler.execution.documents`), in SQLite and
in Firestore alike. An id holding ``/`` would name another document, and Firestore refuses ``.``,
``..`` and ids of the form ``__name__``; so ids keep to a safe set of characters everywhere,
checked before anything runs. Step ids never enter a path (step runs are stored by index).
"""

from __future__ import annotations

import re

__all__ = [
    "IDENTIFIER_PATTERN",
    "ID_RULE",
    "MAX_ID_LENGTH",
    "MAX_JOB_ID_LENGTH",
    "PLAIN_ID",
    "all_plain",
    "check_id",
]

# What an id may hold (the whole id must match); `check_id` adds the reserved names and lengths.
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")
MAX_ID_LENGTH = 128
# A run id is the job id plus "-<UTC time>-<6 hex digits>" (23 characters; see
# `engine.job.new_run_id`), and must itself be a valid id.
MAX_JOB_ID_LENGTH = 100
# The rule in words, for hints (the length limit is in the message when it is the problem).
ID_RULE = "use only letters, digits, '_', '-' and '.' (not '.' or '..' alone, and not __name__)"

_RESERVED = re.compile(r"__.*__", re.DOTALL)
# Ids `check_id` certainly accepts, in one match (a fast path for jobs of many tasks): safe
# characters, not starting with "." or "__", at most MAX_ID_LENGTH long. Others get `check_id`.
PLAIN_ID = re.compile(rf"(?!__)[A-Za-z0-9_\-][A-Za-z0-9_.\-]{{0,{MAX_ID_LENGTH - 1}}}")
# Ids, one a line, that each match PLAIN_ID: one match for all of a job's task ids.
_PLAIN_LINES = re.compile(rf"{PLAIN_ID.pattern}(?:\n{PLAIN_ID.pattern})*")


def all_plain(ids: list[str]) -> bool:
    """Whether every id matches `PLAIN_ID` (in one match, not one per id); False for no ids."""
    lines = "\n".join(ids)
    # An id holding a newline would pass as two ids: it has one more newline than a line break.
    return lines.count("\n") == len(ids) - 1 and _PLAIN_LINES.fullmatch(lines) is not None


def check_id(kind: str, value: str, *, max_length: int = MAX_ID_LENGTH) -> str | None:
    """What is wrong with ``value`` as an id, or None when it is a valid id.

    Args:
        kind: What the id is, in words, to start the message (e.g. ``"task id"``).
        value: The id.
        max_length: The longest id allowed (`MAX_JOB_ID_LENGTH` for job ids).

    Returns:
        A message like ``"task id 'a/b' holds '/', which ids cannot hold"``, or None. `ID_RULE`
        is the hint to go with it.
    """
    if not value:
        return f"{kind} is empty"
    if not IDENTIFIER_PATTERN.fullmatch(value):
        bad = dict.fromkeys(char for char in value if not IDENTIFIER_PATTERN.fullmatch(char))
        shown = ", ".join(_show(char) for char in list(bad)[:5])
        more = ", ..." if len(bad) > 5 else ""
        return f"{kind} {_short(value)} holds {shown}{more}, which ids cannot hold"
    if value in (".", ".."):
        return f"{kind} {value!r} is not a valid id ('.' and '..' name directories)"
    if _RESERVED.fullmatch(value):
        return f"{kind} {_short(value)} starts and ends with '__', which Firestore reserves"
    if len(value) > max_length:
        return f"{kind} is {len(value)} characters long, more than the {max_length} allowed"
    return None


def _show(char: str) -> str:
    # ascii(): a control character or a lone surrogate prints as an escape, not raw.
    return "a space" if char == " " else ascii(char)


def _short(value: str) -> str:
    return ascii(value if len(value) <= 40 else f"{value[:37]}...")

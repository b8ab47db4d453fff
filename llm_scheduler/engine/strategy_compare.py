"""Comparing a strategy's variations side by side, within one run or across two runs.

Reads only a run's record (`run_pb2.JobRun`: from a store, a trace or a run in process): a
strategy task's record holds one item per variation (`TaskRun.items`, each with ``variation``).
A variation's parameters come from its name (``rewrite[model=a,prompt=b]``: names cannot hold
``[],=``), so a variation of an older config, since removed, still compares.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.errors import UserError
from llm_scheduler.v1 import run_pb2

__all__ = [
    "VariationChange",
    "VariationRow",
    "compare_strategy_runs",
    "parse_variation_name",
    "variation_rows",
]


def parse_variation_name(name: str) -> dict[str, str]:
    """A variation name's parameters: ``{"model": "a"}`` for ``t[model=a]``."""
    _, _, inner = name.partition("[")
    pairs = [part.partition("=") for part in inner.removesuffix("]").split(",") if part]
    return {axis: value for axis, _, value in pairs}


@dataclasses.dataclass(frozen=True)
class VariationRow:
    """One variation of a strategy task in one run.

    Attributes:
        variation: Its name.
        parameters: Each axis's name and the name of its value.
        status: ``SUCCEEDED``, ``FAILED``, ``SKIPPED``, ...
        outputs: Its outputs (empty unless it succeeded).
        error: Its error message, when it failed.
        input_tokens: Tokens in, over its steps.
        output_tokens: Tokens out, over its steps.
        cost_usd: Its cost.
        latency_seconds: The time its steps took (their calls, summed), queueing left out.
        reused: Every step it ran was reused from a recorded run (a replay called nothing).
    """

    variation: str
    parameters: dict[str, str]
    status: str
    outputs: dict[str, Any]
    error: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_seconds: float
    reused: bool

    def to_json(self) -> dict[str, Any]:
        """The row as JSON."""
        return dataclasses.asdict(self)

    def output_text(self) -> str:
        """Its output as text: the one output's value, or the outputs as JSON; else its error."""
        if self.error:
            return f"error: {self.error}"
        if len(self.outputs) == 1:
            value = next(iter(self.outputs.values()))
            return value if isinstance(value, str) else json.dumps(value)
        return json.dumps(self.outputs) if self.outputs else ""


def _row(item: run_pb2.TaskRun) -> VariationRow:
    steps = list(item.steps)
    return VariationRow(
        variation=item.variation,
        parameters=parse_variation_name(item.variation),
        status=run_pb2.RunStatus.Name(item.status).removeprefix("RUN_STATUS_"),
        outputs=struct_to_dict(item.outputs),
        error=item.error.message,
        input_tokens=item.usage.input_tokens,
        output_tokens=item.usage.output_tokens,
        cost_usd=item.cost_usd,
        latency_seconds=sum(step.latency_seconds for step in steps),
        reused=bool(steps) and all(step.reused_from_run_id for step in steps),
    )


def variation_rows(job_run: run_pb2.JobRun, task_id: str) -> list[VariationRow]:
    """One row per variation of strategy task ``task_id`` of a run, in variation order.

    Raises:
        UserError: The run has no task ``task_id``, or the task is no strategy (with the
            strategies it has, if any).
    """
    task_run = next((task for task in job_run.tasks if task.task_id == task_id), None)
    strategies = [task.task_id for task in job_run.config.tasks if task.HasField("strategy")]
    if task_run is None and task_id not in {task.task_id for task in job_run.config.tasks}:
        raise UserError(
            f"run {job_run.run_id!r} has no task {task_id!r}; its strategy tasks: "
            f"{', '.join(strategies) or 'none'}"
        )
    config = next(task for task in job_run.config.tasks if task.task_id == task_id)
    if not config.HasField("strategy"):
        raise UserError(
            f"task {task_id!r} of run {job_run.run_id!r} is no strategy; compare one of: "
            f"{', '.join(strategies) or 'none (the job has no strategy task)'}"
        )
    if task_run is None:
        return []  # the task has not started
    return [_row(item) for item in task_run.items]


@dataclasses.dataclass(frozen=True)
class VariationChange:
    """One variation in two runs of a strategy: its row in each (None where it is absent).

    Attributes:
        variation: Its name.
        before: Its row in the first run.
        after: Its row in the second run.
        changed: What differs: ``added``, ``removed``, or some of ``status``, ``outputs``,
            ``tokens``, ``cost`` (tokens and cost only when neither run reused the variation).
    """

    variation: str
    before: VariationRow | None
    after: VariationRow | None
    changed: list[str]

    def to_json(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "variation": self.variation,
            "before": self.before.to_json() if self.before is not None else None,
            "after": self.after.to_json() if self.after is not None else None,
            "changed": self.changed,
        }


def _changes(before: VariationRow | None, after: VariationRow | None) -> list[str]:
    if before is None:
        return ["added"]
    if after is None:
        return ["removed"]
    changed: list[str] = []
    if before.status != after.status:
        changed.append("status")
    if before.outputs != after.outputs or before.error != after.error:
        changed.append("outputs")
    if before.reused or after.reused:
        return changed  # a reused variation called nothing: its tokens and cost are not news
    if (before.input_tokens, before.output_tokens) != (after.input_tokens, after.output_tokens):
        changed.append("tokens")
    if before.cost_usd != after.cost_usd:
        changed.append("cost")
    return changed


def compare_strategy_runs(
    before: run_pb2.JobRun, after: run_pb2.JobRun, task_id: str
) -> list[VariationChange]:
    """Each variation of ``task_id`` in two runs: the second run's order, then those it lacks.

    Raises:
        UserError: Either run has no strategy task ``task_id`` (see `variation_rows`).
    """
    old = {row.variation: row for row in variation_rows(before, task_id)}
    new = {row.variation: row for row in variation_rows(after, task_id)}
    order = [*new, *(name for name in old if name not in new)]
    return [
        VariationChange(name, old.get(name), new.get(name), _changes(old.get(name), new.get(name)))
        for name in order
    ]

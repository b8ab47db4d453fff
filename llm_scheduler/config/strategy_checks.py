"""Checks of a strategy's config (`TaskConfig.strategy`) that need no registry.

`config.validation.Validator` reports these with the task's field path, and checks the values
of a ``model_key`` axis against the model registry itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Iterator

from llm_scheduler.config.strategies import (
    MODEL_KEY_VARIABLE,
    NAME_RESERVED,
    variation_name,
    variations,
)
from llm_scheduler.v1 import config_pb2

__all__ = ["MAX_VARIATIONS", "StrategyProblem", "strategy_problems"]

# The most variations a strategy may have: a map's default limit (each is a task run).
MAX_VARIATIONS = 1_000

# The largest product of axes a strategy may pick its variations from with ``only``.
_MAX_PRODUCT = 100 * MAX_VARIATIONS
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class StrategyProblem:
    """A problem at ``path`` (relative to the strategy's own path, e.g. ``axes[0].name``)."""

    path: str
    message: str
    hint: str


def _bad_name(name: str) -> str | None:
    if not name:
        return "is empty"
    reserved = sorted({char for char in name if char in NAME_RESERVED})
    if reserved:
        return f"{name!r} holds {', '.join(repr(c) for c in reserved)}, which names cannot hold"
    return None


def strategy_problems(task: config_pb2.TaskConfig, reads: set[str]) -> Iterator[StrategyProblem]:
    """The problems of a task's strategy (none when it has none).

    Args:
        task: The task.
        reads: The variable names the task's steps and outputs read.
    """
    if not task.HasField("strategy"):
        return
    config = task.strategy
    if task.HasField("for_each"):
        yield StrategyProblem(
            "",
            "a task cannot be both a map (for_each) and a strategy",
            "make the map a sub-job step of the strategy's task, or the strategy a sub-job "
            "step of the map's task",
        )
    if not config.axes:
        yield StrategyProblem(
            "axes",
            "the strategy has no axes",
            'add an axis, e.g. {"name": "model", '
            '"variable": "model_key", "values": [{"name": "GEMINI_FLASH"}]}',
        )
        return
    axis_names: set[str] = set()
    variables: set[str] = set()
    sound = True
    for index, axis in enumerate(config.axes):
        path = f"axes[{index}]"
        problem = _bad_name(axis.name)
        if problem:
            sound = False
            yield StrategyProblem(
                f"{path}.name", f"the axis name {problem}", f"name the axis without {NAME_RESERVED}"
            )
        elif axis.name in axis_names:
            sound = False
            yield StrategyProblem(
                f"{path}.name", f"duplicate axis name {axis.name!r}", "rename one"
            )
        axis_names.add(axis.name)
        if not _IDENTIFIER.fullmatch(axis.variable):
            yield StrategyProblem(
                f"{path}.variable",
                f"{axis.variable!r} is not a variable name",
                "use letters, digits and underscores, not starting with a digit "
                f"(or {MODEL_KEY_VARIABLE} to vary the model)",
            )
        elif axis.variable in variables:
            yield StrategyProblem(
                f"{path}.variable",
                f"{axis.variable!r} is the variable of another axis too",
                "give each axis its own variable",
            )
        elif axis.variable != MODEL_KEY_VARIABLE and axis.variable not in reads:
            yield StrategyProblem(
                f"{path}.variable",
                f"no step of task {task.task_id!r} reads %{axis.variable}%",
                f"use %{axis.variable}% in a step (its prompt, input or output), name a variable "
                f"a step reads ({', '.join(sorted(reads)) or 'none'}), or {MODEL_KEY_VARIABLE} "
                "to vary the model",
            )
        variables.add(axis.variable)
        if not axis.values:
            sound = False
            yield StrategyProblem(f"{path}.values", "the axis has no values", "add at least one")
        value_names: set[str] = set()
        for value_index, value in enumerate(axis.values):
            value_path = f"{path}.values[{value_index}].name"
            problem = _bad_name(value.name)
            if problem:
                sound = False
                yield StrategyProblem(
                    value_path, f"the value name {problem}", f"name it without {NAME_RESERVED}"
                )
            elif value.name in value_names:
                sound = False
                yield StrategyProblem(
                    value_path,
                    f"duplicate value name {value.name!r} in axis {axis.name!r}",
                    "rename one",
                )
            value_names.add(value.name)
    if not sound:
        return
    total = math.prod(len(axis.values) for axis in config.axes)
    if total > (_MAX_PRODUCT if config.only else MAX_VARIATIONS):
        yield StrategyProblem(
            "axes",
            f"the axes make {total:,} variations, more than {MAX_VARIATIONS:,}",
            "shorten the axes, or list the variations to run in only",
        )
        return
    yield from _only_problems(task)
    found = variations(task)
    if len(found) > MAX_VARIATIONS:
        yield StrategyProblem(
            "only",
            f"only lists {len(found):,} variations, more than {MAX_VARIATIONS:,}",
            "list fewer",
        )
    ids: dict[str, str] = {}
    for variation in found:
        other = ids.setdefault(variation.run_id, variation.name)
        if other != variation.name:
            yield StrategyProblem(
                "axes",
                f"variations {other!r} and {variation.name!r} have the same run id "
                f"{variation.run_id!r}",
                "rename a value of one of them",
            )


def _only_problems(task: config_pb2.TaskConfig) -> Iterator[StrategyProblem]:
    config = task.strategy
    if not config.only:
        return
    axes = list(config.axes)
    known = {
        variation_name(
            task.task_id,
            tuple((a.name, v.name) for a, v in zip(axes, combination, strict=True)),
        )
        for combination in itertools.product(*(list(axis.values) for axis in axes))
    }
    example = next(iter(sorted(known)), "")
    seen: set[str] = set()
    for index, name in enumerate(config.only):
        if name in seen:
            yield StrategyProblem(f"only[{index}]", f"{name!r} is listed twice", "list it once")
        elif name not in known:
            yield StrategyProblem(
                f"only[{index}]",
                f"the axes produce no variation {name!r}",
                f"name a variation as task[axis=value,...] with the axes in config order, "
                f"e.g. {example!r}",
            )
        seen.add(name)

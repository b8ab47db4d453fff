"""Strategies (`TaskConfig.strategy`): a task run once per named variation of its axes.

A variation binds one value of every axis (the product of the axes in config order, or the
subset ``only`` lists). It is named from its values, ``rewrite[model=gpt-4o-mini,prompt=concise]``,
and runs as a map item does (`engine.items`), under the store-safe task run id
``rewrite~v-<slug>-<8 hex>``. An axis over ``model_key`` sets the model key of every model-query
and embedding step of the task for that variation (`variation_task`): the steps' rendered
requests, and so their fingerprints, are those of a task written with that key, so a replay
reuses every unchanged variation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config.structs import value_to_python
from llm_scheduler.v1 import config_pb2

__all__ = [
    "MODEL_KEY_VARIABLE",
    "NAME_RESERVED",
    "Variation",
    "is_strategy",
    "variation_name",
    "variation_run_id",
    "variation_task",
    "variations",
]

# The axis variable that overrides the model key of the task's model and embedding steps.
MODEL_KEY_VARIABLE = "model_key"
# Characters an axis or value name cannot hold: they delimit a variation's name.
NAME_RESERVED = "[],="

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_SLUG_CHARS = 60


@dataclasses.dataclass(frozen=True)
class Variation:
    """One variation of a strategy task.

    Attributes:
        index: Its place in variation order (the item index of its run).
        name: ``task[axis=value,...]``, axes in config order, values by their names.
        run_id: Its task run id (`variation_run_id`), its document id in a store.
        values: Each axis's name and the name of its value, in axis order.
        bindings: Each axis's variable and the value bound to it.
    """

    index: int
    name: str
    run_id: str
    values: tuple[tuple[str, str], ...]
    bindings: dict[str, Any]


def is_strategy(task: config_pb2.TaskConfig) -> bool:
    """Whether the task runs once per variation of a strategy."""
    return task.HasField("strategy")


def variation_name(task_id: str, values: tuple[tuple[str, str], ...]) -> str:
    """``task[model=gpt-4o-mini,prompt=concise]`` for the values ``(axis, value)``."""
    return f"{task_id}[{','.join(f'{axis}={value}' for axis, value in values)}]"


def variation_run_id(task_id: str, name: str) -> str:
    """The task run id of variation ``name``: ``T~v-<slug>-<8 hex of sha256(name)>``.

    The slug is the name's parameters with each run of characters an id cannot hold made
    ``_``, cut to 60 characters; the hash keeps two names that slug alike apart. ``~`` cannot
    appear in a task id, so the id never collides with a task's.
    """
    inner = name[len(task_id) + 1 : -1] if name.startswith(f"{task_id}[") else name
    slug = _SLUG_UNSAFE.sub("_", inner)[:_SLUG_CHARS].strip("_") or "x"
    hexdigest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{task_id}~v-{slug}-{hexdigest}"


def _bound(value: config_pb2.StrategyValue) -> Any:
    return value_to_python(value.value) if value.HasField("value") else value.name


def variations(task: config_pb2.TaskConfig) -> list[Variation]:
    """The variations a strategy task runs, in variation order (empty for a task that is none).

    The product of the axes in config order (the last axis varying fastest), kept to the names
    ``only`` lists when it lists any. Validation makes names unique and ``only`` names real.
    """
    if not is_strategy(task):
        return []
    axes = list(task.strategy.axes)
    only = set(task.strategy.only)
    found: list[Variation] = []
    for combination in itertools.product(*(list(axis.values) for axis in axes)):
        pairs = list(zip(axes, combination, strict=True))
        values = tuple((axis.name, value.name) for axis, value in pairs)
        name = variation_name(task.task_id, values)
        if only and name not in only:
            continue
        bindings = {axis.variable: _bound(value) for axis, value in pairs}
        run_id = variation_run_id(task.task_id, name)
        found.append(Variation(len(found), name, run_id, values, bindings))
    return found


def variation_task(
    task: config_pb2.TaskConfig, bindings: Mapping[str, Any]
) -> config_pb2.TaskConfig:
    """The task a variation runs: ``task`` itself, or a copy with its model key overridden.

    When ``bindings`` binds `MODEL_KEY_VARIABLE` to a string, every model-query and embedding
    step of the copy uses that key.
    """
    model_key = bindings.get(MODEL_KEY_VARIABLE)
    if not isinstance(model_key, str) or not model_key:
        return task
    copy = config_pb2.TaskConfig()
    copy.CopyFrom(task)
    for step in copy.steps:
        if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
            step.model_query_config.model_key = model_key
        elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
            step.embedding_config.model_key = model_key
    return copy

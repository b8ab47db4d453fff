"""The items of a task that runs more than once: a map's list items, a strategy's variations.

Maps (`TaskConfig.for_each`) and strategies (`TaskConfig.strategy`) share one machinery (in
process `engine.map.run_map`, in a store `execution.map_runs`): the task runs once per item,
each item a task run of its own with its own bindings, collected in item order. What differs
is here: where the items come from (a list in the task's variables, or the strategy's
variations), each item's task run id (``T~000003``, or ``T~v-<slug>-<hex>``) and label (``T[3]``,
or the variation's name), the config an item runs (a variation may override the model key),
and how the outputs are collected (each output name a list in item order, or an object keyed by
variation name).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.maps import is_map, map_index_variable, map_item_variable, map_max_items
from llm_scheduler.config.strategies import is_strategy, variation_task, variations
from llm_scheduler.config.template import Template
from llm_scheduler.errors import RunError
from llm_scheduler.v1 import config_pb2

__all__ = [
    "Item",
    "MapError",
    "collect_outputs",
    "has_items",
    "item_at",
    "item_index",
    "item_label",
    "item_run_id",
    "item_task",
    "item_values",
    "items_of",
    "map_items",
    "max_in_flight",
    "split_item_run_id",
]


class MapError(RunError):
    """A map's list is missing, not a list, or longer than its limit."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One run of a task with items: a map's item, or a strategy's variation.

    Attributes:
        index: Its place in item order.
        run_id: Its task run id (its document id in a store).
        label: How events and errors name it: ``T[3]``, or the variation's name.
        inputs: Its own bindings, set over the task's variables (and recorded as its inputs).
        variation: The variation's name, for a strategy; empty for a map's item.
    """

    index: int
    run_id: str
    label: str
    inputs: dict[str, Any]
    variation: str = ""


def has_items(task: config_pb2.TaskConfig) -> bool:
    """Whether the task runs once per item: a map or a strategy."""
    return is_map(task) or is_strategy(task)


def item_run_id(task_id: str, index: int) -> str:
    """The task run id of item ``index`` of map task ``task_id``: ``T~000003``.

    ``~`` cannot appear in a task id, so an item's id never collides with a task's.
    """
    return f"{task_id}~{index:06d}"


def split_item_run_id(task_run_id: str) -> tuple[str, str]:
    """The task id of a task run id and its item part: ``("T", "000003")`` for ``T~000003``.

    The item part is empty for a task's own run id (``("T", "")``).
    """
    task_id, _, item = task_run_id.partition("~")
    return task_id, item


def map_items(task: config_pb2.TaskConfig, variables: Mapping[str, Any]) -> list[Any]:
    """The list a map task runs over, read from its variables.

    A string holding a JSON list (a model's answer) is parsed.

    Raises:
        MapError: The value is not a list, or it has more items than the map's ``max_items``.
        InterpolationError: The placeholder names a missing variable or field.
    """
    config = task.for_each
    value = Template.parse(config.items).render_value(variables)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if not isinstance(value, list):
        raise MapError(
            f"task {task.task_id!r}: for_each {config.items} is a {type(value).__name__}, "
            "not a list; make it a list (a JSON array in a model's answer is parsed)"
        )
    limit = map_max_items(config)
    if len(value) > limit:
        raise MapError(
            f"task {task.task_id!r}: for_each {config.items} has {len(value):,} items, more "
            f"than its max_items ({limit:,}); raise for_each.max_items (at most 100,000) or "
            "shorten the list"
        )
    return value


def item_values(task: config_pb2.TaskConfig, variables: Mapping[str, Any]) -> list[Any]:
    """What a task's items are made of: a map's list, or each variation's bindings.

    Raises:
        MapError: A map's list is not a list or is too long (see `map_items`).
        InterpolationError: A map's placeholder names a missing variable or field.
    """
    if is_strategy(task):
        return [variation.bindings for variation in variations(task)]
    return map_items(task, variables)


def item_at(task: config_pb2.TaskConfig, index: int, value: Any) -> Item:
    """Item ``index`` of a task, made of ``value`` (see `item_values`)."""
    if is_strategy(task):
        variation = variations(task)[index]
        bindings = dict(value) if isinstance(value, Mapping) else dict(variation.bindings)
        return Item(index, variation.run_id, variation.name, bindings, variation.name)
    inputs = {map_item_variable(task.for_each): value, map_index_variable(task.for_each): index}
    return Item(index, item_run_id(task.task_id, index), f"{task.task_id}[{index}]", inputs)


def items_of(task: config_pb2.TaskConfig, values: Sequence[Any]) -> list[Item]:
    """Every item of a task, made of ``values`` (see `item_values`), in item order.

    The variations of a strategy are derived once (`item_at` derives them per call).
    """
    if not is_strategy(task):
        return [item_at(task, index, value) for index, value in enumerate(values)]
    found = variations(task)
    return [
        Item(v.index, v.run_id, v.name, dict(value) if isinstance(value, Mapping) else {}, v.name)
        for v, value in zip(found, values, strict=True)
    ]


def item_index(task: config_pb2.TaskConfig, task_run_id: str) -> int | None:
    """The index of the item whose task run id is ``task_run_id``; None when it is none."""
    task_id, item = split_item_run_id(task_run_id)
    if not item or task_id != task.task_id:
        return None
    if is_strategy(task):
        return next((v.index for v in variations(task) if v.run_id == task_run_id), None)
    return int(item) if item.isdigit() else None


def item_label(task: config_pb2.TaskConfig, task_run_id: str) -> str:
    """How events and errors name a task run: ``T``, ``T[3]``, or a variation's name."""
    index = item_index(task, task_run_id)
    if index is None:
        return task_run_id
    if is_strategy(task):
        return variations(task)[index].name
    return f"{task.task_id}[{index}]"


def item_task(task: config_pb2.TaskConfig, item: Item) -> config_pb2.TaskConfig:
    """The config an item runs: the task's, or a variation's copy with its model key set."""
    return variation_task(task, item.inputs) if item.variation else task


def max_in_flight(task: config_pb2.TaskConfig) -> int:
    """At most this many of a task's items run at once; 0: no cap of the task's own."""
    if is_strategy(task):
        return 1 if task.strategy.in_series else 0
    return task.for_each.max_in_flight


def collect_outputs(
    task: config_pb2.TaskConfig, items: Sequence[Item], outputs_of: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A task's outputs from its items' (in item order): lists, or objects keyed by variation.

    Each output name of a map is the list of its items' values (``[]`` for no item); of a
    strategy, an object mapping each variation's name to its value (built in variation order;
    a record's Struct keeps no key order).
    """
    names = dataflow.task_output_names(task)
    if is_strategy(task):
        pairs = list(zip(items, outputs_of, strict=True))
        return {name: {item.variation: out.get(name) for item, out in pairs} for name in names}
    return {name: [out.get(name) for out in outputs_of] for name in names}

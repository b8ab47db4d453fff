"""How `config_reader` shows map tasks: the list and bindings before a run, the items after.

Before a run, a map task reads ``for each item (index) in %sections%  [max_in_flight 8,
max_items 1000]``. After one, its record (`run_pb2.TaskRun` with ``items_total`` and ``items``)
reads ``12 items: 11 succeeded, 1 failed``, then one line per item when there are few of them.
Only the record's shape is read, so a run from a store and one from a trace look alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from llm_scheduler.config.maps import (
    is_map,
    map_index_variable,
    map_item_variable,
    map_max_items,
)
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "ITEM_LINES",
    "describe_for_each",
    "describe_items",
    "for_each_json",
    "is_map_run",
    "item_counts",
    "items_json",
    "maps_preview",
]

# Up to this many items, a map's items are listed one a line without asking (`--show_items`).
ITEM_LINES = 20


def describe_for_each(config: config_pb2.MapConfig) -> str:
    """A map's list and bindings in a line, its defaults filled in.

    ``for each item (index) in %sections%  [max_in_flight 8, max_items 1000]``; a map with no
    ``max_in_flight`` of its own shows only ``[max_items 1000]``.
    """
    limits = [f"max_items {map_max_items(config)}"]
    if config.max_in_flight > 0:
        limits.insert(0, f"max_in_flight {config.max_in_flight}")
    return (
        f"for each {map_item_variable(config)} ({map_index_variable(config)}) in {config.items}"
        f"  [{', '.join(limits)}]"
    )


def for_each_json(config: config_pb2.MapConfig) -> dict[str, object]:
    """A map's config with its defaults filled in (``max_in_flight`` 0: no cap of its own)."""
    return {
        "items": config.items,
        "item_variable": map_item_variable(config),
        "index_variable": map_index_variable(config),
        "max_in_flight": config.max_in_flight,
        "max_items": map_max_items(config),
    }


def maps_preview(tasks: Iterable[config_pb2.TaskConfig]) -> str:
    """A ``map tasks:`` block, one line per map task, for a task or job description; or ``""``."""
    lines = [
        f"\n  {task.task_id}  {describe_for_each(task.for_each)}" for task in tasks if is_map(task)
    ]
    return "\nmap tasks:" + "".join(lines) if lines else ""


def is_map_run(task_run: run_pb2.TaskRun, config: config_pb2.TaskConfig | None = None) -> bool:
    """Whether a task's record is a map's: its config says so, or it has items."""
    return (
        (config is not None and is_map(config)) or task_run.items_total > 0 or bool(task_run.items)
    )


def _status(status: int) -> str:
    return run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_")


def item_counts(task_run: run_pb2.TaskRun) -> dict[str, int]:
    """How many items are in each status (``SUCCEEDED``, ``FAILED``, ...), in status order.

    Items a run has not created yet (a map in the store creates them as others finish) are
    counted as ``NOT_STARTED``: the counts always add up to ``items_total``.
    """
    counts = Counter(item.status for item in task_run.items)
    result = {_status(status): counts[status] for status in sorted(counts)}
    missing = task_run.items_total - len(task_run.items)
    if missing > 0:
        result["NOT_STARTED"] = missing
    return result


def describe_items(task_run: run_pb2.TaskRun, *, every_item: bool = False) -> list[str]:
    """A map task's items as text lines: the counts, then one line per item when few.

    ``write: 12 items: 11 succeeded, 1 failed``, then ``  [3] failed: <error>`` for each item
    when there are at most `ITEM_LINES` of them or ``every_item`` is set; otherwise a line
    saying how to list them. A map whose list was never read shows ``write: no items (failed)``.
    """
    total = max(task_run.items_total, len(task_run.items))
    if not total and task_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
        # The list was never read (the map failed before, was skipped, or has not started).
        return [f"{task_run.task_id}: no items ({_status(task_run.status).lower()})"]
    counts = ", ".join(
        f"{count} {status.lower().replace('_', ' ')}"
        for status, count in item_counts(task_run).items()
    )
    lines = [f"{task_run.task_id}: {total} item{'s' if total != 1 else ''}"]
    if counts:
        lines[0] += f": {counts}"
    if len(task_run.items) > ITEM_LINES and not every_item:
        lines.append(f"  ({len(task_run.items)} items; --show_items lists each)")
        return lines
    for item in task_run.items:
        error = f": {item.error.message}" if item.error.message else ""
        label = item.variation or f"[{item.item_index}]"
        lines.append(f"  {label} {_status(item.status).lower()}{error}")
    return lines


def items_json(task_run: run_pb2.TaskRun) -> list[dict[str, object]]:
    """Each item's index, task run id, status, outputs, error and variation, in item order.

    ``error`` is set for an item that failed, ``variation`` for a strategy's variation.
    """
    items: list[dict[str, object]] = []
    for item in task_run.items:
        entry: dict[str, object] = {
            "index": item.item_index,
            "task_run_id": item.task_run_id,
            "status": _status(item.status),
            "outputs": struct_to_dict(item.outputs),
        }
        if item.variation:
            entry["variation"] = item.variation
        if item.error.message:
            entry["error"] = item.error.message
        items.append(entry)
    return items

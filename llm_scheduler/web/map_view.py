"""View models of a map task's items: the pages of its item list, and one item's details.

A map task (`TaskConfig.for_each`) records one task run per item in ``TaskRun.items``; a map may
have up to 100,000 of them, so the task's details list its items a page at a time
(`with_items`), each a row (index, status, usage, cost, duration, error), and one item's steps
are read on demand (`item_view`). Like `run_view`, this only reshapes the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_scheduler.config.maps import is_map, map_index_variable, map_item_variable
from llm_scheduler.engine.items import item_run_id
from llm_scheduler.v1 import config_pb2, run_pb2
from llm_scheduler.web.graph_layout import ItemProgress
from llm_scheduler.web.run_view import (
    details_view,
    run_start_seconds,
    task_summary,
    unrecorded_item_status,
)

__all__ = [
    "ITEMS_PAGE",
    "MAX_ITEMS_PAGE",
    "graph_items",
    "item_view",
    "map_config_view",
    "with_items",
]

# Items per page of a map task's details, by default and at most.
ITEMS_PAGE = 100
MAX_ITEMS_PAGE = 1_000


def map_config_view(config: config_pb2.TaskConfig) -> dict[str, Any] | None:
    """A map task's ``for_each`` as JSON (defaults filled in); None for a task that is no map."""
    if not is_map(config):
        return None
    for_each = config.for_each
    return {
        "items": for_each.items,
        "item_variable": map_item_variable(for_each),
        "index_variable": map_index_variable(for_each),
        "max_in_flight": for_each.max_in_flight,
        "max_items": for_each.max_items,
        "label": f"for each {map_item_variable(for_each)} in {for_each.items}",
    }


def graph_items(view: Mapping[str, Any]) -> dict[str, ItemProgress]:
    """The progress of each map (or strategy) task of a `run_view`, for its box in the graph."""
    return {
        task["task_id"]: ItemProgress(
            task["items_total"],
            task["items_counts"] or {},
            "variations" if task["is_strategy"] else "items",
        )
        for task in view["tasks"]
        if task["is_map"] or task["is_strategy"]
    }


def with_items(
    view: dict[str, Any],
    job_run: run_pb2.JobRun,
    *,
    offset: int = 0,
    limit: int | None = ITEMS_PAGE,
    details: bool = False,
) -> dict[str, Any]:
    """Adds a map task's items to its `task_view` (in place); a task that is no map gets none.

    Args:
        view: What `task_view` returned for the task.
        job_run: The run the view was made from.
        offset: The first item index listed.
        limit: How many items are listed at most; None: all from ``offset``.
        details: Give each item its full details (``details``: steps, inputs, outputs), for a
            trace, whose items cannot be fetched one by one.

    Returns:
        The view, with ``map`` (`map_config_view`) and, for a map: ``items`` (rows in index
        order, each a `task_summary` with ``item_index`` and ``task_run_id``; an item not
        recorded has `unrecorded_item_status`), ``items_offset``, ``items_limit`` and
        ``items_next_offset`` (None on the last page).
    """
    config, task = _find(job_run, view["task_id"])
    view["map"] = map_config_view(config)
    view["item_index"] = None
    view["task_run_id"] = task.task_run_id if task is not None else ""
    if view["map"] is None:
        return view
    recorded = {item.item_index: item for item in task.items} if task is not None else {}
    total = view["items_total"] or 0
    offset = max(offset, 0)
    end = total if limit is None else min(total, offset + max(limit, 1))
    start = run_start_seconds(job_run)
    rows = []
    unrecorded = unrecorded_item_status(task)
    for index in range(offset, end):
        item = recorded.get(index)
        row = _item_row(config, item, index, start)
        if details:
            row["details"] = _item_details(job_run, config, item, index)
        if item is None:
            row["status"] = unrecorded
        rows.append(row)
    view["items"] = rows
    view["items_offset"] = offset
    view["items_limit"] = limit
    view["items_next_offset"] = end if end < total else None
    return view


def item_view(job_run: run_pb2.JobRun, task_id: str, index: int) -> dict[str, Any] | None:
    """One item of a map task: its row and every step, as `task_view` gives a task's.

    Returns:
        The item's details (one the map holds no record of: `unrecorded_item_status`), with
        ``item_index``, ``task_run_id`` and the map's ``map``; None when the task is no map,
        is unknown, or has no such item.
    """
    config, task = _find(job_run, task_id)
    if not is_map(config) or index < 0:
        return None
    items = list(task.items) if task is not None else []
    total = max(task.items_total, len(items)) if task is not None else 0
    if index >= total:
        return None
    item = next((item for item in items if item.item_index == index), None)
    view = _item_details(job_run, config, item, index)
    if item is None:
        view["status"] = unrecorded_item_status(task)
    view["map"] = map_config_view(config)
    return view


def _find(
    job_run: run_pb2.JobRun, task_id: str
) -> tuple[config_pb2.TaskConfig, run_pb2.TaskRun | None]:
    task = next((task for task in job_run.tasks if task.task_id == task_id), None)
    config = next((c for c in job_run.config.tasks if c.task_id == task_id), None)
    if config is None:
        config = task.config if task is not None else config_pb2.TaskConfig(task_id=task_id)
    return config, task


def _item_row(
    config: config_pb2.TaskConfig,
    item: run_pb2.TaskRun | None,
    index: int,
    start: float | None,
) -> dict[str, Any]:
    row = task_summary(config, item, start)
    row.update(_item_fields(config, item, index))
    return row


def _item_details(
    job_run: run_pb2.JobRun,
    config: config_pb2.TaskConfig,
    item: run_pb2.TaskRun | None,
    index: int,
) -> dict[str, Any]:
    view = details_view(job_run, config, item)
    view.update(_item_fields(config, item, index))
    return view


def _item_fields(
    config: config_pb2.TaskConfig, item: run_pb2.TaskRun | None, index: int
) -> dict[str, Any]:
    """What tells an item from its map: its index and id; it has no items of its own."""
    return {
        "item_index": index,
        "task_run_id": item.task_run_id if item is not None else item_run_id(config.task_id, index),
        "is_map": False,
        "is_strategy": False,
        "items_total": None,
        "items_counts": None,
        "items_label": None,
    }

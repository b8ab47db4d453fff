"""Running a task with items in process: a map's list items or a strategy's variations.

A map task (`TaskConfig.for_each`) reads its list from its variables when it starts; a
strategy task (`TaskConfig.strategy`) has its variations (`engine.items`). `run_map` runs
`run_task` once per item with the item's bindings, at most ``max_in_flight`` items at once (one
for a strategy ``in_series``; never more than the job's ``max_concurrency``), and records each
item as a task run of its own (``T~000003``, or ``T~v-<slug>-<hex>`` for a variation: the id its
document has in a store) in the task's ``items``. Each output name of a map becomes a list of the
items' values in item order (``[]`` for an empty list); of a strategy, an object keyed by
variation name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config.structs import fill_struct, struct_to_dict
from llm_scheduler.engine import records
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.items import (
    MapError,
    collect_outputs,
    item_task,
    item_values,
    items_of,
    map_items,
    max_in_flight,
)
from llm_scheduler.engine.task import begin_task_record, run_task
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["MapError", "map_items", "run_map"]


async def run_map(
    task: config_pb2.TaskConfig,
    variables: Mapping[str, Any],
    context: RunContext,
    *,
    job_run_id: str = "",
    predecessors: Sequence[str] = (),
    record: run_pb2.TaskRun | None = None,
) -> run_pb2.TaskRun:
    """Runs a map or strategy task: its steps once per item, collected in item order.

    The first item that fails stops new items from starting (those in flight finish) and fails
    the task with an error naming the item (``T[3]: ...``, or the variation's name); items
    never started are recorded as skipped.

    Args:
        task: The task's config (validated; ``for_each`` or ``strategy`` set).
        variables: The task's starting variables, holding the list.
        context: Models, functions, limits and the progress listener.
        job_run_id: The job run this task belongs to, if any.
        predecessors: The tasks whose outputs the task received.
        record: An empty record to fill in place; a new one by default.

    Returns:
        The task's record: each item's record in ``items``; its outputs (each name a list in
        item order, or an object keyed by variation name) when every item succeeded.
    """
    run, scope = begin_task_record(
        task, task.task_id, variables, context, job_run_id, predecessors, record
    )
    context.emit(EngineEvent(EventKind.TASK_STARTED, task.task_id, name=task.name))
    try:
        items = items_of(task, item_values(task, scope))
    except Exception as error:  # recorded in the run
        run.error.CopyFrom(records.error_info(error))
        return _finish(run, run_pb2.RUN_STATUS_FAILED, context)
    run.items_total = len(items)
    slots = [run.items.add() for _ in items]
    failed: list[int] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items) and not failed:
            index = next_index
            next_index += 1
            item_run = await run_task(
                item_task(task, items[index]),
                scope,
                context,
                job_run_id=job_run_id,
                predecessors=predecessors,
                record=slots[index],
                item=items[index],
            )
            if item_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
                failed.append(index)

    cap = max(context.max_concurrency, 1)
    if max_in_flight(task) > 0:
        cap = min(cap, max_in_flight(task))
    await asyncio.gather(*(worker() for _ in range(min(cap, len(items)))))
    for item, slot in zip(items, slots, strict=True):
        if not slot.task_run_id:  # never started: an earlier item failed
            slot.task_run_id = item.run_id
            slot.task_id = task.task_id
            slot.job_run_id = job_run_id
            slot.item_index = item.index
            slot.variation = item.variation
            slot.status = run_pb2.RUN_STATUS_SKIPPED
        records.add_usage(run.usage, slot.usage)
        run.cost_usd += slot.cost_usd
    if failed:
        first = min(failed)
        run.error.CopyFrom(slots[first].error)
        run.error.message = f"{items[first].label}: {slots[first].error.message}"
        return _finish(run, run_pb2.RUN_STATUS_FAILED, context)
    outputs_of = [struct_to_dict(slot.outputs) for slot in slots]
    fill_struct(run.outputs, collect_outputs(task, items, outputs_of))
    return _finish(run, run_pb2.RUN_STATUS_SUCCEEDED, context)


def _finish(
    run: run_pb2.TaskRun, status: run_pb2.RunStatus, context: RunContext
) -> run_pb2.TaskRun:
    run.status = status
    records.stamp(run.finished_at)
    detail = run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower()
    context.emit(EngineEvent(EventKind.TASK_FINISHED, run.task_id, detail=detail))
    return run

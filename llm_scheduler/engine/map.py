"""Running a map task in process: the task once per item of a list, bounded, in item order.

A map task (`TaskConfig.for_each`) reads its list from its variables when it starts, runs
`run_task` once per item with the item and its index bound, at most ``max_in_flight`` items at
once (and never more than the job's ``max_concurrency``), and records each item as a task run
of its own (``T~000003``, the id its document has in a store) in the map's ``items``. Each output
name of the task becomes a list of the items' values, in item order; an empty list gives ``[]``
for each name.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.maps import map_index_variable, map_item_variable, map_max_items
from llm_scheduler.config.structs import fill_struct, struct_to_dict
from llm_scheduler.config.template import Template
from llm_scheduler.engine import records
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.task import begin_task_record, item_run_id, run_task
from llm_scheduler.errors import RunError
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["MapError", "map_items", "run_map"]


class MapError(RunError):
    """A map's list is missing, not a list, or longer than its limit."""


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


async def run_map(
    task: config_pb2.TaskConfig,
    variables: Mapping[str, Any],
    context: RunContext,
    *,
    job_run_id: str = "",
    predecessors: Sequence[str] = (),
    record: run_pb2.TaskRun | None = None,
) -> run_pb2.TaskRun:
    """Runs a map task: its steps once per item, collected in item order.

    The first item that fails stops new items from starting (those in flight finish) and fails
    the map with an error naming the item (``T[3]: ...``); items never started are recorded as
    skipped.

    Args:
        task: The map task's config (validated; ``for_each`` set).
        variables: The task's starting variables, holding the list.
        context: Models, functions, limits and the progress listener.
        job_run_id: The job run this task belongs to, if any.
        predecessors: The tasks whose outputs the task received.
        record: An empty record to fill in place; a new one by default.

    Returns:
        The map's record: each item's record in ``items``; its outputs (each name a list in
        item order) when every item succeeded.
    """
    run, scope = begin_task_record(
        task, task.task_id, variables, context, job_run_id, predecessors, record
    )
    context.emit(EngineEvent(EventKind.TASK_STARTED, task.task_id, name=task.name))
    try:
        items = map_items(task, scope)
    except Exception as error:  # recorded in the run
        run.error.CopyFrom(records.error_info(error))
        return _finish(run, run_pb2.RUN_STATUS_FAILED, context)
    run.items_total = len(items)
    slots = [run.items.add() for _ in items]
    item_name, index_name = map_item_variable(task.for_each), map_index_variable(task.for_each)
    failed: list[int] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(items) and not failed:
            index = next_index
            next_index += 1
            item_run = await run_task(
                task,
                scope,
                context,
                job_run_id=job_run_id,
                predecessors=predecessors,
                record=slots[index],
                item_index=index,
                item_inputs={item_name: items[index], index_name: index},
            )
            if item_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
                failed.append(index)

    cap = max(context.max_concurrency, 1)
    if task.for_each.max_in_flight > 0:
        cap = min(cap, task.for_each.max_in_flight)
    await asyncio.gather(*(worker() for _ in range(min(cap, len(items)))))
    for index, slot in enumerate(slots):
        if not slot.task_run_id:  # never started: an earlier item failed
            slot.task_run_id = item_run_id(task.task_id, index)
            slot.task_id = task.task_id
            slot.job_run_id = job_run_id
            slot.item_index = index
            slot.status = run_pb2.RUN_STATUS_SKIPPED
        records.add_usage(run.usage, slot.usage)
        run.cost_usd += slot.cost_usd
    if failed:
        first = min(failed)
        run.error.CopyFrom(slots[first].error)
        run.error.message = f"{task.task_id}[{first}]: {slots[first].error.message}"
        return _finish(run, run_pb2.RUN_STATUS_FAILED, context)
    names = dataflow.task_output_names(task)
    outputs_of = [struct_to_dict(slot.outputs) for slot in slots]
    fill_struct(run.outputs, {name: [out.get(name) for out in outputs_of] for name in names})
    return _finish(run, run_pb2.RUN_STATUS_SUCCEEDED, context)


def _finish(
    run: run_pb2.TaskRun, status: run_pb2.RunStatus, context: RunContext
) -> run_pb2.TaskRun:
    run.status = status
    records.stamp(run.finished_at)
    detail = run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower()
    context.emit(EngineEvent(EventKind.TASK_FINISHED, run.task_id, detail=detail))
    return run

"""View models of the run page: a `JobRun` reshaped as plain JSON values for display.

`run_view` is the run page and its ``.json`` twin (header, one summary per task of the job,
timeline offsets); `task_view` is one task's details (inputs, outputs and every step's prompts,
response, model, usage and errors), fetched on demand so that a page of a 1,000-task run does not
carry every prompt. Both only reshape the record: they never read a store. A map task's summary
counts its items by status; its items themselves are listed by `map_view`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from llm_scheduler.config.maps import is_map
from llm_scheduler.config.strategies import is_strategy
from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.engine.records import add_usage
from llm_scheduler.v1 import config_pb2, run_pb2
from llm_scheduler.web.graph_layout import ItemProgress

__all__ = [
    "FINISHED_STATUSES",
    "STATUSES",
    "details_view",
    "error_view",
    "item_counts",
    "run_start_seconds",
    "run_view",
    "status_name",
    "step_view",
    "sub_job_name",
    "task_summary",
    "task_view",
    "timeline_view",
    "unrecorded_item_status",
]

# Statuses as the page and its JSON name them, in the order the page lists their counts
# ("waiting": a map task in a store, waiting for its items).
STATUSES = ("pending", "running", "succeeded", "failed", "skipped", "cancelled", "waiting")
# A run in one of these states changes no more (until it is resumed).
FINISHED_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
_RESUMABLE = frozenset({"failed", "cancelled"})
# Timeline geometry (SVG pixels): a label column, then the bars.
TIMELINE_LABEL_WIDTH = 190
TIMELINE_BAR_WIDTH = 600
TIMELINE_ROW_HEIGHT = 20
TIMELINE_AXIS_HEIGHT = 22
_TIMELINE_TICKS = 5
_TIMELINE_LABEL_CHARS = 24
_CANCELLABLE = frozenset({"pending", "running"})


def status_name(status: int) -> str:
    """A `RunStatus` as a short lower-case name (``succeeded``); unspecified is ``pending``."""
    if status == run_pb2.RUN_STATUS_UNSPECIFIED:
        return "pending"
    try:
        return run_pb2.RunStatus.Name(status).removeprefix("RUN_STATUS_").lower()
    except ValueError:  # a status a newer writer knows
        return "pending"


def run_view(
    job_run: run_pb2.JobRun,
    *,
    now: float | None = None,
    steps_done: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The run page's data: the run's header, and a summary of every task of its job.

    Tasks come in the job's task order; a task with no run yet is ``pending``. Timeline offsets
    are seconds since the run started (the job run's start, else its first task's).

    Args:
        job_run: The run, as `read_job_run` or a trace returns it.
        now: The current time (seconds since the epoch), for the elapsed time of an unfinished
            run; the clock by default.
        steps_done: How many steps each task has completed, for a run read without its step
            runs (``read_job_run(..., steps=False)``); else counted from its step runs.

    Returns:
        ``{"run": {...}, "tasks": [...], "counts": {status: n}}``, JSON values only.
    """
    runs = {task.task_id: task for task in job_run.tasks}
    start = run_start_seconds(job_run)
    tasks: list[dict[str, Any]] = []
    seen: set[str] = set()
    for config in job_run.config.tasks:
        seen.add(config.task_id)
        tasks.append(task_summary(config, runs.get(config.task_id), start, steps_done))
    # A run recorded against an older config (or a hand-edited trace) may hold tasks the config
    # does not: they are shown rather than hidden.
    for task in job_run.tasks:
        if task.task_id not in seen:
            tasks.append(task_summary(task.config, task, start, steps_done))
    status = status_name(job_run.status)
    usage, cost = job_run.usage, job_run.cost_usd
    if status not in FINISHED_STATUSES:
        # An unfinished run's totals are its tasks' (`read_job_run`), a map's only once it is
        # finished: add what its items have used so far.
        usage = run_pb2.TokenUsage()
        usage.CopyFrom(job_run.usage)
        for task in job_run.tasks:
            live = _items_so_far(task)
            if live is not None:
                add_usage(usage, live[0])
                cost += live[1]
    finished = _seconds(job_run.finished_at)
    end = finished if finished is not None else (time.time() if now is None else now)
    counts = Counter(task["status"] for task in tasks)
    return {
        "run": {
            "run_id": job_run.run_id,
            "job_id": job_run.job_id,
            "job_name": job_run.config.name or job_run.job_id,
            "description": job_run.config.description,
            "status": status,
            "finished": status in FINISHED_STATUSES,
            "started_at": _iso(job_run.started_at),
            "finished_at": _iso(job_run.finished_at),
            "duration_seconds": None if start is None else _round(max(end - start, 0.0)),
            "usage": _usage(usage),
            "cost_usd": cost,
            "parent_run_id": job_run.parent_run_id,
            "error": error_view(job_run.error),
            "inputs": _struct(job_run.inputs),
            "outputs": _struct(job_run.outputs),
            "tasks_total": len(tasks),
            "can_cancel": status in _CANCELLABLE,
            "can_resume": status in _RESUMABLE,
        },
        "tasks": tasks,
        "counts": {name: counts.get(name, 0) for name in STATUSES},
    }


def task_view(job_run: run_pb2.JobRun, task_id: str) -> dict[str, Any] | None:
    """One task's details: its summary, inputs, outputs, error and every step; None if unknown.

    Steps the task has not run yet are listed from its config as ``pending``. A map task's
    record holds no steps (its items do): `map_view.with_items` adds its items.
    """
    config = next((task for task in job_run.config.tasks if task.task_id == task_id), None)
    task = next((task for task in job_run.tasks if task.task_id == task_id), None)
    if task is not None and config is None:
        config = task.config
    if config is None:
        return None
    return details_view(job_run, config, task)


def details_view(
    job_run: run_pb2.JobRun, config: config_pb2.TaskConfig, task: run_pb2.TaskRun | None
) -> dict[str, Any]:
    """The details of a task's record, or of one of a map's items (`task_view`)."""
    start = run_start_seconds(job_run)
    view = task_summary(config, task, start)
    ran = {step.index: step for step in task.steps} if task is not None else {}
    configured = len(config.steps)
    steps = [
        step_view(ran[index], start) if index in ran else _pending_step(index, step)
        for index, step in enumerate(config.steps)
    ]
    # Steps past the config's (a run of an older config, an edited trace) are shown too.
    steps.extend(
        step_view(step, start) for index, step in sorted(ran.items()) if index >= configured
    )
    for view_of, step_config in zip(steps, config.steps, strict=False):
        view_of["sub_job"] = sub_job_name(step_config)
    view.update(
        {
            "run_id": job_run.run_id,
            "description": config.description,
            "inputs": _struct(task.inputs) if task is not None else {},
            "outputs": _struct(task.outputs) if task is not None else {},
            "error": error_view(task.error) if task is not None else None,
            "predecessors": list(task.predecessors) if task is not None else [],
            "next_tasks": _next_tasks(config),
            "steps": steps,
        }
    )
    return view


def step_view(step: run_pb2.StepRun, run_start: float | None = None) -> dict[str, Any]:
    """Everything a step run recorded, as JSON values (function fields None for model steps)."""
    started, finished = _seconds(step.started_at), _seconds(step.finished_at)
    return {
        "index": step.index,
        "step_id": step.step_id,
        "name": step.name,
        "type": _step_type(step.step_type),
        "status": status_name(step.status),
        "started_at": _iso(step.started_at),
        "finished_at": _iso(step.finished_at),
        "start_offset": _offset(started, run_start),
        "end_offset": _offset(finished, run_start),
        "inputs": _struct(step.inputs),
        "outputs": _struct(step.outputs),
        "system_prompt": step.system_prompt,
        "user_prompt": step.user_prompt,
        "response_text": step.response_text,
        "model_key": step.model_key,
        "provider": step.provider,
        "provider_model": step.provider_model,
        "parameters": _struct(step.parameters),
        "response_format": _response_format(step),
        "function_name": step.function_name,
        "function_request": (
            _value(step.function_request) if step.HasField("function_request") else None
        ),
        "function_response": (
            _value(step.function_response) if step.HasField("function_response") else None
        ),
        "embedding_input": step.embedding_input,
        "embedding": list(step.embedding),
        "usage": _usage(step.usage),
        "cost_usd": step.cost_usd,
        "latency_seconds": _round(step.latency_seconds),
        "attempts": step.attempts,
        "retries": max(step.attempts - 1, 0),
        "error": error_view(step.error),
        "cache_hit": step.cache_hit,
        "reused_from_run_id": step.reused_from_run_id,
        "fingerprint": step.fingerprint,
        "child_run_id": step.child_run_id,
    }


def error_view(error: run_pb2.ErrorInfo) -> dict[str, Any] | None:
    """An error as JSON, or None when there is none."""
    if not error.type and not error.message:
        return None
    return {
        "type": error.type,
        "message": error.message,
        "retryable": error.retryable,
        "http_status": error.http_status or None,
    }


def timeline_view(view: dict[str, Any]) -> dict[str, Any]:
    """The geometry of a run's timeline: one row per task, a bar from its start to its end.

    Computed here so that the page's template and its script draw the same SVG. A task still
    running reaches the run's current duration; a task not started has no bar.

    Args:
        view: What `run_view` returned.

    Returns:
        ``{"width", "height", "ticks": [{"x", "label"}], "rows": [{"task_id", "label", "status",
        "y", "bar": {"x", "width"} | None, "title"}]}``.
    """
    tasks: list[dict[str, Any]] = view["tasks"]
    ends = [view["run"]["duration_seconds"] or 0.0]
    ends += [t["end_offset"] or t["start_offset"] or 0.0 for t in tasks]
    span = max(max(ends), 1e-3)
    scale = TIMELINE_BAR_WIDTH / span
    rows = []
    for row, task in enumerate(tasks):
        start, end = task["start_offset"], task["end_offset"]
        bar = None
        title = f"{task['task_id']}: {task['status']}"
        if start is not None:
            stop = end if end is not None else span
            x = TIMELINE_LABEL_WIDTH + start * scale
            bar = {"x": round(x, 1), "width": round(max((stop - start) * scale, 2.0), 1)}
            title += f", {start:.3f} s to " + (f"{end:.3f} s" if end is not None else "now")
        label = task["name"] or task["task_id"]
        if len(label) > _TIMELINE_LABEL_CHARS:
            label = label[: _TIMELINE_LABEL_CHARS - 1] + "\u2026"
        rows.append(
            {
                "task_id": task["task_id"],
                "label": label,
                "status": task["status"],
                "y": TIMELINE_AXIS_HEIGHT + row * TIMELINE_ROW_HEIGHT,
                "bar": bar,
                "title": title,
            }
        )
    step = _tick_step(span)
    started = any(row["bar"] is not None for row in rows)
    ticks = [
        {"x": round(TIMELINE_LABEL_WIDTH + i * step * scale, 1), "label": _seconds_label(i * step)}
        for i in range(int(span / step + 1e-9) + 1 if started else 0)
    ]
    return {
        "width": TIMELINE_LABEL_WIDTH + TIMELINE_BAR_WIDTH + 40,
        "height": TIMELINE_AXIS_HEIGHT + max(len(rows), 1) * TIMELINE_ROW_HEIGHT + 4,
        "row_height": TIMELINE_ROW_HEIGHT,
        "label_width": TIMELINE_LABEL_WIDTH,
        "ticks": ticks,
        "rows": rows,
    }


# -- helpers ------------------------------------------------------------------------------------


def item_counts(task: run_pb2.TaskRun | None) -> dict[str, int] | None:
    """A map's items per status (those it holds no record of: `unrecorded_item_status`).

    Unknown: the map has no record yet, or has not read its list (no items, not finished).
    """
    if task is None:
        return None
    total = max(task.items_total, len(task.items))
    if not total and status_name(task.status) not in FINISHED_STATUSES:
        return None
    counts = Counter(status_name(item.status) for item in task.items)
    counts[unrecorded_item_status(task)] += total - len(task.items)
    return {name: counts.get(name, 0) for name in STATUSES}


def unrecorded_item_status(task: run_pb2.TaskRun | None) -> str:
    """The status of a map's item it holds no record of: one not created (or not started) yet.

    In a store, a map creates its items as earlier ones succeed, so a map that failed or was
    cancelled never creates its later items: they are ``skipped`` (``cancelled`` with a
    cancelled map), as a run in process records them. While the map goes on they are pending.
    """
    status = status_name(task.status) if task is not None else "pending"
    if status == "cancelled":
        return "cancelled"
    return "skipped" if status in FINISHED_STATUSES else "pending"


def task_summary(
    config: config_pb2.TaskConfig,
    task: run_pb2.TaskRun | None,
    run_start: float | None,
    steps_done: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A task's (or a map item's) row: status, attempt, times, usage, steps; maps' item counts.

    ``items_total`` and ``items_counts`` (per status) are None for a task that is no map, and
    for a map that has not read its list yet; ``items_label`` is a map's `ItemProgress.label`.
    """
    strategy = is_strategy(config)
    mapped = is_map(config) or strategy  # a strategy records one item per variation
    counts = item_counts(task) if mapped else None
    total = None if counts is None else sum(counts.values())
    noun = "variations" if strategy else "items"
    items = {
        "is_map": mapped and not strategy,
        "is_strategy": strategy,
        "items_total": total,
        "items_counts": counts,
        "items_label": ItemProgress(total, counts or {}, noun).label() if mapped else None,
    }
    if task is None:
        return items | {
            "task_id": config.task_id,
            "name": config.name,
            "status": "pending",
            "attempt": 0,
            "started_at": None,
            "finished_at": None,
            "start_offset": None,
            "end_offset": None,
            "duration_seconds": None,
            "usage": _usage(run_pb2.TokenUsage()),
            "cost_usd": 0.0,
            "step_count": len(config.steps),
            "steps_done": 0,
            "error": None,
        }
    started, finished = _seconds(task.started_at), _seconds(task.finished_at)
    error = error_view(task.error)
    usage, cost = (_items_so_far(task) if mapped else None) or (task.usage, task.cost_usd)
    return items | {
        "task_id": task.task_id,
        "name": config.name or task.config.name,
        "status": status_name(task.status),
        "attempt": task.attempt,
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
        "start_offset": _offset(started, run_start),
        "end_offset": _offset(finished, run_start),
        "duration_seconds": (
            _round(finished - started) if started is not None and finished is not None else None
        ),
        "usage": _usage(usage),
        "cost_usd": cost,
        "step_count": max(len(config.steps), len(task.steps)),
        "steps_done": (
            steps_done.get(task.task_id, 0)
            if steps_done is not None
            else sum(step.status == run_pb2.RUN_STATUS_SUCCEEDED for step in task.steps)
        ),
        "error": None if error is None else _one_line(error),
    }


def _items_so_far(task: run_pb2.TaskRun) -> tuple[run_pb2.TokenUsage, float] | None:
    """What a map's items have used so far; None for a finished map, or one with no items.

    In a store, a map records its items' totals only when it finishes.
    """
    if not task.items or status_name(task.status) in FINISHED_STATUSES | {"skipped"}:
        return None
    usage = run_pb2.TokenUsage()
    for item in task.items:
        add_usage(usage, item.usage)
    return usage, sum(item.cost_usd for item in task.items)


def _pending_step(index: int, config: config_pb2.StepConfig) -> dict[str, Any]:
    function = config.function_call_config
    return {
        "index": index,
        "step_id": config.id,
        "name": config.name,
        "type": _step_type(config.step_type),
        "status": "pending",
        "model_key": config.model_query_config.model_key or config.embedding_config.model_key,
        "function_name": function.function_name,
        "child_run_id": "",
    }


def run_start_seconds(job_run: run_pb2.JobRun) -> float | None:
    """When the run started (seconds since the epoch), which offsets count from; None if not.

    The job run's start alone when it has one (a task's details then need no other task), else
    its first task's.
    """
    start = _seconds(job_run.started_at)
    if start is not None:
        return start
    starts = [s for s in (_seconds(task.started_at) for task in job_run.tasks) if s is not None]
    return min(starts) if starts else None


def sub_job_name(step: config_pb2.StepConfig) -> str | None:
    """What a sub-job step runs (its ``job_path``, else its child's job id); None for others."""
    if step.step_type != config_pb2.STEP_TYPE_SUB_JOB:
        return None
    config = step.sub_job_config
    return config.job_path or config.job.job_id or "inline job"


def _next_tasks(config: config_pb2.TaskConfig) -> list[str]:
    successors = list(config.next_tasks)
    if config.next_task and config.next_task not in successors:
        successors.insert(0, config.next_task)
    return successors


def _step_type(step_type: int) -> str:
    try:
        return config_pb2.StepType.Name(step_type).removeprefix("STEP_TYPE_").lower()
    except ValueError:
        return "unknown"


def _response_format(step: run_pb2.StepRun) -> dict[str, Any] | None:
    if not step.HasField("response_format"):
        return None
    view = json_format.MessageToDict(step.response_format, preserving_proto_field_name=True)
    return view or None


def _one_line(error: dict[str, Any]) -> str:
    kind, message = error["type"], error["message"]
    return f"{kind}: {message}" if kind and message else str(kind or message)


def _usage(usage: run_pb2.TokenUsage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "cache_write_input_tokens": usage.cache_write_input_tokens,
    }


def _struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    try:
        return struct_to_dict(struct)
    except ValueError:  # NaN or an infinity, which JSON has no numbers for
        return {key: _lenient(struct.fields[key]) for key in sorted(struct.fields)}


def _value(value: struct_pb2.Value) -> Any:
    try:
        return value_to_python(value)
    except ValueError:
        return _lenient(value)


def _lenient(value: struct_pb2.Value) -> Any:
    """A `Value` as JSON, with non-finite numbers spelled as strings (``NaN``, ``Infinity``)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value" and not math.isfinite(value.number_value):
        return str(value.number_value).replace("inf", "Infinity").replace("nan", "NaN")
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return value_to_python(value)


def _seconds(stamp: timestamp_pb2.Timestamp) -> float | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.seconds + stamp.nanos / 1e9


def _iso(stamp: timestamp_pb2.Timestamp) -> str | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToJsonString()


def _offset(moment: float | None, run_start: float | None) -> float | None:
    if moment is None or run_start is None:
        return None
    # The start task is claimed a moment before the job run is marked started.
    return _round(max(moment - run_start, 0.0))


def _tick_step(span: float) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `_TIMELINE_TICKS` ticks."""
    rough = span / _TIMELINE_TICKS
    power = 10.0 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def _seconds_label(seconds: float) -> str:
    if seconds <= 0:
        return "0"
    if seconds >= 120:
        return f"{seconds / 60:.3g} min"
    if seconds >= 1:
        return f"{seconds:.3g} s"
    return f"{seconds * 1000:.3g} ms"


def _round(seconds: float) -> float:
    return round(seconds, 3)

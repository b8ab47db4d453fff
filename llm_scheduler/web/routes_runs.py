"""The runs side of the web UI: the run list, the run page, live progress, actions and traces.

Pages (each with its ``.json`` twin): ``/runs``, ``/runs/{id}``, ``/runs/{id}/tasks/{task}``
(a map task's items a page at a time), ``/runs/{id}/tasks/{task}/items/{index}`` (one item of a
map) and ``/traces/view``. ``/runs/{id}/events`` streams a run's progress events (server-sent
events); ``/runs/{id}/trace.json`` downloads its trace. Actions (JSON POSTs):
``/api/runs/{id}/cancel``, ``/api/runs/{id}/resume`` and ``/api/traces/view`` (an uploaded
trace, read back as the run page's data). The data comes from the library (`list_runs`,
`read_job_run`, `cancel_run`, `resume_run`, `loads_trace`), reshaped by `run_view`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from llm_scheduler.config import formats
from llm_scheduler.errors import ConfigError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.run_list import STATUSES, list_runs
from llm_scheduler.store.base import Store
from llm_scheduler.trace import loads_trace, to_trace
from llm_scheduler.v1 import run_pb2
from llm_scheduler.web.app import StateDep, WebState, respond
from llm_scheduler.web.graph_layout import layout_job
from llm_scheduler.web.live import run_event_stream
from llm_scheduler.web.map_view import (
    ITEMS_PAGE,
    MAX_ITEMS_PAGE,
    graph_items,
    item_view,
    with_items,
)
from llm_scheduler.web.run_view import run_view, task_view, timeline_view
from llm_scheduler.web.strategy_view import strategy_view
from llm_scheduler.web.sub_job_view import (
    add_child_runs,
    caller_view,
    child_view,
    read_children,
    run_url,
    waiting_children,
)

__all__ = ["TraceUpload", "router", "run_page_data"]

router = APIRouter()

T = TypeVar("T")

# Runs per page of the run list.
PAGE_SIZE = 50
# A run with more tasks has its task table and timeline drawn by the page's script.
LARGE_RUN_TASKS = 200
# Task statuses whose completed steps are counted (a task that succeeded did all of them).
_STEPPING = (run_pb2.RUN_STATUS_RUNNING, run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_STATUS_CANCELLED)


class TraceUpload(BaseModel):
    """A trace to view: the object a trace file holds (see docs/traces.md)."""

    trace: Any = Field(description="The trace file's JSON object.")


@router.get("/", include_in_schema=False)
async def home() -> Response:
    """The run list."""
    return RedirectResponse("/runs", status_code=302)


@router.get("/runs.json")
@router.get("/runs")
async def runs_page(
    request: Request,
    state: StateDep,
    job_id: str = "",
    status: str = "",
    cursor: str = "",
    limit: int = PAGE_SIZE,
) -> Response:
    """The job runs, newest first, by job and status, a page at a time (cursor)."""
    page = await _blocking(
        list_runs, state.store, job_id=job_id, status=status, limit=limit, cursor=cursor
    )
    runs = []
    for summary in page.runs:
        run = summary.to_json()
        run["status"] = run["status"].lower() or "pending"
        run["url"] = run_url(summary.run_id)
        # A sub-job step's child run is listed too, marked as the child of its caller.
        run["caller_url"] = run_url(summary.caller_run_id) if summary.caller_run_id else None
        runs.append(run)
    filters = {"job_id": job_id, "status": status, "limit": "" if limit == PAGE_SIZE else limit}
    next_url = _runs_url(**filters, cursor=page.next_cursor) if page.next_cursor else None
    data = {
        "runs": runs,
        "next_cursor": page.next_cursor,
        "next_url": next_url,
        "first_url": _runs_url(**filters) if cursor else None,
        "filters": {"job_id": job_id, "status": status.lower()},
        "statuses": [name.lower() for name in STATUSES],
    }
    return respond(request, "runs.html", data)


# Decorators apply bottom-up: the `.json` route is registered first, so that `{run_id}` never
# swallows "ID.json".
@router.get("/runs/{run_id}")
@router.get("/runs/{run_id}.json")
async def run_page(request: Request, run_id: str, state: StateDep) -> Response:
    """A run: its header, task graph coloured by status, timeline and tasks."""
    found = await _blocking(_read_summary, state.store, run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id!r} in {state.store.url}")
    job_run, steps_done = found
    data = await asyncio.to_thread(run_page_data, job_run, steps_done=steps_done)
    return respond(request, "run.html", data)


@router.get("/runs/{run_id}/tasks/{task_id}")
@router.get("/runs/{run_id}/tasks/{task_id}.json")
async def task_page(
    request: Request,
    run_id: str,
    task_id: str,
    state: StateDep,
    items_offset: int = 0,
    items_limit: int = ITEMS_PAGE,
) -> Response:
    """One task of a run: inputs, outputs, error and every step's prompts, response and usage.

    A map task lists its items instead (status, usage, error: no steps), ``items_limit`` (at
    most 1,000) from ``items_offset``; each item's steps are at ``.../items/{index}``. A
    strategy task's ``strategy`` compares its variations (`strategy_view`); else it is None.
    """
    # Only this task's run is read: a large run's other tasks may hold many prompts.
    job_run = await _read(state, run_id, task_ids=[task_id])
    limit = min(max(items_limit, 1), MAX_ITEMS_PAGE)

    def view_of() -> dict[str, Any] | None:
        view = task_view(job_run, task_id)
        if view is None:
            return None
        view = with_items(view, job_run, offset=items_offset, limit=limit)
        view["strategy"] = strategy_view(job_run, task_id)
        if view["map"] is None:  # a map's items link their children on their own pages
            add_child_runs(view, read_children(state.store, run_id, job_run.tasks))
        return view

    view = await asyncio.to_thread(view_of)
    if view is None:
        raise HTTPException(404, f"run {run_id!r} has no task {task_id!r}")
    view["job_id"] = job_run.job_id
    return respond(request, "run_task.html", view)


@router.get("/runs/{run_id}/tasks/{task_id}/items/{index}")
@router.get("/runs/{run_id}/tasks/{task_id}/items/{index}.json")
async def item_page(
    request: Request, run_id: str, task_id: str, index: int, state: StateDep
) -> Response:
    """One item of a map task: its inputs (the item bound), outputs, error and every step."""
    job_run = await _read(state, run_id, task_ids=[task_id])

    def view_of() -> dict[str, Any] | None:
        view = item_view(job_run, task_id, index)
        if view is None:
            return None
        items = [item for task in job_run.tasks for item in task.items if item.item_index == index]
        return add_child_runs(view, read_children(state.store, run_id, items))

    view = await asyncio.to_thread(view_of)
    if view is None:
        raise HTTPException(404, f"run {run_id!r} has no map task {task_id!r} with item {index}")
    view["job_id"] = job_run.job_id
    return respond(request, "run_task.html", view)


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, run_id: str, state: StateDep) -> Response:
    """The run's progress events as server-sent events, live, until it finishes."""
    if await _blocking(state.store.get, docs.job_run_path(run_id)) is None:
        raise HTTPException(404, f"no run {run_id!r} in {state.store.url}")
    stream = run_event_stream(
        state.store,
        run_id,
        after=request.headers.get("last-event-id", ""),
        is_disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/runs/{run_id}/trace.json")
async def run_trace(run_id: str, state: StateDep) -> Response:
    """The run as a trace file (download), to read, edit or replay elsewhere."""
    job_run = await _read(state, run_id)
    body = await asyncio.to_thread(formats.dumps, to_trace(job_run), formats.ConfigFormat.JSON)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="trace-{run_id}.json"'},
    )


@router.post("/api/runs/{run_id}/cancel")
async def cancel(run_id: str, state: StateDep) -> Response:
    """Cancels a pending or running run: no task starts any more; returns the tasks cancelled."""
    await _require_run(state, run_id)
    cancelled = await _blocking(cancel_run, state.store, run_id)
    return JSONResponse({"run_id": run_id, "cancelled": cancelled})


@router.post("/api/runs/{run_id}/resume")
async def resume(run_id: str, state: StateDep) -> Response:
    """Requeues a failed or cancelled run's unfinished tasks; a dispatcher continues it."""
    await _require_run(state, run_id)
    requeued = await _blocking(resume_run, state.store, run_id)
    return JSONResponse({"run_id": run_id, "requeued": requeued})


@router.get("/traces/view.json")
@router.get("/traces/view")
async def trace_view_page(request: Request) -> Response:
    """A page to open a trace file and view it as a run page (nothing is stored)."""
    return respond(request, "trace_view.html", {"upload_url": "/api/traces/view"})


@router.post("/api/traces/view")
async def view_trace(body: TraceUpload) -> dict[str, Any]:
    """Reads an uploaded trace; returns the run page's data, with every task's details."""
    return await asyncio.to_thread(_trace_data, body.trace)


def _runs_url(**query: object) -> str:
    present = {name: value for name, value in query.items() if value}
    return "/runs?" + urlencode(present) if present else "/runs"


def run_page_data(
    job_run: run_pb2.JobRun,
    *,
    read_only: bool = False,
    steps_done: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The run page's data: `run_view` with the graph, the timeline and the page's links.

    Args:
        job_run: The run.
        read_only: For a run that is not in the store (an uploaded trace): no links to it and
            no actions.
        steps_done: The steps each task completed, when ``job_run`` holds no step runs.
    """
    view = run_view(job_run, steps_done=steps_done)
    # A sub-job step's child names its caller; a task waiting for its child names the child.
    view["run"]["caller"] = caller_view(job_run, linked=not read_only)
    waiting = waiting_children(job_run)
    for task in view["tasks"]:
        child = waiting.get(task["task_id"]) if task["status"] == "waiting" else None
        task["waiting_child"] = (
            None if child is None else child_view(child.run_id, child, linked=not read_only)
        )
    statuses = {task["task_id"]: task["status"] for task in view["tasks"]}
    view["graph"] = layout_job(job_run.config, statuses=statuses, items=graph_items(view))
    view["timeline"] = timeline_view(view)
    run = view["run"]
    # A large run's page leaves its task table and timeline to the script (drawn from this
    # JSON once the graph is up), which keeps the first HTML small enough to be usable soon.
    view["large"] = len(view["tasks"]) > LARGE_RUN_TASKS
    view["read_only"] = read_only
    view["live"] = not read_only and not run["finished"]
    if read_only:
        run["can_cancel"] = run["can_resume"] = False
        view["links"] = {}
        return view
    base = f"/runs/{job_run.run_id}"
    view["links"] = {
        "self": base,
        "json": f"{base}.json",
        "events": f"{base}/events",
        "tasks": f"{base}/tasks/",
        "trace": f"{base}/trace.json",
        "what_if": f"{base}/what-if",
        "cancel": f"/api/runs/{job_run.run_id}/cancel",
        "resume": f"/api/runs/{job_run.run_id}/resume",
        "parent": run_url(run["parent_run_id"]) if run["parent_run_id"] else None,
        "caller": run["caller"]["url"] if run["caller"] else None,
        "job": f"/jobs/edit?{urlencode({'job_id': job_run.job_id})}" if job_run.job_id else None,
    }
    return view


def _trace_data(trace: Any) -> dict[str, Any]:
    if not isinstance(trace, dict):
        raise ConfigError.single(
            "trace",
            f"a trace is a JSON object, not {type(trace).__name__}",
            "open a file written by trace_export, job_runner --trace_out or a run page's "
            "Download trace",
            "the uploaded trace",
        )
    job_run = loads_trace(json.dumps(trace), "the uploaded trace")
    view = run_page_data(job_run, read_only=True)
    # A trace is not in the store, so the page cannot fetch a task or an item later: every
    # item's details come now (the page draws an item's steps only when it is opened).
    view["details"] = {}
    for task in view["tasks"]:
        details = task_view(job_run, task["task_id"])
        if details is not None:
            details = with_items(details, job_run, limit=None, details=True)
            details["strategy"] = strategy_view(job_run, task["task_id"])
            # A trace holds its children (not their pages): a step names its child's id.
            children = {child.run_id: child for child in job_run.children}
            if details["map"] is None:
                add_child_runs(details, children, linked=False)
            for row in details.get("items") or []:
                add_child_runs(row["details"], children, linked=False)
        view["details"][task["task_id"]] = details
    return view


def _read_summary(store: Store, run_id: str) -> tuple[run_pb2.JobRun, dict[str, int]] | None:
    """A run without its step runs (the page shows none), and how many steps each task did.

    A task that succeeded did all its steps and one not started none; the others' persisted
    steps are counted (an index count each, and only a few tasks run or fail at a time).
    """
    job_run = read_job_run(store, run_id, steps=False)
    if job_run is None:
        return None
    done: dict[str, int] = {}
    for task in job_run.tasks:
        if task.status == run_pb2.RUN_STATUS_SUCCEEDED:
            done[task.task_id] = len(task.config.steps)
        elif task.status in _STEPPING:
            done[task.task_id] = store.count(docs.step_runs_collection(run_id, task.task_id))
    return job_run, done


async def _read(state: WebState, run_id: str, task_ids: list[str] | None = None) -> run_pb2.JobRun:
    job_run = await _blocking(read_job_run, state.store, run_id, task_ids=task_ids)
    if job_run is None:
        raise HTTPException(404, f"no run {run_id!r} in {state.store.url}")
    return job_run


async def _require_run(state: WebState, run_id: str) -> None:
    if await _blocking(state.store.get, docs.job_run_path(run_id)) is None:
        raise HTTPException(404, f"no run {run_id!r} in {state.store.url}")


async def _blocking(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Runs a blocking store call in a worker thread: reads of a large run take a while."""
    return await asyncio.to_thread(function, *args, **kwargs)

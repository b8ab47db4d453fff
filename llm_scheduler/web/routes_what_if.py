"""What-if editing, replays and comparisons in the web UI.

Pages: ``/runs/{id}/what-if`` (edit a finished run's responses, outputs, inputs and prompts, see
the replay plan, replay) and ``/runs/{id}/compare`` (a run beside its parent, or ``?with=ID``),
each with its ``.json`` twin. Actions (JSON POSTs): ``/api/runs/{id}/replay-plan`` and
``/api/runs/{id}/replay``, and the same for an uploaded trace under ``/api/traces/``. Plans,
replays and comparisons are the library's (`llm_scheduler.execution.replay_run`,
`llm_scheduler.engine.replay_plan`, `llm_scheduler.engine.run_compare`): what the page shows before
running is what ``job_runner --plan`` prints and what the replay then does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.engine.run_compare import compare_runs
from llm_scheduler.engine.what_if import apply_edits, edits_from_json
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.replay_run import edited_run, plan_stored_replay, submit_replay
from llm_scheduler.models.client import ModelClient
from llm_scheduler.trace import loads_trace
from llm_scheduler.v1 import config_pb2, run_pb2
from llm_scheduler.web.app import StateDep, WebState, respond
from llm_scheduler.web.graph_layout import layout_job
from llm_scheduler.web.map_view import graph_items
from llm_scheduler.web.run_view import run_view, task_view

__all__ = ["ReplayRequest", "TraceReplayRequest", "router"]

router = APIRouter()

_EDITS_DOC = (
    "What-if edits, e.g. [{'kind': 'step_response', 'task_id': 't', 'step_index': 0, "
    "'value': 'new answer'}]; kinds: step_response, step_outputs, task_inputs, job_inputs, "
    "step_prompt (see docs/traces.md)."
)


class ReplayRequest(BaseModel):
    """Edits to apply to a stored run before planning or replaying it."""

    edits: list[Any] = Field(default_factory=list, description=_EDITS_DOC)


class TraceReplayRequest(BaseModel):
    """An uploaded trace (the object a trace file holds), and edits to apply to it."""

    trace: dict[str, Any]
    edits: list[Any] = Field(default_factory=list, description=_EDITS_DOC)
    offline: bool | None = Field(None, description="Use the offline model; default: the server's")


@router.get("/runs/{run_id}/what-if.json")
@router.get("/runs/{run_id}/what-if")
async def what_if_page(request: Request, run_id: str, state: StateDep) -> Response:
    """A run's editable results: change responses, outputs, inputs or prompts, then replay."""
    job_run = await _read(state, run_id)
    return respond(request, "what_if.html", await asyncio.to_thread(_what_if_view, job_run))


@router.get("/runs/{run_id}/what-if/tasks/{task_id}.json")
async def what_if_task(run_id: str, task_id: str, state: StateDep) -> dict[str, Any]:
    """One task's recorded steps with the prompt templates of its config, to edit."""
    job_run = await _read(state, run_id)
    view = await asyncio.to_thread(task_view, job_run, task_id)
    if view is None:
        raise HTTPException(404, f"run {run_id!r} has no task {task_id!r}")
    config = next((t for t in job_run.config.tasks if t.task_id == task_id), None)
    for step in view["steps"]:
        step_config = (
            config.steps[step["index"]]
            if config is not None and step["index"] < len(config.steps)
            else None
        )
        query = step_config.model_query_config if step_config is not None else None
        is_model = step_config is not None and (
            step_config.step_type == config_pb2.STEP_TYPE_MODEL_QUERY
        )
        step["prompt_template"] = (
            {"system_prompt": query.system_prompt, "user_prompt": query.user_prompt}
            if query is not None and is_model
            else None
        )
        step["editable"] = step["status"] == "succeeded"
    return view


@router.post("/api/runs/{run_id}/replay-plan")
async def replay_plan(run_id: str, body: ReplayRequest, state: StateDep) -> dict[str, Any]:
    """Which steps a replay with these edits reuses and which it runs, with estimated costs."""
    edits = edits_from_json(body.edits)
    context = _context(state)
    plan = await state.call(plan_stored_replay, state.store, run_id, edits, context)
    return plan.to_json()


@router.post("/api/runs/{run_id}/replay", status_code=201)
async def replay(run_id: str, body: ReplayRequest, state: StateDep) -> Response:
    """Replays a run with these edits as a new run linked to it; a dispatcher runs it."""
    edits = edits_from_json(body.edits)
    context = _context(state)

    def submit() -> str:
        return submit_replay(state.store, edited_run(state.store, run_id, edits), context)

    new_id = await state.call(submit)
    return _created(new_id, run_id)


@router.post("/api/traces/replay-plan")
async def trace_replay_plan(body: TraceReplayRequest, state: StateDep) -> dict[str, Any]:
    """Which steps a replay of an uploaded trace (with edits) reuses and runs."""
    source = await asyncio.to_thread(_edited_trace, body)
    plan = await asyncio.to_thread(plan_replay, source.config, source, _context(state))
    return plan.to_json()


@router.post("/api/traces/replay", status_code=201)
async def trace_replay(body: TraceReplayRequest, state: StateDep) -> Response:
    """Replays an uploaded trace (with edits) as a new run in the store."""
    source = await asyncio.to_thread(_edited_trace, body)
    offline = state.settings.offline if body.offline is None else body.offline
    context = _context(state)

    def submit() -> str:
        return submit_replay(state.store, source, context, offline=offline)

    new_id = await state.call(submit)
    return _created(new_id, source.run_id)


@router.get("/runs/{run_id}/compare.json")
@router.get("/runs/{run_id}/compare")
async def compare_page(
    request: Request, run_id: str, state: StateDep, with_run: str = ""
) -> Response:
    """A run beside its parent (or ``?with_run=ID``): what changed in every output."""
    after = await _read(state, run_id)
    other = with_run or after.parent_run_id
    if not other:
        raise HTTPException(400, f"run {run_id!r} has no parent run: give ?with_run=RUN_ID")
    before = await _read(state, other)
    comparison = await asyncio.to_thread(compare_runs, before, after)
    data = comparison.to_json()
    for task in data["tasks"]:
        task["before_text"] = _pretty(task["before_outputs"])
        task["after_text"] = _pretty(task["after_outputs"])
        for step in task["steps"]:
            step["before_text"] = _pretty(step["before_outputs"])
            step["after_text"] = _pretty(step["after_outputs"])
    data["job_id"] = after.job_id
    return respond(request, "compare.html", data)


def _what_if_view(job_run: run_pb2.JobRun) -> dict[str, Any]:
    view = run_view(job_run)
    statuses = {task["task_id"]: task["status"] for task in view["tasks"]}
    return {
        "run": view["run"],
        "tasks": view["tasks"],
        "graph": layout_job(job_run.config, statuses=statuses, items=graph_items(view)),
        "inputs_text": _pretty(view["run"]["inputs"]),
    }


def _edited_trace(body: TraceReplayRequest) -> run_pb2.JobRun:
    recorded = loads_trace(json.dumps(body.trace), "the uploaded trace")
    return apply_edits(recorded, edits_from_json(body.edits))


async def _read(state: WebState, run_id: str) -> run_pb2.JobRun:
    job_run = await state.call(read_job_run, state.store, run_id)
    if job_run is None:
        raise HTTPException(404, f"no run {run_id!r} in the store")
    return job_run


def _context(state: WebState) -> RunContext:
    """Models and functions as the workers have them, for validating and planning (no calls)."""
    return RunContext(
        models=ModelClient(state.registry, offline=state.settings.offline),
        functions=state.functions,
    )


def _created(run_id: str, parent_run_id: str) -> Response:
    return JSONResponse(
        {
            "run_id": run_id,
            "parent_run_id": parent_run_id,
            "url": f"/runs/{run_id}",
            "compare_url": f"/runs/{run_id}/compare",
        },
        status_code=201,
    )


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)

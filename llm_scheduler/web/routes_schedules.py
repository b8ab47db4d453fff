"""The schedules page of the web UI: list, add, pause, resume and remove schedules.

Page: ``/schedules`` (and ``/schedules.json``). Actions (same-origin JSON POSTs, as every
action): ``/api/schedules`` (add) and ``/api/schedules/{id}/pause``, ``.../resume``,
``.../remove``; ``/api/schedules/check`` checks the add form without adding. Each calls
`execution.schedules`, as the ``schedule`` CLI does; the schedules fire wherever `fire_due`
runs (a dispatcher, or the cloud function).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from llm_scheduler.errors import ConfigError
from llm_scheduler.execution import schedules
from llm_scheduler.execution.schedule_config import check_schedule
from llm_scheduler.store import Store
from llm_scheduler.web.app import StateDep, respond
from llm_scheduler.web.schedule_view import (
    field_problems,
    schedule_config,
    schedule_row,
    schedules_view,
)

__all__ = ["AddScheduleRequest", "router"]

router = APIRouter()


class AddScheduleRequest(BaseModel):
    """The add form: a schedule of a saved job (``store:ID``) or a configs-folder file."""

    schedule_id: str = ""
    job: str = Field("", description="store:JOB_ID (a saved job) or file:PATH (a config file)")
    cron: str = Field("", description="Five fields, e.g. */5 * * * *")
    time_zone: str = Field("", description="An IANA time zone; UTC by default")
    inputs: str = Field("", description="The runs' inputs, a JSON object as text")
    overlap: str = Field("skip", description="skip or allow")
    catch_up: str = Field("latest", description="latest, none or all")


@router.get("/schedules.json")
@router.get("/schedules")
async def schedules_page(request: Request, state: StateDep) -> Response:
    """Every schedule: job, cron and zone, paused, next fire times, last slot and its runs."""
    data = await state.call(schedules_view, state.store, state.settings.configs_dir)
    return respond(request, "schedules.html", data)


@router.post("/api/schedules", status_code=201)
async def add(body: AddScheduleRequest, state: StateDep) -> Response:
    """Adds a schedule; a problem comes back at its form field (``problems[].field``), 422."""
    configs_dir = state.settings.configs_dir

    def add_it() -> dict[str, Any]:
        config = schedule_config(state.store, configs_dir, body.model_dump())
        added = schedules.add_schedule(
            state.store, config, models=state.registry, functions=state.functions
        )
        return schedule_row(state.store, added)

    try:
        row = await state.call(add_it)
    except ConfigError as error:
        return JSONResponse(
            {"error": str(error), "problems": field_problems(error)}, status_code=422
        )
    return JSONResponse({"schedule": row}, status_code=201)


@router.post("/api/schedules/check")
async def check(body: AddScheduleRequest, state: StateDep) -> dict[str, Any]:
    """Checks the add form without adding: its problems (``problems[].field``), 200 either way.

    The form's values and the schedule's own fields are checked (the job itself is validated
    when it is added), so the page can show problems at their fields before it adds.
    """
    configs_dir = state.settings.configs_dir

    def check_it() -> None:
        check_schedule(schedule_config(state.store, configs_dir, body.model_dump()))

    try:
        await state.call(check_it)
    except ConfigError as error:
        return {"ok": False, "problems": field_problems(error)}
    return {"ok": True, "problems": []}


@router.post("/api/schedules/{schedule_id}/pause")
async def pause(schedule_id: str, state: StateDep) -> dict[str, Any]:
    """Pauses a schedule: it fires nothing until resumed."""
    return await state.call(_act, state.store, schedule_id, schedules.pause_schedule)


@router.post("/api/schedules/{schedule_id}/resume")
async def resume(schedule_id: str, state: StateDep) -> dict[str, Any]:
    """Resumes a schedule from its next slot after now."""
    return await state.call(_act, state.store, schedule_id, schedules.resume_schedule)


@router.post("/api/schedules/{schedule_id}/remove")
async def remove(schedule_id: str, state: StateDep) -> dict[str, Any]:
    """Removes a schedule; its runs stay."""
    await state.call(schedules.remove_schedule, state.store, schedule_id)
    return {"schedule_id": schedule_id, "removed": True}


def _act(
    store: Store, schedule_id: str, action: Callable[[Store, str], schedules.Schedule]
) -> dict[str, Any]:
    return {"schedule": schedule_row(store, action(store, schedule_id))}

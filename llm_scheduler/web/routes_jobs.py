"""The jobs side of the web UI: the jobs list, the config editor, and validate, save and run.

Pages: ``/jobs`` and ``/jobs/edit`` (each with its ``.json`` twin). Actions (JSON POSTs):
``/api/validate``, ``/api/jobs`` and ``/api/runs``. The checks are the CLI's own
(`job_configs.check_job_text`: `formats` and `Validator`), and runs are committed with
`submit_job`, for a dispatcher to run.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from llm_scheduler.config import formats
from llm_scheduler.errors import UserError
from llm_scheduler.execution.submit import load_job_definition, save_job_definition, submit_job
from llm_scheduler.web import job_configs
from llm_scheduler.web.app import StateDep, WebState, respond

__all__ = ["RunRequest", "SaveRequest", "ValidateRequest", "router"]

router = APIRouter()


class ValidateRequest(BaseModel):
    """A config text to check."""

    text: str
    format: str = Field("json", description="json (with // comments) or textproto")
    file: str = Field("", description="The file name problems should name, if any.")


class SaveRequest(BaseModel):
    """A job config text to save in the store."""

    text: str
    format: str = "json"


class RunRequest(BaseModel):
    """A run to start: a job saved in the store (``job_id``), or a config text."""

    job_id: str = ""
    text: str | None = None
    format: str = "json"
    inputs: dict[str, Any] = Field(default_factory=dict)
    offline: bool | None = Field(None, description="Use the offline model; default: the server's")


@router.get("/jobs.json")
@router.get("/jobs")
async def jobs_page(request: Request, state: StateDep) -> Response:
    """The job configs saved in the store and those of the configs folder."""
    configs_dir = state.settings.configs_dir
    entries = await state.call(job_configs.list_jobs, state.store, configs_dir)
    data = {"configs_dir": configs_dir, "jobs": [entry.to_json() for entry in entries]}
    return respond(request, "jobs.html", data)


@router.get("/jobs/edit.json")
@router.get("/jobs/edit")
async def edit_page(
    request: Request, state: StateDep, file: str = "", job_id: str = ""
) -> Response:
    """The editor: a config (from the folder, the store, or a new one), checked, with its graph."""
    source = "new"
    fmt = formats.ConfigFormat.JSON
    if file:
        path = job_configs.config_file(state.settings.configs_dir, file)
        text, fmt = await asyncio.to_thread(job_configs.read_config_file, path)
        source = path
    elif job_id:
        job = await state.call(load_job_definition, state.store, job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} is saved in the store")
        text = job_configs.job_text(job)
        source = "store"
    else:
        text = job_configs.NEW_JOB_TEXT
    check = await _check(state, text, fmt, file, path=source if file else "")
    data = {
        "text": text,
        "format": fmt.value,
        "file": file,
        "job_id": job_id,
        "source": source,
        "offline": state.settings.offline,
        "check": await asyncio.to_thread(check.to_json),
    }
    return respond(request, "job_edit.html", data)


@router.post("/api/validate")
async def validate(body: ValidateRequest, state: StateDep) -> dict[str, Any]:
    """Checks a job config as ``config_reader`` does; returns its problems, graph and inputs."""
    path = ""
    if body.file:
        try:  # a file of the configs folder: its sub-jobs' files are read next to it
            path = job_configs.config_file(state.settings.configs_dir, body.file)
        except UserError:
            path = ""
    check = await _check(state, body.text, job_configs.format_of(body.format), body.file, path=path)
    return await asyncio.to_thread(check.to_json)


@router.post("/api/jobs")
async def save_job(body: SaveRequest, state: StateDep) -> Response:
    """Saves a valid job config in the store (``jobs/{job_id}``); an invalid one is refused."""
    check = await _check(state, body.text, job_configs.format_of(body.format))
    job = check.job
    if not check.ok or job is None:
        return _problems(check)
    if not job.job_id:
        return JSONResponse(
            {
                "problems": [
                    {
                        "path": "job_id",
                        "message": "a job saved in the store needs a job_id",
                        "hint": 'add "job_id": "my_job"',
                        "file": "",
                    }
                ]
            },
            status_code=422,
        )
    await state.call(save_job_definition, state.store, job)
    return JSONResponse({"job_id": job.job_id, "url": f"/jobs/edit?job_id={job.job_id}"})


@router.post("/api/runs", status_code=201)
async def start_run(body: RunRequest, state: StateDep) -> Response:
    """Starts a run of a saved job or of a config text; a dispatcher then runs it."""
    if body.text is not None:
        text, fmt = body.text, job_configs.format_of(body.format)
    elif body.job_id:
        saved = await state.call(load_job_definition, state.store, body.job_id)
        if saved is None:
            raise HTTPException(404, f"no job {body.job_id!r} is saved in the store")
        text, fmt = job_configs.job_text(saved), formats.ConfigFormat.JSON
    else:
        raise HTTPException(400, "give job_id (a saved job) or text (a job config)")
    check = await _check(state, text, fmt, variables=list(body.inputs))
    job = check.job
    if not check.ok or job is None:
        return _problems(check)
    offline = state.settings.offline if body.offline is None else body.offline

    def submit() -> str:
        return submit_job(state.store, job, inputs=body.inputs, offline=offline)

    run_id = await state.call(submit)
    return JSONResponse({"run_id": run_id, "url": f"/runs/{run_id}"}, status_code=201)


async def _check(
    state: WebState,
    text: str,
    fmt: formats.ConfigFormat,
    file: str = "",
    variables: list[str] | None = None,
    *,
    path: str = "",
) -> job_configs.CheckedJob:
    """Checks a config off the event loop (a large job takes a while to validate)."""
    return await asyncio.to_thread(
        lambda: job_configs.check_job_text(
            text,
            fmt,
            registry=state.registry,
            functions=state.functions,
            file=file,
            variables=variables or (),
            path=path,
        )
    )


def _problems(check: job_configs.CheckedJob) -> Response:
    problems = [dataclasses.asdict(problem) for problem in check.problems]
    return JSONResponse({"problems": problems}, status_code=422)

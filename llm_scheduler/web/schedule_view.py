"""View models of the schedules page: each schedule with its next fire times and its runs.

Reads schedules through `execution.schedules` (the ``schedule`` CLI's library) and only
reshapes them; `schedule_config` turns the page's add form into a `ScheduleConfig`, so that a
schedule added here is the same as one added with ``schedule add``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format

from llm_scheduler.errors import ConfigError, ConfigProblem, UserError
from llm_scheduler.execution import schedules
from llm_scheduler.execution.submit import load_job_definition
from llm_scheduler.store import Store
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web import job_configs
from llm_scheduler.web.sub_job_view import run_url

__all__ = [
    "FORM_FIELDS",
    "NEXT_FIRE_TIMES",
    "RUNS_SHOWN",
    "field_problems",
    "schedule_config",
    "schedule_row",
    "schedules_view",
]

# How many next fire times and runs each schedule lists.
NEXT_FIRE_TIMES = 5
RUNS_SHOWN = 10
# The add form's fields; a problem is shown at one of them (`field_problems`).
FORM_FIELDS = ("schedule_id", "job", "cron", "time_zone", "inputs", "overlap", "catch_up")

_OVERLAPS = {"skip": config_pb2.OVERLAP_POLICY_SKIP, "allow": config_pb2.OVERLAP_POLICY_ALLOW}
_CATCH_UPS = {
    "latest": config_pb2.CATCH_UP_POLICY_LATEST,
    "none": config_pb2.CATCH_UP_POLICY_NONE,
    "all": config_pb2.CATCH_UP_POLICY_ALL,
}


def _iso(moment: datetime.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _policy(name: str, prefix: str, default: str) -> str:
    return name.removeprefix(prefix).lower() if not name.endswith("UNSPECIFIED") else default


def schedule_row(
    store: Store, schedule: schedules.Schedule, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """One schedule as JSON: its config, next fire times (in its zone), last slot and runs."""
    config = schedule.config
    schedule_id = schedule.schedule_id
    runs = schedules.schedule_runs(store, schedule_id, limit=RUNS_SHOWN)
    zone = schedule.zone
    return {
        "schedule_id": schedule_id,
        "job_id": schedule.job_id,
        "job_path": config.job_path,
        "job_source": "file" if config.job_path else "store",
        "cron": config.cron,
        "time_zone": config.time_zone or "UTC",
        "inputs": json_format.MessageToDict(config.inputs),
        "overlap": _policy(
            config_pb2.OverlapPolicy.Name(config.overlap), "OVERLAP_POLICY_", "skip"
        ),
        "catch_up": _policy(
            config_pb2.CatchUpPolicy.Name(config.catch_up), "CATCH_UP_POLICY_", "latest"
        ),
        "paused": config.paused,
        "next_fire_times": [
            _iso(moment)
            for moment in schedules.next_fire_times(
                store, schedule_id, count=NEXT_FIRE_TIMES, clock=clock
            )
        ],
        "last_slot": _iso(schedule.last_slot.astimezone(zone) if schedule.last_slot else None),
        "last_run_id": schedule.last_run_id,
        "last_run_url": run_url(schedule.last_run_id) if schedule.last_run_id else None,
        "last_skipped": _iso(
            schedule.last_skipped.astimezone(zone) if schedule.last_skipped else None
        ),
        "last_error": schedule.last_error,
        "runs": [
            {
                "slot": _iso(run.slot.astimezone(zone)),
                "run_id": run.run_id,
                "status": run.status.removeprefix("RUN_STATUS_").lower(),
                "url": run_url(run.run_id),
            }
            for run in runs
        ],
        "actions": {
            name: f"/api/schedules/{schedule_id}/{name}" for name in ("pause", "resume", "remove")
        },
    }


def schedules_view(
    store: Store, configs_dir: str, *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """The schedules page: every schedule (`schedule_row`) and the jobs the add form offers.

    Returns:
        ``schedules`` (by id) and ``jobs``: ``{"value", "label"}`` each, ``value`` being
        ``store:JOB_ID`` for a job saved in the store or ``file:PATH`` for a file of the
        configs folder.
    """
    rows = [schedule_row(store, found, clock=clock) for found in schedules.list_schedules(store)]
    jobs = []
    for entry in job_configs.list_jobs(store, configs_dir):
        if entry.error or not entry.job_id:
            continue
        if entry.source == "store":
            jobs.append({"value": f"store:{entry.job_id}", "label": f"{entry.job_id} (store)"})
        else:
            jobs.append(
                {"value": f"file:{entry.source}", "label": f"{entry.job_id} ({entry.source})"}
            )
    return {"schedules": rows, "jobs": jobs, "configs_dir": configs_dir}


def schedule_config(
    store: Store, configs_dir: str, form: dict[str, Any]
) -> config_pb2.ScheduleConfig:
    """The `ScheduleConfig` of the add form's values.

    Args:
        store: The store (a ``store:`` job must be saved in it).
        configs_dir: The configs folder (a ``file:`` job must be one of its job configs).
        form: ``schedule_id``, ``job`` (``store:JOB_ID`` or ``file:PATH``), ``cron``,
            ``time_zone``, ``inputs`` (a JSON object, as text), ``overlap`` (``skip`` or
            ``allow``) and ``catch_up`` (``latest``, ``none`` or ``all``).

    Raises:
        ConfigError: A value is wrong; each problem's path is one of `FORM_FIELDS`.
    """
    problems: list[ConfigProblem] = []
    config = config_pb2.ScheduleConfig(
        schedule_id=str(form.get("schedule_id") or "").strip(),
        cron=str(form.get("cron") or "").strip(),
        time_zone=str(form.get("time_zone") or "").strip(),
    )
    kind, _, name = str(form.get("job") or "").partition(":")
    if kind == "store" and name:
        if load_job_definition(store, name) is None:
            problems.append(ConfigProblem("job", f"no job {name!r} is saved in the store"))
        config.job_id = name
    elif kind == "file" and name:
        try:
            config.job_path = job_configs.config_file(configs_dir, name)
        except UserError as error:
            problems.append(ConfigProblem("job", str(error)))
    else:
        problems.append(ConfigProblem("job", "choose the job to run", "a saved job or a file"))
    text = str(form.get("inputs") or "").strip()
    if text:
        try:
            inputs = json.loads(text)
        except json.JSONDecodeError as error:
            inputs = None
            problems.append(ConfigProblem("inputs", f"not JSON: {error}", '{"topic": "tides"}'))
        if inputs is not None and not isinstance(inputs, dict):
            problems.append(
                ConfigProblem("inputs", "inputs are a JSON object", '{"topic": "tides"}')
            )
        elif isinstance(inputs, dict):
            config.inputs.update(inputs)
    overlap = str(form.get("overlap") or "skip")
    if overlap not in _OVERLAPS:
        problems.append(ConfigProblem("overlap", f"no overlap policy {overlap!r}", "skip or allow"))
    else:
        config.overlap = _OVERLAPS[overlap]
    catch_up = str(form.get("catch_up") or "latest")
    if catch_up not in _CATCH_UPS:
        problems.append(
            ConfigProblem("catch_up", f"no catch-up policy {catch_up!r}", "latest, none or all")
        )
    else:
        config.catch_up = _CATCH_UPS[catch_up]
    if problems:
        raise ConfigError(problems)
    return config


def field_problems(error: ConfigError) -> list[dict[str, Any]]:
    """An add's problems as JSON, each with ``field``: the form field it is shown at.

    The schedule's own fields keep their place; the job's problems (a path into the job, or
    ``job_id``/``job_path``) are the job's.
    """
    found = []
    for problem in error.problems:
        field = problem.path if problem.path in FORM_FIELDS and not problem.file else "job"
        found.append({**dataclasses.asdict(problem), "field": field})
    return found

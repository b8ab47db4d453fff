"""Manages schedules: jobs run on a cron schedule, each slot started exactly once.

Usage:
    schedule add --schedule_id=ID (--input_path=job.json | --job_id=ID) --cron="*/5 * * * *"
                 [--time_zone=Europe/Paris] [--var name=value ...] [--overlap=skip|allow]
                 [--catch_up=latest|none|all] [--paused] [--replace] [--store=URL]
    schedule list [--output_format=json] [--store=URL]
    schedule pause --schedule_id=ID [--store=URL]
    schedule resume --schedule_id=ID [--store=URL]
    schedule remove --schedule_id=ID [--store=URL]
    schedule next --schedule_id=ID [--count=5] [--store=URL]

A dispatcher watching the store (or, in the cloud, the fire_schedules function that Cloud
Scheduler calls every minute) fires the due slots: each slot starts the run
``{schedule_id}-{slot as YYYYMMDDTHHMMZ}``, once. ``add`` validates the job (read from
--input_path now and stored with the schedule, or the job saved at jobs/{--job_id}) with the
--var inputs, and prints the schedule id; ``next`` prints the next fire times, in the schedule's
time zone and in UTC; ``list`` prints a table (JSON with --output_format=json).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from absl import flags as absl_flags
from google.protobuf import struct_pb2

from llm_scheduler.errors import UserError
from llm_scheduler.execution import cron
from llm_scheduler.execution.schedules import (
    Schedule,
    add_schedule,
    list_schedules,
    next_fire_times,
    pause_schedule,
    remove_schedule,
    resume_schedule,
)
from llm_scheduler.function_steps import default_registry
from llm_scheduler.runner import common, flags
from llm_scheduler.v1 import config_pb2

__all__ = ["main", "run", "schedule_table"]

SCHEDULE_ID = absl_flags.DEFINE_string("schedule_id", None, "The schedule's id.")
CRON = absl_flags.DEFINE_string(
    "cron",
    None,
    'With add: five cron fields (minute hour day-of-month month day-of-week), e.g. "*/5 * * * *".',
)
TIME_ZONE = absl_flags.DEFINE_string(
    "time_zone", "", "With add: the IANA time zone the cron is read in (default: UTC)."
)
OVERLAP = absl_flags.DEFINE_enum(
    "overlap",
    "skip",
    ["skip", "allow"],
    "With add: skip a slot while the previous run is unfinished, or allow overlapping runs.",
)
CATCH_UP = absl_flags.DEFINE_enum(
    "catch_up",
    "latest",
    ["latest", "none", "all"],
    "With add: what to fire of the slots missed while nothing fired the schedule: the latest "
    "once, none, or all.",
)
PAUSED = absl_flags.DEFINE_bool("paused", False, "With add: add the schedule paused.")
REPLACE = absl_flags.DEFINE_bool(
    "replace", False, "With add: replace the schedule of the same id (instead of an error)."
)
COUNT = absl_flags.DEFINE_integer(
    "count", 5, "With next: how many fire times to print.", lower_bound=1
)

_OVERLAP = {"skip": config_pb2.OVERLAP_POLICY_SKIP, "allow": config_pb2.OVERLAP_POLICY_ALLOW}
_CATCH_UP = {
    "latest": config_pb2.CATCH_UP_POLICY_LATEST,
    "none": config_pb2.CATCH_UP_POLICY_NONE,
    "all": config_pb2.CATCH_UP_POLICY_ALL,
}
# Flags that only `add` reads: given to another command they are a mistake, not ignored.
_ADD_ONLY = ("cron", "time_zone", "overlap", "catch_up", "paused", "replace", "input_path", "var")


def _add() -> int:
    if flags.JOB_ID.value and flags.INPUT_PATH.value:
        raise UserError("give the job with one of --input_path (a job file) and --job_id")
    if not (flags.JOB_ID.value or flags.INPUT_PATH.value):
        raise UserError(
            "schedule add needs the job: --input_path=job.json or --job_id=ID (a saved job)"
        )
    if not CRON.value:
        raise UserError('schedule add needs --cron, e.g. --cron="*/5 * * * *"')
    config = config_pb2.ScheduleConfig(
        schedule_id=_schedule_id(),
        job_path=common.check_input_file(flags.INPUT_PATH.value) if flags.INPUT_PATH.value else "",
        job_id=flags.JOB_ID.value or "",
        cron=CRON.value,
        time_zone=TIME_ZONE.value,
        overlap=_OVERLAP[OVERLAP.value],
        catch_up=_CATCH_UP[CATCH_UP.value],
        paused=PAUSED.value,
    )
    inputs = common.parse_vars(flags.VARS.value)
    if inputs:
        struct = struct_pb2.Struct()
        struct.update(inputs)
        config.inputs.CopyFrom(struct)
    functions = default_registry()
    functions.load_modules(flags.FUNCTION_MODULES.value)
    with common.open_store_from_flags() as store:
        schedule = add_schedule(
            store,
            config,
            models=common.models_registry(),
            functions=functions,
            replace=REPLACE.value,
        )
        url = store.url
    state = "paused" if schedule.config.paused else f"next: {_when(schedule)}"
    common.report(f"added schedule {schedule.schedule_id!r} to {url} ({state})")
    print(schedule.schedule_id)
    return common.EXIT_OK


def _list() -> int:
    as_json = absl_flags.FLAGS["output_format"].present
    if as_json and flags.OUTPUT_FORMAT.value != "json":
        raise UserError("schedule list prints a table, or JSON with --output_format=json")
    with common.open_store_from_flags() as store:
        schedules = list_schedules(store)
        url = store.url
    if as_json:
        common.print_json([_summary(schedule) for schedule in schedules])
    else:
        sys.stdout.write(schedule_table(schedules))
        sys.stdout.flush()
    common.report(f"{len(schedules)} schedule{'s' if len(schedules) != 1 else ''} in {url}")
    return common.EXIT_OK


def _pause() -> int:
    with common.open_store_from_flags() as store:
        pause_schedule(store, _schedule_id())
    common.report(f"paused schedule {_schedule_id()!r}")
    return common.EXIT_OK


def _resume() -> int:
    with common.open_store_from_flags() as store:
        schedule = resume_schedule(store, _schedule_id())
    common.report(f"resumed schedule {_schedule_id()!r} (next: {_when(schedule)})")
    return common.EXIT_OK


def _remove() -> int:
    with common.open_store_from_flags() as store:
        remove_schedule(store, _schedule_id())
    common.report(f"removed schedule {_schedule_id()!r} (its runs stay)")
    return common.EXIT_OK


def _next() -> int:
    with common.open_store_from_flags() as store:
        times = next_fire_times(store, _schedule_id(), count=COUNT.value)
    for moment in times:
        print(f"{moment.isoformat()}  ({cron.slot_text(moment)})")
    if not times:
        common.report("the schedule's cron expression matches no later time")
    return common.EXIT_OK


_COMMANDS: dict[str, Callable[[], int]] = {
    "add": _add,
    "list": _list,
    "pause": _pause,
    "resume": _resume,
    "remove": _remove,
    "next": _next,
}


def _schedule_id() -> str:
    if not SCHEDULE_ID.value:
        raise UserError("--schedule_id is required: the schedule to act on")
    return SCHEDULE_ID.value


def _when(schedule: Schedule) -> str:
    if schedule.next_slot is None:
        return "never: the cron expression matches no later time"
    local = schedule.next_slot.astimezone(schedule.zone)
    return f"{local.isoformat()} {schedule.config.time_zone or 'UTC'}"


def _summary(schedule: Schedule) -> dict[str, Any]:
    config = schedule.config
    return {
        "schedule_id": config.schedule_id,
        "job_id": schedule.job_id,
        "job_path": config.job_path,
        "cron": config.cron,
        "time_zone": config.time_zone or "UTC",
        "overlap": config_pb2.OverlapPolicy.Name(config.overlap or 1).removeprefix(
            "OVERLAP_POLICY_"
        ),
        "catch_up": config_pb2.CatchUpPolicy.Name(config.catch_up or 1).removeprefix(
            "CATCH_UP_POLICY_"
        ),
        "paused": config.paused,
        "next_slot": cron.slot_text(schedule.next_slot) if schedule.next_slot else None,
        "last_slot": cron.slot_text(schedule.last_slot) if schedule.last_slot else None,
        "last_run_id": schedule.last_run_id or None,
        "last_skipped": cron.slot_text(schedule.last_skipped) if schedule.last_skipped else None,
        "last_error": schedule.last_error or None,
    }


_COLUMNS = ("SCHEDULE", "JOB", "CRON", "TIME ZONE", "STATE", "NEXT SLOT (UTC)", "LAST RUN")


def schedule_table(schedules: list[Schedule]) -> str:
    """Schedules as a text table: one line each, columns padded to their widest cell."""
    rows = [_COLUMNS]
    for schedule in schedules:
        summary = _summary(schedule)
        rows.append(
            (
                schedule.schedule_id,
                schedule.job_id or "-",
                schedule.config.cron,
                summary["time_zone"],
                "paused" if schedule.config.paused else "active",
                summary["next_slot"] or "-",
                schedule.last_run_id or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "".join(line.rstrip() + "\n" for line in lines)


def main(argv: list[str]) -> int:
    """Runs one command: ``schedule add|list|pause|resume|remove|next``."""
    commands = ", ".join(_COMMANDS)
    if len(argv) != 2 or argv[1] not in _COMMANDS:
        given = f" (got {argv[1:]})" if len(argv) > 1 else ""
        print(f"error: name one command: {commands}{given}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    command = argv[1]
    if command != "add":
        misplaced = [name for name in _ADD_ONLY if absl_flags.FLAGS[name].present]
        if misplaced:
            print(
                f"error: {', '.join('--' + n for n in misplaced)} only go with schedule add",
                file=sys.stderr,
            )
            return common.EXIT_BAD_INPUT
    return common.run_cli(_COMMANDS[command])


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

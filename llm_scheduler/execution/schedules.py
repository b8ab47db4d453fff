"""Schedules: a job run on a cron schedule, each slot started exactly once.

A schedule (`ScheduleConfig`) lives at ``schedules/{schedule_id}``: its config fields in the
proto JSON mapping, the job it runs (``job``, for a schedule added from a job file; a schedule
with ``job_id`` reads ``jobs/{job_id}`` at each slot), and control fields beside them::

    next_slot      the next fire time (RFC 3339 UTC); nothing before it fires again
    last_slot      the last slot that started a run, and that run: last_run_id
    last_skipped   the last slot skipped because the previous run was unfinished (SKIP)
    last_error     why the last slot could not start a run (its saved job is gone), if so
    revision       renewed by each add: a pass that read an older one writes nothing
    removed_at     set by `remove_schedule`: the schedule is gone (the store keeps documents)

`fire_due` is the one function that fires schedules, locally (the dispatcher calls it about once
a second) and in the cloud (the ``fire_schedules`` function, which Cloud Scheduler calls every
minute). A slot starts the run ``{schedule_id}-{slot as YYYYMMDDTHHMMZ}`` through `submit_job`,
which creates a run only if absent: however many callers race for one slot, it starts one run.
Whoever then moves ``next_slot`` on first (`Store.update_if`, conditional on the value read)
wins; the others write nothing.

Slots missed while nothing fired the schedule (a slot is missed when it is first seen more than
`ON_TIME_SECONDS` late) follow its catch-up policy: LATEST (the default) fires the latest missed
slot once, NONE drops them, ALL fires every one, oldest first. Slots seen on time always fire.
Under the SKIP overlap policy (the default) a slot is skipped while the run of the previous one
is unfinished, also among the slots of one pass (so ALL with SKIP starts one missed run, and
skips the rest while it runs: combine ALL with ALLOW to start them all).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from llm_scheduler.config import formats
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.execution import blobs, cron
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import FINISHED
from llm_scheduler.execution.schedule_config import MAX_SCHEDULE_ID_LENGTH, check_schedule
from llm_scheduler.execution.submit import load_job_definition, submit_job
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store.base import Doc, Store, lock_free
from llm_scheduler.v1 import config_pb2

__all__ = [
    "MAX_SCHEDULE_ID_LENGTH",
    "MAX_SLOTS_PER_PASS",
    "ON_TIME_SECONDS",
    "SCHEDULES",
    "FiredSlot",
    "Schedule",
    "ScheduledRun",
    "add_schedule",
    "check_schedule",
    "fire_due",
    "get_schedule",
    "list_schedules",
    "next_fire_times",
    "pause_schedule",
    "remove_schedule",
    "resume_schedule",
    "schedule_path",
    "schedule_run_id",
    "schedule_runs",
]

_log = logging.getLogger(__name__)

SCHEDULES = "schedules"
# A slot first seen later than this is missed (its catch-up policy decides). Cloud Scheduler
# calls `fire_schedules` every minute, so a slot is normally seen within about 60 s.
ON_TIME_SECONDS = 90.0
# At most this many slots of one schedule fire in one pass (CATCH_UP_POLICY_ALL after a long
# gap); the next pass goes on from there.
MAX_SLOTS_PER_PASS = 100

Clock = Callable[[], float]


def schedule_path(schedule_id: str) -> str:
    """The path of a schedule's document."""
    return f"{SCHEDULES}/{docs.path_segment('schedule id', schedule_id)}"


def schedule_run_id(schedule_id: str, slot: datetime.datetime) -> str:
    """The id of the run a slot starts: ``{schedule_id}-{slot as YYYYMMDDTHHMMZ}``."""
    return f"{schedule_id}-{cron.slot_id(slot)}"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A schedule as stored.

    Attributes:
        config: Its config (``paused`` as it is now; ``job_path`` as it was when added).
        job_id: The id of the job it runs (of the stored job, or ``config.job_id``).
        next_slot: The next slot it fires (UTC); None for a schedule whose cron never fires.
        last_slot: The last slot that started a run, if any.
        last_run_id: That run.
        last_skipped: The last slot skipped because the previous run was unfinished, if any.
        last_error: Why the last slot could not start a run, if it could not.
    """

    config: config_pb2.ScheduleConfig
    job_id: str
    next_slot: datetime.datetime | None
    last_slot: datetime.datetime | None = None
    last_run_id: str = ""
    last_skipped: datetime.datetime | None = None
    last_error: str = ""

    @property
    def schedule_id(self) -> str:
        """The schedule's id."""
        return self.config.schedule_id

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone its cron expression is read in."""
        return cron.check_time_zone(self.config.time_zone)


@dataclasses.dataclass(frozen=True)
class FiredSlot:
    """What `fire_due` did with one slot.

    Attributes:
        schedule_id: The schedule.
        slot: The slot (UTC).
        action: ``fired`` (its run exists: this caller or a racing one created it),
            ``skipped`` (the previous run was unfinished, under SKIP) or ``failed`` (no run:
            see ``detail``).
        run_id: The slot's run id.
        detail: Why it was skipped or failed.
    """

    schedule_id: str
    slot: datetime.datetime
    action: str
    run_id: str
    detail: str = ""


# -- managing schedules -------------------------------------------------------------------------


def add_schedule(
    store: Store,
    config: config_pb2.ScheduleConfig,
    *,
    models: ModelRegistry | None = None,
    functions: FunctionRegistry | None = None,
    replace: bool = False,
    clock: Clock = time.time,
) -> Schedule:
    """Validates a schedule and its job, and saves it; it fires from its next slot after now.

    A ``job_path`` is read now (`formats.load`) and the job stored with the schedule (out of
    line when large), so later edits of the file change nothing; a ``job_id`` must name a job
    saved in the store, read again at each slot. The job is validated with the schedule's
    inputs, as ``job_submitter`` validates it.

    Args:
        store: Where the schedule is saved.
        config: The schedule.
        models: The model registry model keys must resolve in (the built-in one by default).
        functions: The function registry function steps must resolve in.
        replace: Replace a schedule of the same id (its last slot and run are kept); without,
            an existing schedule is an error.
        clock: Wall-clock time.

    Raises:
        ConfigError: The schedule or its job is invalid (field paths into the schedule, or
            into the job file).
        UserError: A schedule of that id exists and ``replace`` is false.
    """
    check_schedule(config)
    inputs = struct_to_dict(config.inputs)
    validator = Validator(models or ModelRegistry(), functions or default_registry())
    fields: Doc = {}
    if config.job_path:
        job = formats.load(config.job_path, config_pb2.JobConfig)
        validator.file = config.job_path
        validator.check_job(job, inputs)
        fields["job"] = docs.record_to_doc(job)
        job_id = job.job_id
    else:
        saved = load_job_definition(store, config.job_id)
        if saved is None:
            raise ConfigError.single(
                "job_id",
                f"no job {config.job_id!r} is saved at {docs.job_definition_path(config.job_id)}",
                "save it first (job_submitter saves each job it submits), or give job_path",
            )
        validator.file = docs.job_definition_path(config.job_id)
        validator.check_job(saved, inputs)
        job_id = config.job_id
    path = schedule_path(config.schedule_id)
    existing = _live(store.get(path))
    if existing is not None and not replace:
        raise UserError(
            f"schedule {config.schedule_id!r} exists in {store.url}: remove it first, or replace "
            "it (schedule add --replace)"
        )
    now = _now(clock)
    first = next(cron.slots_after(config.cron, cron.check_time_zone(config.time_zone), now), None)
    data = blobs.out_of_line(store, fields, docs.INLINE_FIELD_BYTES)
    doc: Doc = {
        **docs.record_to_doc(config),
        "scheduled_job_id": job_id,
        **{k: v for k, v in blobs.with_fields(None, data).items() if v is not None},
        "next_slot": cron.slot_text(first) if first else None,
        "created_at": docs.iso(clock()),
        # Tells a firing pass that read the schedule before it was replaced to write nothing.
        "revision": secrets.token_hex(8),
    }
    if existing is not None:
        for key in ("last_slot", "last_run_id", "last_skipped"):
            if key in existing:
                doc[key] = existing[key]
    store.set(path, doc)
    schedule = _schedule_from(doc)
    assert schedule is not None
    return schedule


def get_schedule(store: Store, schedule_id: str) -> Schedule | None:
    """The schedule of that id, or None when there is none (or it was removed)."""
    return _schedule_from(store.get(schedule_path(schedule_id)))


def list_schedules(store: Store) -> list[Schedule]:
    """Every schedule in the store, by id."""
    found = (_schedule_from(doc) for _, doc in store.list(SCHEDULES))
    return [schedule for schedule in found if schedule is not None]


def pause_schedule(store: Store, schedule_id: str, *, clock: Clock = time.time) -> Schedule:
    """Pauses a schedule: it fires nothing until resumed.

    A slot that a racing caller is firing at this moment may still start its run.

    Raises:
        UserError: There is no such schedule.
    """
    return _set_paused(store, schedule_id, True, clock)


def resume_schedule(store: Store, schedule_id: str, *, clock: Clock = time.time) -> Schedule:
    """Resumes a paused schedule from its next slot after now (the paused slots never fire).

    Raises:
        UserError: There is no such schedule.
    """
    return _set_paused(store, schedule_id, False, clock)


def remove_schedule(store: Store, schedule_id: str, *, clock: Clock = time.time) -> None:
    """Removes a schedule; its runs stay. The id may be used again.

    The store keeps no deletions: the document becomes a small tombstone (``removed_at``).

    Raises:
        UserError: There is no such schedule.
    """
    path = schedule_path(schedule_id)
    if _live(store.get(path)) is None:
        raise UserError(_no_schedule(store, schedule_id))
    # A racing `fire_due` that read the schedule before may still fire the slot it was firing;
    # its update of `next_slot` then finds the tombstone and writes nothing.
    store.set(path, {"schedule_id": schedule_id, "removed_at": docs.iso(clock())})


def next_fire_times(
    store: Store, schedule_id: str, *, count: int = 5, clock: Clock = time.time
) -> list[datetime.datetime]:
    """The next ``count`` slots a schedule fires, as aware datetimes in its time zone.

    They start at its ``next_slot`` (one already due fires at the next pass); for a paused
    schedule, at the first slot after now (what resuming it now would fire).

    Raises:
        UserError: There is no such schedule.
    """
    schedule = get_schedule(store, schedule_id)
    if schedule is None:
        raise UserError(_no_schedule(store, schedule_id))
    zone = schedule.zone
    if schedule.config.paused or schedule.next_slot is None:
        start = _now(clock)
    else:
        start = schedule.next_slot - datetime.timedelta(seconds=1)
    times: list[datetime.datetime] = []
    for slot in cron.slots_after(schedule.config.cron, zone, start):
        if len(times) >= count:
            break
        times.append(slot.astimezone(zone))
    return times


@dataclasses.dataclass(frozen=True)
class ScheduledRun:
    """A run a schedule started.

    Attributes:
        slot: The slot it fires (UTC).
        run_id: The run (``{schedule_id}-{slot as YYYYMMDDTHHMMZ}``).
        status: The run's status as stored (``RUN_STATUS_SUCCEEDED``, ...).
    """

    slot: datetime.datetime
    run_id: str
    status: str


def schedule_runs(store: Store, schedule_id: str, *, limit: int = 0) -> list[ScheduledRun]:
    """The runs a schedule (of this id, now or before a removal) started, newest slot first.

    One equality query on the job runs' ``schedule_id`` (an automatic index on Firestore).

    Args:
        store: The store.
        schedule_id: The schedule.
        limit: At most this many (the newest); 0 for all.
    """
    found = [
        ScheduledRun(
            slot=cron.parse_slot(str(doc["schedule_slot"])),
            run_id=str(doc.get("run_id") or path.rsplit("/", 1)[1]),
            status=str(doc.get("status") or ""),
        )
        for path, doc in store.query("job_runs", "schedule_id", [schedule_id])
        if doc.get("schedule_slot")
    ]
    found.sort(key=lambda run: run.slot, reverse=True)
    return found[:limit] if limit > 0 else found


# -- firing -------------------------------------------------------------------------------------


@lock_free
def fire_due(
    store: Store, *, clock: Clock = time.time, on_time_seconds: float = ON_TIME_SECONDS
) -> list[FiredSlot]:
    """Fires the due slots of every schedule: one run per slot, however many callers race.

    For each schedule not paused whose ``next_slot`` is due, the slots up to now are chosen by
    its catch-up policy, each skipped under SKIP while the previous run is unfinished or else
    submitted with its deterministic run id (create-if-absent), and ``next_slot`` moves past
    them. A schedule that fails (the store, a job that cannot be read) is logged and left for
    the next pass; the others go on.

    Args:
        store: The store holding the schedules and the runs.
        clock: Wall-clock time (tests drive it).
        on_time_seconds: How late a slot may be seen and still be on time.

    Returns:
        What happened to each slot this caller looked at.
    """
    now = _now(clock)
    fired: list[FiredSlot] = []
    for path, doc in store.list(SCHEDULES):
        try:
            schedule = _schedule_from(doc)
            if schedule is None or schedule.config.paused or schedule.next_slot is None:
                continue
            if schedule.next_slot > now:
                continue
            fired += _fire_schedule(store, path, doc, schedule, now, on_time_seconds)
        # Anything: one schedule written wrong by hand (a cron or time zone that no longer
        # parses) must not stop the others, nor the dispatcher that calls this every second.
        except Exception as error:
            _log.warning("schedule %s: %s: %s", path, type(error).__name__, error)
    return fired


def _fire_schedule(
    store: Store,
    path: str,
    doc: Doc,
    schedule: Schedule,
    now: datetime.datetime,
    on_time_seconds: float,
) -> list[FiredSlot]:
    config, zone = schedule.config, schedule.zone
    assert schedule.next_slot is not None
    slots, following = _slots_to_fire(schedule, zone, now, on_time_seconds)
    results: list[FiredSlot] = []
    previous = schedule.last_run_id
    job: config_pb2.JobConfig | None = None
    error = ""
    for slot in slots:
        run_id = schedule_run_id(config.schedule_id, slot)
        if config.overlap != config_pb2.OVERLAP_POLICY_ALLOW:
            before = _unfinished_previous(store, schedule, slot, previous)
            if before:
                results.append(
                    FiredSlot(config.schedule_id, slot, "skipped", run_id, f"{before} unfinished")
                )
                continue
        if job is None:
            job, error = _job_of(store, doc, schedule)
        if job is None:
            results.append(FiredSlot(config.schedule_id, slot, "failed", run_id, error))
            continue
        submit_job(
            store,
            job,
            inputs=struct_to_dict(config.inputs),
            run_id=run_id,
            schedule_id=config.schedule_id,
            schedule_slot=cron.slot_text(slot),
        )
        previous = run_id
        results.append(FiredSlot(config.schedule_id, slot, "fired", run_id))
    _advance(store, path, doc, following, results)
    return results


def _slots_to_fire(
    schedule: Schedule, zone: zoneinfo.ZoneInfo, now: datetime.datetime, on_time_seconds: float
) -> tuple[list[datetime.datetime], datetime.datetime | None]:
    """The slots to fire now by the catch-up policy, and the next slot after them."""
    config = schedule.config
    assert schedule.next_slot is not None
    first = schedule.next_slot
    cutoff = now - datetime.timedelta(seconds=on_time_seconds)
    just_before_first = first - datetime.timedelta(seconds=1)
    slots: list[datetime.datetime] = []
    following: datetime.datetime | None = None
    if config.catch_up == config_pb2.CATCH_UP_POLICY_ALL:
        for slot in cron.slots_after(config.cron, zone, just_before_first):
            if slot > now or len(slots) == MAX_SLOTS_PER_PASS:
                following = slot
                break
            slots.append(slot)
        return slots, following
    # The slots seen on time, and for LATEST the latest missed one before them.
    missed = cron.latest_slot(config.cron, zone, not_before=first, not_after=cutoff)
    on_time_from = max(first - datetime.timedelta(seconds=1), cutoff)
    if missed is not None:
        on_time_from = max(on_time_from, missed)
    for slot in cron.slots_after(config.cron, zone, on_time_from):
        if slot > now:
            following = slot
            break
        slots.append(slot)
    if missed is not None and config.catch_up != config_pb2.CATCH_UP_POLICY_NONE:
        slots.insert(0, missed)
    return slots, following


def _unfinished_previous(
    store: Store, schedule: Schedule, slot: datetime.datetime, previous: str
) -> str:
    """The run before ``slot`` that is still unfinished, or "" when there is none.

    The last run the schedule recorded, and the run of the slot just before this one: a racing
    caller may have started it without being the one that recorded it.
    """
    candidates = [previous] if previous else []
    before = cron.latest_slot(
        schedule.config.cron,
        schedule.zone,
        not_before=slot - datetime.timedelta(days=400),
        not_after=slot - datetime.timedelta(seconds=1),
    )
    if before is not None:
        candidates.append(schedule_run_id(schedule.schedule_id, before))
    for run_id in dict.fromkeys(candidates):
        run = store.get(docs.job_run_path(run_id))
        if run is not None and run.get("status") not in FINISHED:
            return run_id
    return ""


def _job_of(store: Store, doc: Doc, schedule: Schedule) -> tuple[config_pb2.JobConfig | None, str]:
    """The job a schedule runs, or None and why not."""
    if schedule.config.job_id:
        job = load_job_definition(store, schedule.config.job_id)
        if job is None:
            return None, (
                f"no job {schedule.config.job_id!r} is saved at "
                f"{docs.job_definition_path(schedule.config.job_id)}"
            )
        return job, ""
    stored = blobs.inline(store, doc, f"schedule {schedule.schedule_id!r}")
    return docs.record_from_doc(stored.get("job") or {}, config_pb2.JobConfig), ""


def _advance(
    store: Store,
    path: str,
    seen: Doc,
    following: datetime.datetime | None,
    results: list[FiredSlot],
) -> None:
    """Moves ``next_slot`` on past the slots fired, unless another caller already did."""
    fields: Doc = {"next_slot": cron.slot_text(following) if following else None}
    fired = [r for r in results if r.action == "fired"]
    if fired:
        fields.update(last_slot=cron.slot_text(fired[-1].slot), last_run_id=fired[-1].run_id)
    skipped = [r for r in results if r.action == "skipped"]
    if skipped:
        fields["last_skipped"] = cron.slot_text(skipped[-1].slot)
    failed = [r for r in results if r.action == "failed"]
    if failed:
        fields["last_error"] = f"slot {cron.slot_text(failed[-1].slot)}: {failed[-1].detail}"
    elif fired:
        fields["last_error"] = None

    def decide(current: Doc | None) -> Doc | None:
        live = _live(current)
        if live is None or live.get("next_slot") != seen.get("next_slot"):
            return None  # removed, or moved on by another caller (who fired the same slots)
        if live.get("revision") != seen.get("revision"):
            return None  # replaced meanwhile
        return fields

    store.update_if(path, decide)


# -- documents ----------------------------------------------------------------------------------


def _live(doc: Doc | None) -> Doc | None:
    """The document of a schedule that exists (not removed), or None."""
    if doc is None or doc.get("removed_at"):
        return None
    return doc


def _schedule_from(doc: Doc | None) -> Schedule | None:
    live = _live(doc)
    if live is None:
        return None
    config = docs.record_from_doc(live, config_pb2.ScheduleConfig)
    return Schedule(
        config=config,
        job_id=str(live.get("scheduled_job_id") or config.job_id),
        next_slot=_slot_or_none(live.get("next_slot")),
        last_slot=_slot_or_none(live.get("last_slot")),
        last_run_id=str(live.get("last_run_id") or ""),
        last_skipped=_slot_or_none(live.get("last_skipped")),
        last_error=str(live.get("last_error") or ""),
    )


def _slot_or_none(value: Any) -> datetime.datetime | None:
    return cron.parse_slot(str(value)) if value else None


def _set_paused(store: Store, schedule_id: str, paused: bool, clock: Clock) -> Schedule:
    path = schedule_path(schedule_id)

    def decide(current: Doc | None) -> Doc | None:
        live = _live(current)
        if live is None:
            return None
        fields: Doc = {"paused": paused}
        if not paused and live.get("paused"):
            # The slots of the pause are not missed: it starts again from the next one.
            config = docs.record_from_doc(live, config_pb2.ScheduleConfig)
            zone = cron.check_time_zone(config.time_zone)
            first = next(cron.slots_after(config.cron, zone, _now(clock)), None)
            fields["next_slot"] = cron.slot_text(first) if first else None
        return fields

    updated = store.update_if(path, decide)
    schedule = _schedule_from(updated)
    if schedule is None:
        raise UserError(_no_schedule(store, schedule_id))
    return schedule


def _no_schedule(store: Store, schedule_id: str) -> str:
    return f"no schedule {schedule_id!r} in {store.url} (schedule list shows them)"


def _now(clock: Clock) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(clock(), cron.UTC)

"""Schedules: each slot starts exactly one run, whoever races for it, on both backends.

Time is a clock the test moves (`Clock`), never the machine's: ten simulated minutes take as
long as the firing does.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import struct_pb2

from llm_scheduler.config import formats
from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.execution import blobs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import job_definition_path
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.schedules import (
    FiredSlot,
    add_schedule,
    fire_due,
    get_schedule,
    list_schedules,
    next_fire_times,
    pause_schedule,
    remove_schedule,
    resume_schedule,
    schedule_path,
    schedule_runs,
)
from llm_scheduler.execution.submit import save_job_definition
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import Store, open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import REPO_ROOT

JOB_FILE = str(REPO_ROOT / "examples" / "sample_job_config.json")
UTC = datetime.UTC


def at(text: str) -> float:
    """A UTC time (``2026-11-29T10:00:30``) as a timestamp."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    """A wall clock the test sets."""

    def __init__(self, start: str) -> None:
        self.now = at(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def set(self, text: str) -> None:
        with self._lock:
            self.now = at(text)


def schedule(
    schedule_id: str = "every_minute",
    *,
    cron: str = "* * * * *",
    time_zone: str = "",
    overlap: config_pb2.OverlapPolicy = config_pb2.OVERLAP_POLICY_UNSPECIFIED,
    catch_up: config_pb2.CatchUpPolicy = config_pb2.CATCH_UP_POLICY_UNSPECIFIED,
    job_path: str = JOB_FILE,
    job_id: str = "",
    inputs: dict[str, Any] | None = None,
) -> config_pb2.ScheduleConfig:
    config = config_pb2.ScheduleConfig(
        schedule_id=schedule_id,
        job_path=job_path if not job_id else "",
        job_id=job_id,
        cron=cron,
        time_zone=time_zone,
        overlap=overlap,
        catch_up=catch_up,
    )
    if inputs:
        struct = struct_pb2.Struct()
        struct.update(inputs)
        config.inputs.CopyFrom(struct)
    return config


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def run_ids(store: Store) -> list[str]:
    return sorted(path.rsplit("/", 1)[1] for path, _ in store.list("job_runs"))


def slots_of(fired: list[FiredSlot], action: str = "fired") -> list[str]:
    return [slot.slot.strftime("%H%M") for slot in fired if slot.action == action]


def offline_context() -> RunContext:
    return RunContext(models=ModelClient(offline=True))


# -- exactly once per slot ---------------------------------------------------------------------


def test_three_racing_callers_fire_ten_minutes_as_ten_runs(store_url: str) -> None:
    clock = Clock("2026-11-29T09:59:30")
    stores = [open_store(store_url) for _ in range(3)]
    try:
        add_schedule(stores[0], schedule(overlap=config_pb2.OVERLAP_POLICY_ALLOW), clock=clock)
        errors: list[BaseException] = []

        def fire(store: Store, barrier: threading.Barrier) -> None:
            try:
                barrier.wait(timeout=30)  # all three at once
                fire_due(store, clock=clock)
                fire_due(store, clock=clock)  # a second pass finds nothing due
            except BaseException as error:
                errors.append(error)

        for minute in range(10):
            clock.set(f"2026-11-29T10:{minute:02d}:05")
            barrier = threading.Barrier(3)
            threads = [threading.Thread(target=fire, args=(s, barrier)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert not errors, errors
        expected = [f"every_minute-20261129T10{minute:02d}Z" for minute in range(10)]
        assert run_ids(stores[0]) == expected
        for index, run_id in enumerate(expected):
            record = read_job_run(stores[1], run_id, steps=False)
            assert record is not None
            assert record.schedule_id == "every_minute"
            assert record.schedule_slot == f"2026-11-29T10:{index:02d}:00Z"
            assert record.job_id == "poem"
        saved = get_schedule(stores[2], "every_minute")
        assert saved is not None
        assert saved.last_run_id == expected[-1]
        assert saved.next_slot == datetime.datetime(2026, 11, 29, 10, 10, tzinfo=UTC)

        # Paused: nothing fires, however much time passes.
        pause_schedule(stores[1], "every_minute", clock=clock)
        for minute in range(10, 15):
            clock.set(f"2026-11-29T10:{minute:02d}:05")
            assert fire_due(stores[minute % 3], clock=clock) == []
        assert len(run_ids(stores[0])) == 10
        # Resumed: from the next slot after now; the paused slots are not caught up.
        resumed = resume_schedule(stores[2], "every_minute", clock=clock)
        assert resumed.next_slot == datetime.datetime(2026, 11, 29, 10, 15, tzinfo=UTC)
        clock.set("2026-11-29T10:15:02")
        assert slots_of(fire_due(stores[0], clock=clock)) == ["1015"]
        assert run_ids(stores[0])[-1] == "every_minute-20261129T1015Z"
        assert len(run_ids(stores[0])) == 11
    finally:
        for opened in stores:
            opened.close()


def test_three_racing_dispatchers_fire_and_run_ten_minutes_as_ten_runs(store_url: str) -> None:
    # The default overlap policy (SKIP) holds: each run finishes before the next minute.
    clock = Clock("2026-11-29T09:59:30")
    stores = [open_store(store_url) for _ in range(3)]
    try:
        add_schedule(stores[0], schedule(inputs={"topic": "owls"}), clock=clock)
        dispatchers = [Dispatcher(s, offline_context(), clock=clock, workers=2) for s in stores]

        async def drive() -> None:
            for minute in range(10):
                clock.set(f"2026-11-29T10:{minute:02d}:01")
                await asyncio.gather(*(d.run(until_idle=True) for d in dispatchers))

        asyncio.run(asyncio.wait_for(drive(), 300))
        expected = [f"every_minute-20261129T10{minute:02d}Z" for minute in range(10)]
        assert run_ids(stores[0]) == expected
        for run_id in expected:
            record = read_job_run(stores[0], run_id, steps=False)
            assert record is not None
            assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
            assert record.schedule_id == "every_minute"
            assert record.inputs["topic"] == "owls"
        saved = get_schedule(stores[0], "every_minute")
        assert saved is not None and saved.last_skipped is None
        runs = schedule_runs(stores[1], "every_minute", limit=3)
        assert [run.run_id for run in runs] == expected[:-4:-1]
        assert {run.status for run in runs} == {"RUN_STATUS_SUCCEEDED"}
        assert runs[0].slot == datetime.datetime(2026, 11, 29, 10, 9, tzinfo=UTC)
        assert len(schedule_runs(stores[2], "every_minute")) == 10
    finally:
        for opened in stores:
            opened.close()


# -- catch-up and overlap ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "caught_up"),
    [
        (config_pb2.CATCH_UP_POLICY_UNSPECIFIED, ["1005"]),  # the default: LATEST
        (config_pb2.CATCH_UP_POLICY_LATEST, ["1005"]),
        (config_pb2.CATCH_UP_POLICY_NONE, []),
        (config_pb2.CATCH_UP_POLICY_ALL, ["1001", "1002", "1003", "1004", "1005"]),
    ],
)
def test_a_gap_of_five_missed_minutes_is_caught_up_by_the_policy(
    store: Store, policy: config_pb2.CatchUpPolicy, caught_up: list[str]
) -> None:
    clock = Clock("2026-11-29T09:59:30")
    add_schedule(
        store, schedule(overlap=config_pb2.OVERLAP_POLICY_ALLOW, catch_up=policy), clock=clock
    )
    clock.set("2026-11-29T10:00:10")
    assert slots_of(fire_due(store, clock=clock)) == ["1000"]
    # Nothing fires 10:01 to 10:05; at 10:06:50 they are missed (over 90 s late) and the
    # 10:06 slot is on time (50 s late): it fires under every policy.
    clock.set("2026-11-29T10:06:50")
    fired = fire_due(store, clock=clock)
    assert slots_of(fired) == [*caught_up, "1006"]
    assert run_ids(store) == [f"every_minute-20261129T{s}Z" for s in ["1000", *caught_up, "1006"]]
    saved = get_schedule(store, "every_minute")
    assert saved is not None
    assert saved.next_slot == datetime.datetime(2026, 11, 29, 10, 7, tzinfo=UTC)
    assert saved.last_run_id == "every_minute-20261129T1006Z"


def test_overlap_skip_skips_slots_while_the_previous_run_is_unfinished(store: Store) -> None:
    clock = Clock("2026-11-29T09:59:30")
    add_schedule(store, schedule(), clock=clock)
    clock.set("2026-11-29T10:00:03")
    assert slots_of(fire_due(store, clock=clock)) == ["1000"]
    # No dispatcher ran it: the 10:00 run is still pending at 10:01 and 10:02.
    for minute in (1, 2):
        clock.set(f"2026-11-29T10:{minute:02d}:03")
        fired = fire_due(store, clock=clock)
        assert slots_of(fired, "skipped") == [f"10{minute:02d}"]
        assert fired[0].detail == "every_minute-20261129T1000Z unfinished"
    saved = get_schedule(store, "every_minute")
    assert saved is not None
    assert saved.last_skipped == datetime.datetime(2026, 11, 29, 10, 2, tzinfo=UTC)
    assert saved.last_run_id == "every_minute-20261129T1000Z"
    assert run_ids(store) == ["every_minute-20261129T1000Z"]
    # Once it has run, the next slot fires.
    stats = asyncio.run(Dispatcher(store, offline_context(), clock=clock).run(until_idle=True))
    assert stats.handled.get("succeeded") == 3
    clock.set("2026-11-29T10:03:03")
    assert slots_of(fire_due(store, clock=clock)) == ["1003"]
    # ALL with SKIP after a gap: the first missed slot starts, the others wait behind it.
    asyncio.run(Dispatcher(store, offline_context(), clock=clock).run(until_idle=True))
    add_schedule(
        store,
        schedule(catch_up=config_pb2.CATCH_UP_POLICY_ALL),
        replace=True,
        clock=clock,
    )
    clock.set("2026-11-29T10:08:30")
    fired = fire_due(store, clock=clock)
    assert slots_of(fired) == ["1004"]
    assert slots_of(fired, "skipped") == ["1005", "1006", "1007", "1008"]


# -- daylight saving time ----------------------------------------------------------------------


def _local(slots: list[datetime.datetime], zone: str) -> list[str]:
    return [slot.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M %Z") for slot in slots]


@pytest.mark.parametrize(
    ("night", "expected_runs", "expected_local"),
    [
        # Spring forward, Europe/Paris 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 does
        # not exist. As Debian's cron (and cronsim) do, the slot fires at the first minute after
        # the jump, 03:00 CEST: once, not skipped.
        (
            ("2026-03-28T20:00:00", "2026-03-30T04:00:00"),
            ["daily-20260329T0100Z", "daily-20260330T0030Z"],
            ["03-29 03:00 CEST", "03-30 02:30 CEST"],
        ),
        # Fall back, Europe/Paris 2026-10-25: 03:00 CEST goes back to 02:00 CET, so 02:30 comes
        # twice. The slot fires once, at the first 02:30 (CEST), not again an hour later.
        (
            ("2026-10-24T20:00:00", "2026-10-26T04:00:00"),
            ["daily-20261025T0030Z", "daily-20261026T0130Z"],
            ["10-25 02:30 CEST", "10-26 02:30 CET"],
        ),
    ],
    ids=["2026-03-29", "2026-10-25"],
)
def test_a_daily_slot_in_europe_paris_neither_skips_nor_doubles_over_a_dst_change(
    store: Store,
    night: tuple[str, str],
    expected_runs: list[str],
    expected_local: list[str],
) -> None:
    clock = Clock(night[0])
    config = schedule(
        "daily",
        cron="30 2 * * *",
        time_zone="Europe/Paris",
        overlap=config_pb2.OVERLAP_POLICY_ALLOW,  # no dispatcher runs them here
    )
    add_schedule(store, config, clock=clock)
    # Every 5 minutes through the night, as a dispatcher or Cloud Scheduler would look.
    end = at(night[1])
    fired: list[FiredSlot] = []
    while clock.now < end:
        clock.now += 300
        fired += fire_due(store, clock=clock)
    assert run_ids(store) == expected_runs
    assert _local([slot.slot for slot in fired], "Europe/Paris") == expected_local


def test_a_minute_schedule_runs_on_real_time_through_the_repeated_hour(store: Store) -> None:
    # Wildcard minutes and hours follow elapsed time (Debian's cron): the repeated hour of
    # 2026-10-25 fires twice, each slot its own UTC instant and run id.
    clock = Clock("2026-10-24T23:50:00")
    add_schedule(
        store,
        schedule("half_hourly", cron="*/30 * * * *", time_zone="Europe/Paris"),
        clock=clock,
    )
    times = next_fire_times(store, "half_hourly", count=5, clock=clock)
    assert [t.strftime("%H:%M %Z") for t in times] == [
        "02:00 CEST",
        "02:30 CEST",
        "02:00 CET",
        "02:30 CET",
        "03:00 CET",
    ]


# -- managing schedules ------------------------------------------------------------------------


def test_add_list_next_remove(store: Store) -> None:
    clock = Clock("2026-11-29T09:59:30")
    added = add_schedule(
        store,
        schedule("weekdays", cron="30 7 * * MON-FRI", time_zone="Europe/Paris"),
        clock=clock,
    )
    assert added.job_id == "poem"
    # 2026-11-29 is a Sunday; 07:30 in Paris is 06:30 UTC in winter.
    assert added.next_slot == datetime.datetime(2026, 11, 30, 6, 30, tzinfo=UTC)
    times = next_fire_times(store, "weekdays", count=6, clock=clock)
    assert [t.strftime("%a %d %H:%M") for t in times] == [
        "Mon 30 07:30",
        "Tue 01 07:30",
        "Wed 02 07:30",
        "Thu 03 07:30",
        "Fri 04 07:30",
        "Mon 07 07:30",
    ]
    assert str(times[0].tzinfo) == "Europe/Paris"
    add_schedule(store, schedule("other"), clock=clock)
    assert [s.schedule_id for s in list_schedules(store)] == ["other", "weekdays"]
    with pytest.raises(UserError, match="exists"):
        add_schedule(store, schedule("other"), clock=clock)

    remove_schedule(store, "other", clock=clock)
    assert [s.schedule_id for s in list_schedules(store)] == ["weekdays"]
    assert get_schedule(store, "other") is None
    clock.set("2026-11-29T10:05:00")
    assert fire_due(store, clock=clock) == []
    for act in (pause_schedule, resume_schedule, remove_schedule):
        with pytest.raises(UserError, match="no schedule 'other'"):
            act(store, "other", clock=clock)
    with pytest.raises(UserError, match="no schedule 'other'"):
        next_fire_times(store, "other", clock=clock)
    # The id can be used again.
    again = add_schedule(store, schedule("other", cron="0 * * * *"), clock=clock)
    assert again.next_slot == datetime.datetime(2026, 11, 29, 11, 0, tzinfo=UTC)


def test_a_schedule_of_a_saved_job_reads_it_at_each_slot(store: Store) -> None:
    clock = Clock("2026-11-29T09:59:30")
    job = formats.load(JOB_FILE, config_pb2.JobConfig)
    job.job_id = "saved_poem"
    save_job_definition(store, job)
    add_schedule(store, schedule("by_id", job_id="saved_poem"), clock=clock)
    clock.set("2026-11-29T10:00:05")
    assert slots_of(fire_due(store, clock=clock)) == ["1000"]
    record = read_job_run(store, "by_id-20261129T1000Z", steps=False)
    assert record is not None and record.job_id == "saved_poem"
    with pytest.raises(ConfigError) as raised:
        add_schedule(store, schedule("missing", job_id="nope"), clock=clock)
    assert raised.value.problems[0].path == "job_id"
    assert "save it first" in raised.value.problems[0].hint


def test_a_large_job_is_stored_out_of_line(store: Store, tmp_path: pathlib.Path) -> None:
    config = json.loads(pathlib.Path(JOB_FILE).read_text())
    config["description"] = "x" * 40_000
    big = tmp_path / "big.json"
    big.write_text(json.dumps(config))
    clock = Clock("2026-11-29T09:59:30")
    add_schedule(store, schedule("big", job_path=str(big)), clock=clock)
    doc = store.get(schedule_path("big"))
    assert doc is not None and "job" not in doc and "job" in doc[blobs.BLOBS_FIELD]
    clock.set("2026-11-29T10:00:05")
    assert slots_of(fire_due(store, clock=clock)) == ["1000"]
    record = read_job_run(store, "big-20261129T1000Z", steps=False)
    assert record is not None and len(record.config.description) == 40_000
    # The schedule keeps its job: firing saves no definition (it would overwrite jobs/poem).
    assert store.get(job_definition_path("poem")) is None


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda c: setattr(c, "cron", "* * * *"), "cron", "five fields"),
        (lambda c: setattr(c, "cron", "61 * * * *"), "cron", "Bad minute"),
        (lambda c: setattr(c, "cron", "0 0 30 2 *"), "cron", "Bad day-of-month"),
        (lambda c: setattr(c, "time_zone", "Europe/Pariss"), "time_zone", "unknown time zone"),
        (lambda c: setattr(c, "schedule_id", "a/b"), "schedule_id", "contains '/'"),
        (lambda c: setattr(c, "schedule_id", ""), "schedule_id", "needs an id"),
        (lambda c: setattr(c, "job_id", "other"), "job_path", "exactly one of"),
    ],
)
def test_an_invalid_schedule_is_refused_with_field_paths(
    tmp_path: pathlib.Path,
    change: Callable[[config_pb2.ScheduleConfig], None],
    path: str,
    words: str,
) -> None:
    config = schedule()
    change(config)
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        with pytest.raises(ConfigError) as raised:
            add_schedule(store, config)
        assert list_schedules(store) == []
    problem = next(p for p in raised.value.problems if p.path == path)
    assert words in problem.message
    assert problem.hint


def test_an_invalid_job_is_refused_naming_its_file(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "job.json"
    bad.write_text('{"job_id": "j", "tasks": [{"task_id": "a", "steps": [], "next_task": "b"}]}')
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        with pytest.raises(ConfigError) as raised:
            add_schedule(store, schedule(job_path=str(bad)))
        assert list_schedules(store) == []
    assert {p.file for p in raised.value.problems} == {str(bad)}
    assert "tasks[0].next_task" in {p.path for p in raised.value.problems}


def test_a_schedule_broken_by_hand_does_not_stop_the_others(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        clock = Clock("2026-11-29T09:59:30")
        for name in ("a_broken", "b_fine"):
            add_schedule(
                store, schedule(name, overlap=config_pb2.OVERLAP_POLICY_ALLOW), clock=clock
            )
        broken = store.get(schedule_path("a_broken"))
        assert broken is not None
        store.set(schedule_path("a_broken"), {**broken, "time_zone": "Nowhere/Else"})
        clock.set("2026-11-29T10:00:05")
        fired = fire_due(store, clock=clock)
        assert [(f.schedule_id, f.action) for f in fired] == [("b_fine", "fired")]
        assert "schedules/a_broken: ValueError: unknown time zone 'Nowhere/Else'" in caplog.text

"""The fire_schedules Cloud Function, served by a real functions-framework server.

The server runs on the machine's clock, so the schedule is yearly (00:00 UTC on 1 January) and
added as if a year and more ago: the latest missed slot is known without depending on how fast
anything runs.
"""

from __future__ import annotations

import datetime
import pathlib
import time

from llm_scheduler.execution import cron
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.schedules import add_schedule, schedule_run_id
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2
from tests.conftest import REPO_ROOT
from tests.execution.functions_server import Server, post_json

JOB = str(REPO_ROOT / "examples" / "sample_job_config.json")


def test_fire_schedules_starts_the_latest_missed_slot_once(
    store_url: str, tmp_path: pathlib.Path
) -> None:
    config = config_pb2.ScheduleConfig(schedule_id="new_year", job_path=JOB, cron="0 0 1 1 *")
    with open_store(store_url) as store:
        add_schedule(store, config, clock=lambda: time.time() - 400 * 86400)
    server = Server(
        "fire_schedules",
        "http",
        {"LLM_SCHEDULER_STORE": store_url, "LLM_SCHEDULER_OFFLINE": "1"},
        tmp_path / "fire_schedules.log",
    )
    try:
        server.wait_ready()
        status, body = post_json(server.url, None)
        assert status == 200, body
        again_status, again = post_json(server.url, None, method="GET")
    finally:
        server.stop()
    now = datetime.datetime.now(datetime.UTC)
    expected = cron.latest_slot(
        "0 0 1 1 *",
        cron.check_time_zone(""),
        not_before=now - datetime.timedelta(days=400),
        not_after=now,
    )
    assert expected is not None
    run_id = schedule_run_id("new_year", expected)
    assert body == {
        "fired": [
            {
                "schedule_id": "new_year",
                "slot": cron.slot_text(expected),
                "run_id": run_id,
                "detail": "",
            }
        ],
        "skipped": [],
        "failed": [],
    }
    assert again_status == 200 and again == {"fired": [], "skipped": [], "failed": []}
    with open_store(store_url) as store:
        assert [path for path, _ in store.list("job_runs")] == [f"job_runs/{run_id}"]
        record = read_job_run(store, run_id, steps=False)
    assert record is not None
    assert (record.schedule_id, record.schedule_slot) == ("new_year", cron.slot_text(expected))
    entries = [e for e in server.entries() if "schedule slots" in e.get("message", "")]
    assert [e["severity"] for e in entries] == ["INFO"]

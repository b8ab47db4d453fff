"""The schedules page and its actions, in process, on every store backend.

Schedules added here fire by `fire_due` (driven with a test clock, never the machine's); the
page reads them back through `execution.schedules`.
"""

from __future__ import annotations

import datetime
import functools
import pathlib
import shutil
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.execution.schedules import add_schedule, fire_due, get_schedule
from llm_scheduler.execution.submit import save_job_definition
from llm_scheduler.v1 import config_pb2
from tests.conftest import REPO_ROOT
from tests.web.conftest import store_of
from tests.web.runs_support import job_from

SAMPLE = REPO_ROOT / "examples" / "sample_job_config.json"
SAVED_JOB = job_from(
    {
        "job_id": "saved",
        "tasks": [
            {
                "task_id": "only",
                "steps": [
                    {
                        "step_type": 1,
                        "function_call_config": {"function_name": "template", "request": "hi"},
                        "output_config": {"payload": {"said": "%response%"}},
                    }
                ],
            }
        ],
    }
)


@pytest.fixture
def job_file(configs_dir: pathlib.Path) -> str:
    """A job config of the configs folder."""
    path = configs_dir / "sample.json"
    shutil.copy(SAMPLE, path)
    return str(path)


def add(client: TestClient, **form: str) -> Any:
    return client.post("/api/schedules", json=form)


def rows(client: TestClient) -> dict[str, dict[str, Any]]:
    data = client.get("/schedules.json").json()
    return {row["schedule_id"]: row for row in data["schedules"]}


def fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {problem["field"]: problem["message"] for problem in response.json()["problems"]}


def test_a_schedule_added_from_a_file_lists_its_next_fire_times(
    any_store_client: TestClient, job_file: str
) -> None:
    response = add(
        any_store_client,
        schedule_id="mornings",
        job=f"file:{job_file}",
        cron="0 6 * * *",
        time_zone="Europe/Paris",
        inputs='{"topic": "owls"}',
        overlap="allow",
        catch_up="none",
    )
    assert response.status_code == 201, response.text
    row = rows(any_store_client)["mornings"]
    assert row["job_source"] == "file" and row["job_path"] == job_file
    assert (row["cron"], row["time_zone"], row["paused"]) == ("0 6 * * *", "Europe/Paris", False)
    assert (row["overlap"], row["catch_up"]) == ("allow", "none")
    assert row["inputs"] == {"topic": "owls"}
    times = [datetime.datetime.fromisoformat(text) for text in row["next_fire_times"]]
    assert len(times) == 5 and times == sorted(times)
    paris = {datetime.timedelta(hours=1), datetime.timedelta(hours=2)}
    assert all((t.hour, t.minute) == (6, 0) and t.utcoffset() in paris for t in times)
    assert row["last_slot"] is None and row["runs"] == []
    html = any_store_client.get("/schedules").text
    assert 'data-schedule-id="mornings"' in html
    assert row["next_fire_times"][0] in html
    assert 'data-action="pause"' in html


def test_the_add_form_offers_saved_jobs_and_folder_files(
    any_store_client: TestClient, job_file: str
) -> None:
    save_job_definition(store_of(any_store_client), SAVED_JOB)
    data = any_store_client.get("/schedules.json").json()
    values = [job["value"] for job in data["jobs"]]
    assert values == ["store:saved", f"file:{job_file}"]
    assert add(any_store_client, schedule_id="s", job="store:saved", cron="*/5 * * * *").is_success
    row = rows(any_store_client)["s"]
    assert (row["job_id"], row["job_source"], row["time_zone"]) == ("saved", "store", "UTC")
    html = any_store_client.get("/schedules").text
    assert '<option value="store:saved">' in html


def test_problems_come_back_at_their_fields(any_store_client: TestClient, job_file: str) -> None:
    found = fields(add(any_store_client, schedule_id="s", inputs="{not json", cron="* * * * *"))
    assert set(found) == {"job", "inputs"}
    found = fields(add(any_store_client, schedule_id="s", job="file:/etc/passwd", inputs="[1]"))
    assert set(found) == {"job", "inputs"}
    assert "configs folder" in found["job"]
    found = fields(
        add(
            any_store_client,
            schedule_id="s",
            job=f"file:{job_file}",
            cron="61 * *",
            time_zone="Mars/Olympus",
        )
    )
    assert set(found) == {"cron", "time_zone"}
    found = fields(add(any_store_client, schedule_id="bad id!", job="store:none", cron="* * * * *"))
    assert set(found) == {"job"}  # the form's own check comes first
    found = fields(add(any_store_client, schedule_id="", job=f"file:{job_file}", cron="* * * * *"))
    assert set(found) == {"schedule_id"}
    assert rows(any_store_client) == {}


def test_an_existing_id_is_refused(any_store_client: TestClient, job_file: str) -> None:
    assert add(
        any_store_client, schedule_id="s", job=f"file:{job_file}", cron="* * * * *"
    ).is_success
    again = add(any_store_client, schedule_id="s", job=f"file:{job_file}", cron="* * * * *")
    assert again.status_code == 400
    assert "exists" in again.json()["error"]


def test_pause_resume_and_remove(any_store_client: TestClient, job_file: str) -> None:
    assert add(
        any_store_client, schedule_id="s", job=f"file:{job_file}", cron="* * * * *"
    ).is_success
    paused = any_store_client.post("/api/schedules/s/pause", json={})
    assert paused.status_code == 200 and paused.json()["schedule"]["paused"] is True
    assert rows(any_store_client)["s"]["paused"] is True
    assert len(rows(any_store_client)["s"]["next_fire_times"]) == 5
    assert 'data-action="resume"' in any_store_client.get("/schedules").text
    resumed = any_store_client.post("/api/schedules/s/resume", json={})
    assert resumed.json()["schedule"]["paused"] is False
    assert any_store_client.post("/api/schedules/s/remove", json={}).json()["removed"] is True
    assert rows(any_store_client) == {}
    assert get_schedule(store_of(any_store_client), "s") is None
    missing = any_store_client.post("/api/schedules/s/pause", json={})
    assert missing.status_code == 400 and "s" in missing.json()["error"]


def test_actions_are_same_origin_json_posts(any_store_client: TestClient, job_file: str) -> None:
    form = {"schedule_id": "s", "job": f"file:{job_file}", "cron": "* * * * *"}
    assert any_store_client.post("/api/schedules", data=form).status_code == 403
    cross = any_store_client.post(
        "/api/schedules", json=form, headers={"Origin": "https://elsewhere.example"}
    )
    assert cross.status_code == 403
    assert rows(any_store_client) == {}


def test_each_slots_run_is_listed_with_its_link(
    any_store_client: TestClient, job_file: str
) -> None:
    store = store_of(any_store_client)
    start = datetime.datetime(2026, 11, 29, 9, 59, 30, tzinfo=datetime.UTC).timestamp()
    config = config_pb2.ScheduleConfig(
        schedule_id="minutely",
        job_path=job_file,
        cron="* * * * *",
        overlap=config_pb2.OVERLAP_POLICY_ALLOW,
    )
    add_schedule(store, config, clock=lambda: start)
    for now in (start + 35, start + 95):  # 10:00:05, then 10:01:05
        fire_due(store, clock=functools.partial(float, now))
    row = rows(any_store_client)["minutely"]
    assert [run["run_id"] for run in row["runs"]] == [
        "minutely-20261129T1001Z",
        "minutely-20261129T1000Z",
    ]
    assert [run["url"] for run in row["runs"]] == [
        "/runs/minutely-20261129T1001Z",
        "/runs/minutely-20261129T1000Z",
    ]
    assert all(run["status"] == "pending" for run in row["runs"])
    assert row["last_slot"] == "2026-11-29T10:01:00+00:00"
    assert row["last_run_id"] == "minutely-20261129T1001Z"
    html = any_store_client.get("/schedules").text
    assert 'href="/runs/minutely-20261129T1000Z"' in html


def test_the_form_is_checked_without_adding(any_store_client: TestClient, job_file: str) -> None:
    bad = any_store_client.post(
        "/api/schedules/check",
        json={"schedule_id": "s", "job": f"file:{job_file}", "cron": "61 * * * *"},
    )
    assert bad.status_code == 200
    assert bad.json()["ok"] is False
    assert [problem["field"] for problem in bad.json()["problems"]] == ["cron"]
    good = any_store_client.post(
        "/api/schedules/check",
        json={"schedule_id": "s", "job": f"file:{job_file}", "cron": "* * * * *"},
    )
    assert good.json() == {"ok": True, "problems": []}
    assert rows(any_store_client) == {}

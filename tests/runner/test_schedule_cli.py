"""The schedule tool: add, list, next, pause, resume, remove, and its errors (exit code 2)."""

from __future__ import annotations

import json
import pathlib
import re

from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

JOB = str(REPO_ROOT / "examples" / "sample_job_config.json")


def _store(tmp_path: pathlib.Path) -> str:
    return f"--store=sqlite:///{tmp_path / 'state.db'}"


def test_add_list_next_pause_resume_remove(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    added = run_tool(
        "schedule",
        "add",
        "--schedule_id=nightly",
        f"--input_path={JOB}",
        "--cron=30 2 * * *",
        "--time_zone=Europe/Paris",
        "--var",
        "topic=owls",
        "--catch_up=none",
        store,
    )
    assert added.code == 0, added.stderr
    assert added.stdout.strip() == "nightly"
    assert "added schedule 'nightly'" in added.stderr and "Europe/Paris" in added.stderr

    listed = run_tool("schedule", "list", store)
    assert listed.code == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["SCHEDULE", "JOB", "CRON"]
    assert row.split()[:2] == ["nightly", "poem"] and "active" in row
    as_json = run_tool("schedule", "list", "--output_format=json", store)
    (summary,) = json.loads(as_json.stdout)
    assert summary["cron"] == "30 2 * * *" and summary["time_zone"] == "Europe/Paris"
    assert summary["catch_up"] == "NONE" and summary["overlap"] == "SKIP"
    assert summary["job_path"] == JOB and not summary["paused"]

    upcoming = run_tool("schedule", "next", "--schedule_id=nightly", "--count=3", store)
    assert upcoming.code == 0, upcoming.stderr
    lines = upcoming.stdout.splitlines()
    assert len(lines) == 3
    for line in lines:
        # Local time with its offset, then UTC: 02:30 in Paris is 00:30 or 01:30 UTC.
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT02:30:00\+0[12]:00  \(\d{4}-\d\d-\d\dT0[01]:30:00Z\)", line
        ), line

    assert run_tool("schedule", "pause", "--schedule_id=nightly", store).code == 0
    paused = json.loads(run_tool("schedule", "list", "--output_format=json", store).stdout)
    assert paused[0]["paused"] is True
    resumed = run_tool("schedule", "resume", "--schedule_id=nightly", store)
    assert resumed.code == 0 and "next: " in resumed.stderr

    removed = run_tool("schedule", "remove", "--schedule_id=nightly", store)
    assert removed.code == 0, removed.stderr
    empty = run_tool("schedule", "list", "--output_format=json", store)
    assert json.loads(empty.stdout) == []


def test_a_schedule_of_a_saved_job(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    submitted = run_tool("job_submitter", f"--input_path={JOB}", store, "--offline")
    assert submitted.code == 0, submitted.stderr
    added = run_tool(
        "schedule", "add", "--schedule_id=s", "--job_id=poem", "--cron=*/5 * * * *", store
    )
    assert added.code == 0, added.stderr
    missing = run_tool(
        "schedule", "add", "--schedule_id=t", "--job_id=nope", "--cron=*/5 * * * *", store
    )
    assert missing.code == 2
    assert "job_id: no job 'nope' is saved at jobs/nope" in missing.stderr


def test_bad_input_exits_2_with_a_clear_message(tmp_path: pathlib.Path) -> None:
    store = _store(tmp_path)
    cases = [
        (("add", "--schedule_id=s", f"--input_path={JOB}", "--cron=* * *"), "cron: "),
        (
            ("add", "--schedule_id=s", f"--input_path={JOB}", "--cron=* * * * *",
             "--time_zone=Mars/Base"),
            "time_zone: unknown time zone 'Mars/Base'",
        ),
        (("add", "--schedule_id=s", "--cron=* * * * *"), "--input_path=job.json or --job_id"),
        (("add", "--schedule_id=s", f"--input_path={JOB}"), "needs --cron"),
        (("add", f"--input_path={JOB}", "--cron=* * * * *"), "--schedule_id is required"),
        (
            ("add", "--schedule_id=s", "--input_path=/no/such.json", "--cron=* * * * *"),
            "no such file",
        ),
        (("pause", "--schedule_id=ghost"), "no schedule 'ghost'"),
        (("next", "--schedule_id=ghost"), "no schedule 'ghost'"),
        (("list", "--cron=* * * * *"), "--cron only go with schedule add"),
        (("launch",), "name one command: add, list, pause, resume, remove, next"),
        ((), "name one command"),
    ]  # fmt: skip
    for args, message in cases:
        result = run_tool("schedule", *args, store)
        assert result.code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    assert json.loads(run_tool("schedule", "list", "--output_format=json", store).stdout) == []

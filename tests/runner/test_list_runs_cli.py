"""``config_reader --list_runs``: a table of job runs, page by page, and its JSON twin."""

from __future__ import annotations

import json
import pathlib

from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.run_list import list_runs
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.testing.sized_jobs import chain_job
from tests.clitools import run_tool


def _next_cursor(stderr: str) -> str:
    (line,) = [line for line in stderr.splitlines() if "next page: --cursor=" in line]
    return line.rsplit("--cursor=", 1)[1]


def _store_with_runs(path: pathlib.Path) -> list[str]:
    """Three chain runs, one of which finished, plus a failed run of another job."""
    with SqliteStore(path) as store:
        run_ids = [submit_job(store, chain_job(2), offline=True) for _ in range(3)]
        store.set(
            docs.job_run_path("broken-1"),
            {
                "job_id": "other",
                "status": docs.Status.FAILED,
                "created_at": docs.iso(1_000.0),
                "started_at": docs.iso(1_001.0),
                "finished_at": docs.iso(1_126.0),
                "usage": {"input_tokens": "7", "output_tokens": "5"},
                "cost_usd": 0.25,
                "error": {"message": "task 'a' failed: boom"},
            },
        )
    return run_ids


def test_the_table_pages_through_every_run(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    store = f"sqlite:///{path}"
    run_ids = _store_with_runs(path)
    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle", "--offline")
    assert dispatched.code == 0, dispatched.stderr

    first = run_tool("config_reader", "--list_runs", f"--store={store}", "--limit=2")
    assert first.code == 0, first.stderr
    header, *rows = first.stdout.splitlines()
    assert header.split() == [
        "RUN",
        "ID",
        "JOB",
        "STATUS",
        "STARTED",
        "(UTC)",
        "DURATION",
        "TOKENS",
        "IN/OUT",
        "COST",
    ]
    assert [row.split()[0] for row in rows] == run_ids[:0:-1]
    assert all(row.split()[1:3] == ["chain", "SUCCEEDED"] for row in rows)
    assert f"2 runs in {store}; next page: --cursor=" in first.stderr

    rest = run_tool(
        "config_reader", "--list_runs", f"--store={store}", f"--cursor={_next_cursor(first.stderr)}"
    )
    assert rest.code == 0, rest.stderr
    rows = rest.stdout.splitlines()[1:]
    assert [row.split()[0] for row in rows] == [run_ids[0], "broken-1"]
    assert rows[1].split()[1:] == [
        "other",
        "FAILED",
        "1970-01-01",
        "00:16:41",
        "2m05s",
        "7/5",
        "$0.250000",
    ]
    assert "no more" in rest.stderr


def test_filters_and_the_json_twin(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    store = f"sqlite:///{path}"
    run_ids = _store_with_runs(path)
    failed = run_tool(
        "config_reader", "--list_runs", f"--store={store}", "--status=failed", "--job_id=other"
    )
    assert failed.code == 0, failed.stderr
    assert [row.split()[0] for row in failed.stdout.splitlines()[1:]] == ["broken-1"]

    as_json = run_tool(
        "config_reader", "--list_runs", f"--store={store}", "--output_format=json", "--limit=1"
    )
    assert as_json.code == 0, as_json.stderr
    page = json.loads(as_json.stdout)
    with SqliteStore(path) as opened:
        assert page == list_runs(opened, limit=1).to_json()
    assert page["runs"][0]["run_id"] == run_ids[-1]
    assert page["runs"][0]["status"] == "PENDING"
    assert page["next_cursor"] == _next_cursor(as_json.stderr)


def test_bad_list_flags_are_the_users_error(tmp_path: pathlib.Path) -> None:
    store = f"--store=sqlite:///{tmp_path / 'state.db'}"
    cases = [
        (["--list_runs", "--limit=0"], "limit must be a whole number from 1 to 500"),
        (["--list_runs", "--cursor=nope"], "invalid cursor 'nope'"),
        (["--list_runs", "--status=DONE"], "unknown run status 'DONE'"),
        (["--list_runs", "--output_format=textproto"], "--output_format=json"),
        (["--list_runs", "--run_id=r"], "leave out --run_id"),
        (["--run_id=r", "--status=FAILED"], "--status goes with --list_runs"),
    ]
    for args, message in cases:
        result = run_tool("config_reader", *args, store)
        assert result.code == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert result.stdout == ""


def test_help_lists_the_list_flags() -> None:
    result = run_tool("config_reader", "--help")
    assert result.code == 0, result.stderr
    for name in ("--[no]list_runs", "--job_id", "--status", "--limit", "--cursor"):
        assert f"\n  {name}:" in result.stdout, name
    assert "config_reader --list_runs" in result.stdout

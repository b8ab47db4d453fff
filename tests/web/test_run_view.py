"""The run page's view models: a `JobRun` reshaped for display."""

from __future__ import annotations

import json
import math
import pathlib

import pytest

from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.v1 import run_pb2
from llm_scheduler.web.run_view import (
    STATUSES,
    TIMELINE_BAR_WIDTH,
    error_view,
    run_view,
    status_name,
    step_view,
    task_view,
    timeline_view,
)
from tests.web.runs_support import chain_job, run_offline


@pytest.fixture
def finished_run(tmp_path: pathlib.Path) -> run_pb2.JobRun:
    with SqliteStore(tmp_path / "state.db") as store:
        run_id = run_offline(store, chain_job())
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    return job_run


def running_job_run() -> run_pb2.JobRun:
    """A run of chain_job whose first task is running and second has no run yet."""
    job_run = run_pb2.JobRun(run_id="r1", job_id="chain", status=run_pb2.RUN_STATUS_RUNNING)
    job_run.config.CopyFrom(chain_job())
    job_run.started_at.FromSeconds(1000)
    first = job_run.tasks.add(task_id="first", status=run_pb2.RUN_STATUS_RUNNING, attempt=1)
    first.started_at.FromSeconds(1002)
    first.steps.add(index=0, name="ask ask", status=run_pb2.RUN_STATUS_SUCCEEDED)
    return job_run


def test_status_names_are_short_and_lower_case() -> None:
    names = [status_name(value) for value in run_pb2.RunStatus.values()]
    assert names == ["pending", *STATUSES]
    assert status_name(99) == "pending"


def test_run_view_of_a_finished_run(finished_run: run_pb2.JobRun) -> None:
    view = run_view(finished_run)
    json.dumps(view)  # JSON values only
    run = view["run"]
    assert run["run_id"] == finished_run.run_id
    assert (run["job_id"], run["job_name"], run["status"]) == ("chain", "A chain", "succeeded")
    assert run["finished"] and not run["can_cancel"] and not run["can_resume"]
    assert run["started_at"].endswith("Z") and run["finished_at"].endswith("Z")
    assert run["duration_seconds"] >= 0
    assert run["usage"]["input_tokens"] > 0 and run["error"] is None
    assert run["inputs"] == {"topic": "owls"}
    assert run["outputs"]["second"]["final"].startswith("[offline GEMINI_FLASH")
    assert [t["task_id"] for t in view["tasks"]] == ["first", "second"]
    first, second = view["tasks"]
    assert first["name"] == "First task" and second["name"] == ""
    assert (first["step_count"], first["steps_done"], second["step_count"]) == (2, 2, 1)
    assert first["status"] == second["status"] == "succeeded"
    assert 0 <= first["start_offset"] <= first["end_offset"] <= second["start_offset"]
    assert second["end_offset"] <= run["duration_seconds"]
    assert view["counts"] == {**dict.fromkeys(STATUSES, 0), "succeeded": 2}


def test_task_view_holds_every_step_field(finished_run: run_pb2.JobRun) -> None:
    view = task_view(finished_run, "first")
    assert view is not None
    json.dumps(view)
    assert view["inputs"] == {"topic": "owls"}
    assert set(view["outputs"]) == {"fact", "line"}
    assert view["next_tasks"] == ["second"] and view["predecessors"] == []
    ask, fmt = view["steps"]
    assert ask["type"] == "model_query" and ask["status"] == "succeeded"
    assert ask["system_prompt"] == "You are terse."
    assert ask["user_prompt"] == "Tell me about owls."
    assert ask["response_text"].endswith("Tell me about owls.")
    assert ask["outputs"] == {"fact": ask["response_text"]}
    assert (ask["model_key"], ask["provider"], ask["provider_model"]) == (
        "GEMINI_FLASH",
        "offline",
        "GEMINI_FLASH",
    )
    assert ask["parameters"] == {"temperature": 0.5}
    assert ask["usage"]["input_tokens"] > 0 and ask["attempts"] == 1 and ask["retries"] == 0
    assert ask["fingerprint"] and ask["function_request"] is None
    assert fmt["type"] == "function_call" and fmt["function_name"] == "template"
    assert fmt["function_request"] == {"text": f"fact: {ask['response_text']}"}
    assert fmt["function_response"] == f"fact: {ask['response_text']}"
    second = task_view(finished_run, "second")
    assert second is not None and second["predecessors"] == ["first"]
    assert task_view(finished_run, "nope") is None


def test_tasks_and_steps_without_a_run_are_pending() -> None:
    view = run_view(running_job_run(), now=1010)
    run = view["run"]
    assert run["status"] == "running" and not run["finished"]
    assert run["can_cancel"] and not run["can_resume"]
    assert run["duration_seconds"] == 10 and run["finished_at"] is None
    first, second = view["tasks"]
    assert (first["status"], first["start_offset"], first["end_offset"]) == ("running", 2, None)
    assert second["status"] == "pending" and second["start_offset"] is None
    assert view["counts"]["running"] == 1 and view["counts"]["pending"] == 1
    details = task_view(running_job_run(), "first")
    assert details is not None
    assert [s["status"] for s in details["steps"]] == ["succeeded", "pending"]
    assert details["steps"][1]["function_name"] == "template"
    pending = task_view(running_job_run(), "second")
    assert pending is not None and pending["status"] == "pending"
    assert pending["steps"][0]["model_key"] == "GEMINI_FLASH"


def test_a_run_not_started_has_no_times() -> None:
    job_run = run_pb2.JobRun(run_id="r", status=run_pb2.RUN_STATUS_PENDING)
    job_run.config.CopyFrom(chain_job())
    view = run_view(job_run)
    run = view["run"]
    assert run["status"] == "pending" and run["duration_seconds"] is None
    assert run["started_at"] is None and run["can_cancel"]
    timeline = timeline_view(view)
    assert timeline["ticks"] == [] and [row["bar"] for row in timeline["rows"]] == [None, None]


def test_errors_retries_and_reuse_are_shown() -> None:
    job_run = running_job_run()
    job_run.status = run_pb2.RUN_STATUS_FAILED
    job_run.error.message = "task first failed"
    task = job_run.tasks[0]
    task.status = run_pb2.RUN_STATUS_FAILED
    task.error.type, task.error.message = "ProviderError", "rate limited"
    step = task.steps.add(index=1, status=run_pb2.RUN_STATUS_FAILED, attempts=3, cache_hit=True)
    step.error.type, step.error.message = "ProviderError", "rate limited"
    step.error.retryable, step.error.http_status = True, 429
    step.usage.cached_input_tokens = 5
    step.reused_from_run_id = "r0"
    view = run_view(job_run)
    assert view["run"]["can_resume"] and not view["run"]["can_cancel"]
    assert view["run"]["error"] == {
        "type": "",
        "message": "task first failed",
        "retryable": False,
        "http_status": None,
    }
    assert view["tasks"][0]["error"] == "ProviderError: rate limited"
    shown = step_view(step)
    assert shown["retries"] == 2 and shown["cache_hit"] and shown["reused_from_run_id"] == "r0"
    assert shown["usage"]["cached_input_tokens"] == 5
    assert shown["error"] == {
        "type": "ProviderError",
        "message": "rate limited",
        "retryable": True,
        "http_status": 429,
    }
    assert error_view(run_pb2.ErrorInfo()) is None
    cancelled = running_job_run()
    cancelled.status = run_pb2.RUN_STATUS_CANCELLED
    assert run_view(cancelled)["run"]["can_resume"]


def test_values_json_cannot_hold_are_still_shown() -> None:
    job_run = running_job_run()
    job_run.tasks[0].outputs["x"] = math.nan
    details = task_view(job_run, "first")
    assert details is not None and details["outputs"] == {"x": "NaN"}
    json.dumps(details)


def test_task_runs_missing_from_the_config_are_shown() -> None:
    job_run = running_job_run()
    extra = job_run.tasks.add(task_id="old", status=run_pb2.RUN_STATUS_SUCCEEDED)
    extra.steps.add(index=0, status=run_pb2.RUN_STATUS_SUCCEEDED)
    assert [t["task_id"] for t in run_view(job_run)["tasks"]] == ["first", "second", "old"]
    details = task_view(job_run, "old")
    assert details is not None and len(details["steps"]) == 1


def test_a_task_or_a_summary_read_alone_shows_as_in_the_whole_run(tmp_path: pathlib.Path) -> None:
    with SqliteStore(tmp_path / "state.db") as store:
        run_id = run_offline(store, chain_job())
        whole = read_job_run(store, run_id)
        alone = read_job_run(store, run_id, task_ids=["second"])
        summary = read_job_run(store, run_id, steps=False)
        assert read_job_run(store, run_id, task_ids=["nope"]) is not None
    assert whole is not None and alone is not None
    assert [task.task_id for task in alone.tasks] == ["second"]
    assert task_view(alone, "second") == task_view(whole, "second")
    assert summary is not None and [len(task.steps) for task in summary.tasks] == [0, 0]
    # Read without steps, a run shows as read whole, given the steps each task did.
    assert run_view(summary, steps_done={"first": 2, "second": 1}) == run_view(whole)


def test_the_timeline_has_a_bar_per_started_task_and_round_ticks() -> None:
    view = run_view(running_job_run(), now=1010)
    timeline = timeline_view(view)
    first, second = timeline["rows"]
    assert (first["task_id"], first["label"], first["status"]) == ("first", "First task", "running")
    assert first["bar"] is not None and second["bar"] is None
    # A running task reaches the run's current duration (10 s; it started at 2 s).
    label, width = timeline["label_width"], TIMELINE_BAR_WIDTH
    assert first["bar"]["x"] == pytest.approx(label + width * 2 / 10, abs=0.1)
    assert first["bar"]["width"] == pytest.approx(width * 8 / 10, abs=0.1)
    assert second["y"] - first["y"] == timeline["row_height"]
    assert [tick["label"] for tick in timeline["ticks"]] == [
        "0",
        "2 s",
        "4 s",
        "6 s",
        "8 s",
        "10 s",
    ]
    assert first["title"] == "first: running, 2.000 s to now"
    assert timeline_view({"run": {"duration_seconds": None}, "tasks": []})["rows"] == []

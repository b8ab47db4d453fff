"""Maps run in process only for now: every way into a store refuses a job with a map.

The event-driven protocol for maps (docs/design/graphs_that_grow.md) is not built yet, so a
store must never hold a run that its dispatchers would half-run.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from llm_scheduler.config import formats
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.run_requests import handle_run_request, run_request_path
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2
from tests.clitools import run_tool

MAP_JOB: dict[str, Any] = {
    "job_id": "mapped",
    "input_config": {"payload": {"topics": ["owls", "cats", "bees"]}},
    "tasks": [
        {
            "task_id": "write",
            "next_task": "join",
            "for_each": {"items": "%topics%", "item_variable": "topic"},
            "steps": [
                {
                    "model_query_config": {"model_key": "OFFLINE", "user_prompt": "On %topic%"},
                    "output_config": {"payload": {"text": "%response%"}},
                }
            ],
        },
        {
            "task_id": "join",
            "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%text%"}}],
        },
    ],
}
PATH = "tasks[0].for_each"


def _job() -> config_pb2.JobConfig:
    return formats.loads(json.dumps(MAP_JOB), config_pb2.JobConfig, formats.ConfigFormat.JSON)


def test_submit_job_refuses_a_map_and_writes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with pytest.raises(ConfigError) as info:
            submit_job(store, _job())
        assert isinstance(info.value, UserError)
        (problem,) = info.value.problems
        assert problem.path == PATH
        assert "task 'write' is a map" in problem.message
        assert "job_runner without --store" in problem.hint
        assert store.list("job_runs") == []
    finally:
        store.close()


def test_a_run_request_with_a_map_is_rejected(tmp_path: pathlib.Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.set(run_request_path("req-map"), {"config": MAP_JOB})
        outcome = handle_run_request(store, "req-map")
        assert outcome.action == "rejected"
        request = store.get(run_request_path("req-map"))
        assert request is not None and request["status"] == "REJECTED"
        assert [p["path"] for p in request["problems"]] == [f"config.{PATH}"]
        assert "job_runner without --store" in request["problems"][0]["hint"]
        assert store.get(docs.job_run_path("req-map")) is None
    finally:
        store.close()


def test_job_submitter_and_job_runner_with_a_store_refuse_a_map(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "mapped.json"
    config.write_text(json.dumps(MAP_JOB))
    store = f"sqlite:///{tmp_path / 'state.db'}"
    for tool in ("job_submitter", "job_runner"):
        result = run_tool(tool, f"--input_path={config}", f"--store={store}", "--offline")
        assert result.code == 2, (tool, result.stderr)
        assert PATH in result.stderr and "job_runner without --store" in result.stderr, tool
    opened = open_store(store)
    try:
        assert opened.list("job_runs") == []
    finally:
        opened.close()


def test_job_runner_without_a_store_runs_the_map(tmp_path: pathlib.Path) -> None:
    config = tmp_path / "mapped.json"
    config.write_text(json.dumps(MAP_JOB))
    result = run_tool("job_runner", f"--input_path={config}", "--offline")
    assert result.code == 0, result.stderr
    answer = json.loads(result.stdout)["join"]["response"]
    # The join saw the three items' answers as a list, in item order.
    seen = json.loads(answer.split("] ", 1)[1])
    assert [text.split("] ", 1)[1] for text in seen] == ["On owls", "On cats", "On bees"]

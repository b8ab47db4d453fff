"""Sub-job steps run in process only for now: every way into a store refuses them.

The event-driven protocol for sub-jobs (docs/design/graphs_that_grow.md, "A sub-job step that
waits in the store") is not built yet, so a store must never hold a run that its dispatchers
would half-run.
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

CHILD: dict[str, Any] = {
    "job_id": "child",
    "input_config": {"payload": {"section": ""}},
    "tasks": [
        {
            "task_id": "final",
            "steps": [
                {
                    "model_query_config": {"model_key": "OFFLINE", "user_prompt": "On %section%"},
                    "output_config": {"payload": {"summary": "%response%"}},
                }
            ],
        }
    ],
}
SUB_JOB: dict[str, Any] = {
    "job_id": "parent",
    "input_config": {"payload": {"topic": "owls"}},
    "tasks": [
        {
            "task_id": "write",
            "steps": [
                {
                    "name": "child",
                    "step_type": "STEP_TYPE_SUB_JOB",
                    "sub_job_config": {"job": CHILD, "inputs": {"section": "%topic%"}},
                    "output_config": {"payload": {"summary": "%response.final.summary%"}},
                }
            ],
        }
    ],
}
PATH = "tasks[0].steps[0].sub_job_config"


def _job() -> config_pb2.JobConfig:
    return formats.loads(json.dumps(SUB_JOB), config_pb2.JobConfig, formats.ConfigFormat.JSON)


def test_submit_job_refuses_a_sub_job_step_and_writes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    try:
        with pytest.raises(ConfigError) as info:
            submit_job(store, _job())
        assert isinstance(info.value, UserError)
        (problem,) = info.value.problems
        assert problem.path == PATH
        assert "sub-job step" in problem.message
        assert "job_runner without --store" in problem.hint
        assert store.list("job_runs") == []
    finally:
        store.close()


def test_a_run_request_with_a_sub_job_step_is_rejected(tmp_path: pathlib.Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        store.set(run_request_path("req-sub"), {"config": SUB_JOB})
        outcome = handle_run_request(store, "req-sub")
        assert outcome.action == "rejected"
        request = store.get(run_request_path("req-sub"))
        assert request is not None and request["status"] == "REJECTED"
        assert [p["path"] for p in request["problems"]] == [f"config.{PATH}"]
        assert "job_runner without --store" in request["problems"][0]["hint"]
        assert store.get(docs.job_run_path("req-sub")) is None
    finally:
        store.close()


def test_job_submitter_and_job_runner_with_a_store_refuse_a_sub_job(
    tmp_path: pathlib.Path,
) -> None:
    config = tmp_path / "parent.json"
    config.write_text(json.dumps(SUB_JOB))
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


def test_job_runner_without_a_store_runs_a_sub_job_from_its_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "child.json").write_text(json.dumps(CHILD))
    parent = json.loads(json.dumps(SUB_JOB))
    parent["tasks"][0]["steps"][0]["sub_job_config"] = {
        "job_path": "child.json",
        "inputs": {"section": "%topic%"},
    }
    config = tmp_path / "parent.json"
    config.write_text(json.dumps(parent))
    result = run_tool("job_runner", f"--input_path={config}", "--offline")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["write"]["summary"].endswith("On owls")

"""trace_export as a user runs it: submit and dispatch on SQLite, export, validate, replay."""

from __future__ import annotations

import json
import pathlib

import jsonschema

from llm_scheduler.trace import read_trace
from llm_scheduler.v1 import run_pb2
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

JOB = REPO_ROOT / "examples" / "sample_fanout_job_config.json"
SCHEMA_FILE = REPO_ROOT / "docs" / "trace.schema.json"


def test_export_a_dispatched_run(tmp_path: pathlib.Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    submitted = run_tool("job_submitter", f"--input_path={JOB}", f"--store={store}", "--offline")
    assert submitted.code == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle", "--offline")
    assert dispatched.code == 0, dispatched.stderr

    output = tmp_path / "trace.json"
    exported = run_tool(
        "trace_export", f"--run_id={run_id}", f"--store={store}", f"--output={output}"
    )
    assert exported.code == 0, exported.stderr
    assert f"trace of run {run_id} (4 tasks, 4 steps) written to {output}" in exported.stderr
    assert exported.stdout == ""

    tree = json.loads(output.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(tree)
    job_run = read_trace(output)
    assert job_run.run_id == run_id
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    job = job_run.config
    assert [t.task_id for t in job_run.tasks] == [t.task_id for t in job.tasks]
    for task, config in zip(job_run.tasks, job.tasks, strict=True):
        assert task.status == run_pb2.RUN_STATUS_SUCCEEDED
        assert [s.step_id for s in task.steps] == [s.id for s in config.steps]
        for step in task.steps:
            assert step.response_text.startswith("[offline ")
            assert step.user_prompt and step.fingerprint and step.response_digest

    replay = run_tool("job_runner", f"--replay={output}", "--offline")
    assert replay.code == 0, replay.stderr
    assert "4 of 4 steps reused, 0 run" in replay.stderr


def test_unknown_run_and_missing_flags_exit_2(tmp_path: pathlib.Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    output = tmp_path / "trace.json"
    unknown = run_tool("trace_export", "--run_id=nope", f"--store={store}", f"--output={output}")
    assert unknown.code == 2
    assert "no job run 'nope'" in unknown.stderr
    assert not output.exists()
    no_output = run_tool("trace_export", "--run_id=nope", f"--store={store}")
    assert no_output.code == 2 and "--output is required" in no_output.stderr
    no_run = run_tool("trace_export", f"--store={store}", f"--output={output}")
    assert no_run.code == 2 and "--run_id is required" in no_run.stderr

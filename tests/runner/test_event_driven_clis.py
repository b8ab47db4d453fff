"""job_submitter, dispatcher and config_reader --run_id, as the README's main command runs them."""

from __future__ import annotations

import json
import pathlib

from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

JOB = str(REPO_ROOT / "examples" / "sample_fanout_job_config.json")


def test_submit_dispatch_and_read_back(tmp_path: pathlib.Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    submitted = run_tool("job_submitter", f"--input_path={JOB}", f"--store={store}", "--offline")
    assert submitted.code == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    assert run_id.startswith("idea_review-")

    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle", "--offline")
    assert dispatched.code == 0, dispatched.stderr
    assert "handled: {'succeeded': 4}" in dispatched.stderr

    read = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}")
    assert read.code == 0, read.stderr
    summary = json.loads(read.stdout)
    assert summary["status"] == "SUCCEEDED"
    assert [t["status"] for t in summary["tasks"]] == ["SUCCEEDED"] * 4
    assert set(summary["outputs"]) == {"verdict"}
    assert f"run {run_id} in sqlite:///" in read.stderr

    record = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}", "--print_record")
    assert json.loads(record.stdout)["tasks"][3]["steps"][0]["provider"] == "offline"


def test_store_defaults_to_the_environment(tmp_path: pathlib.Path) -> None:
    env = {"LLM_SCHEDULER_STORE": f"sqlite:///{tmp_path / 'env.db'}", "LLM_SCHEDULER_OFFLINE": "1"}
    submitted = run_tool("job_submitter", f"--input_path={JOB}", env=env)
    assert submitted.code == 0, submitted.stderr
    assert (tmp_path / "env.db").exists()


def test_submitter_rejects_bad_input_before_writing(tmp_path: pathlib.Path) -> None:
    store = tmp_path / "state.db"
    bad = tmp_path / "job.json"
    bad.write_text('{"job_id": "j", "tasks": [{"task_id": "a", "steps": [], "next_task": "a"}]}')
    result = run_tool("job_submitter", f"--input_path={bad}", f"--store=sqlite:///{store}")
    assert result.code == 2
    assert "tasks[0].next_task" in result.stderr and "tasks[0].steps" in result.stderr
    assert not store.exists()

    no_key = run_tool("job_submitter", f"--input_path={JOB}", f"--store=sqlite:///{store}")
    assert no_key.code == 2 and "GEMINI_API_KEY" in no_key.stderr


def test_unknown_run_and_bad_store_url(tmp_path: pathlib.Path) -> None:
    missing = run_tool("config_reader", "--run_id=nope", f"--store=sqlite:///{tmp_path / 'x.db'}")
    assert missing.code == 2 and "no job run 'nope'" in missing.stderr
    bad_url = run_tool("dispatcher", "--store=postgres://x", "--until_idle")
    assert bad_url.code == 2 and "unknown store URL" in bad_url.stderr

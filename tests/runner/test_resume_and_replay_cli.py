"""job_runner --store / --resume / --replay_run_id as a user runs them."""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from llm_scheduler.config import formats
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, REPO_ROOT


def long_job(path: pathlib.Path, steps: int) -> pathlib.Path:
    chain = [
        {
            "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": f"step {i} %v{i}%"},
            "output_config": {"payload": {f"v{i + 1}": ""}},
        }
        for i in range(steps)
    ]
    job = {
        "job_id": "long",
        "tasks": [{"task_id": "only", "steps": chain}],
        "input_config": {"payload": {"v0": "seed"}},
    }
    path.write_text(json.dumps(job))
    return path


def test_killed_store_run_resumes_without_repeating_completed_steps(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    steps = 6
    fake_server.latency_seconds = 0.2
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    job = long_job(tmp_path / "job.json", steps)
    env = {**os.environ, **FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llm_scheduler.runner.job_runner",
            f"--input_path={job}",
            f"--store={store_url}",
            "--quiet",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert first.stderr is not None
    line = first.stderr.readline()
    found = re.search(r"run (\S+) stored in", line)
    assert found, line
    run_id = found.group(1)
    with open_store(store_url) as store:
        collection = docs.step_runs_collection(run_id, "only")
        deadline = time.monotonic() + 30
        while len(store.list(collection)) < 3:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stderr.close()
        persisted = len(store.list(collection))

    resumed = run_tool(
        "job_runner",
        f"--resume={run_id}",
        f"--store={store_url}",
        env={**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)},
    )
    assert resumed.code == 0, resumed.stderr
    assert f"resuming run {run_id}: requeued only" in resumed.stderr
    assert set(json.loads(resumed.stdout)) == {"only"}
    prompts = [r.body["messages"][-1]["content"] for r in fake_server.requests]
    for index in range(persisted):
        assert sum(p.startswith(f"step {index} ") for p in prompts) == 1
    assert len(prompts) <= steps + 1


def test_replay_a_stored_run_makes_no_calls(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    job = long_job(tmp_path / "job.json", 4)
    env = {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}
    first = run_tool("job_runner", f"--input_path={job}", f"--store={store_url}", env=env)
    assert first.code == 0, first.stderr
    run_id = re.search(r"run (\S+) stored in", first.stderr)
    assert run_id
    assert fake_server.count() == 4

    replay = run_tool(
        "job_runner", f"--replay_run_id={run_id.group(1)}", f"--store={store_url}", env=env
    )
    assert replay.code == 0, replay.stderr
    assert fake_server.count() == 4  # nothing new
    assert "4 of 4 steps reused, 0 run" in replay.stderr
    assert json.loads(replay.stdout) == json.loads(first.stdout)


def test_resume_refuses_unknown_and_succeeded_runs(tmp_path: pathlib.Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    unknown = run_tool("job_runner", "--resume=nope", f"--store={store_url}")
    assert unknown.code == 2 and "no job run 'nope'" in unknown.stderr
    done = run_tool(
        "job_runner",
        f"--input_path={REPO_ROOT / 'examples' / 'sample_job_config.json'}",
        f"--store={store_url}",
        "--offline",
    )
    assert done.code == 0, done.stderr
    found = re.search(r"run (\S+) stored in", done.stderr)
    assert found
    again = run_tool("job_runner", f"--resume={found.group(1)}", f"--store={store_url}")
    assert again.code == 2 and "already succeeded" in again.stderr


def test_trace_file_replay_of_a_50_step_job_and_an_edited_output(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    steps = 50
    job = long_job(tmp_path / "job.json", steps)
    trace = tmp_path / "trace.json"
    env = {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}
    first = run_tool(
        "job_runner", f"--input_path={job}", f"--trace_out={trace}", "--cache=off", env=env
    )
    assert first.code == 0, first.stderr
    assert fake_server.count() == steps

    unchanged = run_tool("job_runner", f"--replay={trace}", "--cache=off", env=env)
    assert unchanged.code == 0, unchanged.stderr
    assert fake_server.count() == steps  # 0 new provider calls
    assert json.loads(unchanged.stdout) == json.loads(first.stdout)
    assert f"{steps} of {steps} steps reused, 0 run" in unchanged.stderr

    # A person edits step k's output in the trace file: only the steps after k run again.
    k = 37
    data = json.loads(trace.read_text())
    data["job_run"]["tasks"][0]["steps"][k]["outputs"] = {f"v{k + 1}": "hand-edited"}
    trace.write_text(json.dumps(data))
    edited = run_tool("job_runner", f"--replay={trace}", "--cache=off", env=env)
    assert edited.code == 0, edited.stderr
    assert fake_server.count() == steps + (steps - k - 1)
    assert f"{k + 1} of {steps} steps reused, {steps - k - 1} run" in edited.stderr


def test_plan_then_replay_an_edited_stored_run_from_the_cli(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    job = long_job(tmp_path / "job.json", 4)
    env = {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}
    first = run_tool("job_runner", f"--input_path={job}", f"--store={store_url}", env=env)
    assert first.code == 0, first.stderr
    found = re.search(r"run (\S+) stored in", first.stderr)
    assert found
    run_id = found.group(1)
    edits = tmp_path / "edits.json"
    edits.write_text(
        json.dumps([{"kind": "step_response", "task_id": "only", "step_index": 1, "value": "NEW"}])
    )
    replay_flags = [f"--replay_run_id={run_id}", f"--store={store_url}", f"--edits={edits}"]

    plan = run_tool("job_runner", *replay_flags, "--plan", env=env)

    assert plan.code == 0, plan.stderr
    assert fake_server.count() == 4  # planning calls nothing
    steps = json.loads(plan.stdout)["steps"]
    assert [s["action"] for s in steps] == ["reuse", "reuse", "run", "run"]
    assert "2 of 4 steps reused, 2 run (2 model calls)" in plan.stderr

    replay = run_tool("job_runner", *replay_flags, "--print_record", env=env)

    assert replay.code == 0, replay.stderr
    assert fake_server.count() == 6  # exactly the two planned calls
    record = json.loads(replay.stdout)
    assert record["parent_run_id"] == run_id
    with open_store(store_url) as store:
        stored = store.get(docs.job_run_path(record["run_id"]))
    assert stored is not None and stored["parent_run_id"] == run_id

    bad = run_tool("job_runner", f"--input_path={job}", "--plan", env=env)
    assert bad.code != 0 and "--edits and --plan go with --replay" in bad.stderr


def test_cancel_stops_a_stored_run_and_resume_finishes_it(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    job = formats.load(long_job(tmp_path / "job.json", 2), config_pb2.JobConfig)
    with open_store(store_url) as store:
        run_id = submit_job(store, job)

    cancelled = run_tool("job_runner", f"--cancel={run_id}", f"--store={store_url}")
    assert cancelled.code == 0, cancelled.stderr
    assert json.loads(cancelled.stdout) == {
        "run_id": run_id,
        "status": "CANCELLED",
        "stopped": ["only"],
    }
    assert f"run {run_id} in {store_url} cancelled: stopped only" in cancelled.stderr
    again = run_tool("job_runner", f"--cancel={run_id}", f"--store={store_url}")
    assert again.code == 0, again.stderr
    assert json.loads(again.stdout)["stopped"] == []
    assert "stopped nothing" in again.stderr
    assert fake_server.count() == 0

    env = {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}
    resumed = run_tool("job_runner", f"--resume={run_id}", f"--store={store_url}", env=env)
    assert resumed.code == 0, resumed.stderr
    assert f"resuming run {run_id}: requeued only" in resumed.stderr
    assert fake_server.count() == 2

    finished = run_tool("job_runner", f"--cancel={run_id}", f"--store={store_url}")
    assert finished.code == 2 and "already succeeded: there is nothing to cancel" in finished.stderr
    unknown = run_tool("job_runner", "--cancel=nope", f"--store={store_url}")
    assert unknown.code == 2 and "no job run 'nope'" in unknown.stderr
    both = run_tool("job_runner", "--cancel=a", "--resume=a", f"--store={store_url}")
    assert both.code == 2 and "give only one of them" in both.stderr

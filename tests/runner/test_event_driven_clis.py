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


def test_submitting_needs_no_provider_key_and_offline_is_honoured_by_the_workers(
    tmp_path: pathlib.Path,
) -> None:
    # The keys live with the workers (the cloud function), not on the submitting machine. A
    # run submitted --offline runs offline on a dispatcher that was not told so.
    store = f"sqlite:///{tmp_path / 'state.db'}"
    submitted = run_tool("job_submitter", f"--input_path={JOB}", f"--store={store}")
    assert submitted.code == 0, submitted.stderr
    offline = run_tool("job_submitter", f"--input_path={JOB}", f"--store={store}", "--offline")
    assert offline.code == 0 and "offline" in offline.stderr
    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle")
    assert dispatched.code == 0, dispatched.stderr
    without = run_tool("config_reader", f"--run_id={submitted.stdout.strip()}", f"--store={store}")
    assert json.loads(without.stdout)["status"] == "FAILED"
    assert "GEMINI_API_KEY" in without.stdout  # the worker had no key
    run = run_tool("config_reader", f"--run_id={offline.stdout.strip()}", f"--store={store}")
    assert run.code == 0 and json.loads(run.stdout)["status"] == "SUCCEEDED"


def test_a_task_config_and_a_step_config_are_submitted_as_jobs(tmp_path: pathlib.Path) -> None:
    # As the original executor meant it: a task config committed to the database runs.
    samples = tmp_path / "samples"
    assert run_tool("create_sample", f"--output_dir={samples}").code == 0
    store = f"sqlite:///{tmp_path / 'state.db'}"
    task = run_tool(
        "job_submitter",
        f"--input_path={samples / 'sample_task_config.json'}",
        f"--store={store}",
        "--offline",
        "--var=topic=owls",
    )
    assert task.code == 0, task.stderr
    step = run_tool(
        "job_submitter",
        f"--input_path={samples / 'sample_step_config.json'}",
        "--config_type=step",
        f"--store={store}",
        "--offline",
    )
    assert step.code == 0, step.stderr
    assert run_tool("dispatcher", f"--store={store}", "--until_idle").code == 0
    for run_id in (task.stdout.strip(), step.stdout.strip()):
        read = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}")
        assert read.code == 0, read.stdout
        assert json.loads(read.stdout)["status"] == "SUCCEEDED"


def test_a_task_chain_is_resolved_in_the_files_and_the_saved_tasks(tmp_path: pathlib.Path) -> None:
    def task(task_id: str, next_task: str = "") -> pathlib.Path:
        config = {
            "task_id": task_id,
            "steps": [
                {
                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                    "function_call_config": {
                        "function_name": "template",
                        "request": {"text": f"{task_id} after %previous%"},
                    },
                    "output_config": {"payload": {"previous": "%response%"}},
                }
            ],
            "input_config": {"payload": {"previous": "nothing"}},
        }
        if next_task:
            config["next_task"] = next_task
        path = tmp_path / f"{task_id}.json"
        path.write_text(json.dumps(config))
        return path

    store = f"sqlite:///{tmp_path / 'state.db'}"
    first, second, third = task("first", "second"), task("second", "third"), task("third")
    missing = run_tool("job_submitter", f"--input_path={first},{second}", f"--store={store}")
    assert missing.code == 2
    assert "next_task: no task 'third'" in missing.stderr and str(second) in missing.stderr
    # Submitting `third` saves it; the chain then resolves to it.
    assert run_tool("job_submitter", f"--input_path={third}", f"--store={store}").code == 0
    chain = run_tool("job_submitter", f"--input_path={first},{second}", f"--store={store}")
    assert chain.code == 0, chain.stderr
    assert run_tool("dispatcher", f"--store={store}", "--until_idle").code == 0
    read = run_tool("config_reader", f"--run_id={chain.stdout.strip()}", f"--store={store}")
    assert json.loads(read.stdout)["outputs"] == {
        "third": {"previous": "third after second after first after nothing"}
    }


def test_only_step_task_and_job_configs_can_be_submitted(tmp_path: pathlib.Path) -> None:
    models = tmp_path / "models.json"
    models.write_text('{"models": []}')
    result = run_tool("job_submitter", f"--input_path={models}", "--config_type=models")
    assert result.code == 2 and "cannot be submitted" in result.stderr


def test_unknown_run_and_bad_store_url(tmp_path: pathlib.Path) -> None:
    missing = run_tool("config_reader", "--run_id=nope", f"--store=sqlite:///{tmp_path / 'x.db'}")
    assert missing.code == 2 and "no job run 'nope'" in missing.stderr
    bad_url = run_tool("dispatcher", "--store=postgres://x", "--until_idle")
    assert bad_url.code == 2 and "unknown store URL" in bad_url.stderr


def test_a_map_run_in_a_store_reads_back_with_its_items(tmp_path: pathlib.Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    step = {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "Say %item%"},
        "output_config": {"payload": {"said": ""}},
    }
    job = {
        "job_id": "mapped",
        "input_config": {"payload": {"rows": ["a", "b", "c"]}},
        "tasks": [
            {"task_id": "write", "for_each": {"items": "%rows%"}, "steps": [step]},
        ],
    }
    path = tmp_path / "mapped.json"
    path.write_text(json.dumps(job))
    submitted = run_tool("job_submitter", f"--input_path={path}", f"--store={store}", "--offline")
    assert submitted.code == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle", "--offline")
    assert dispatched.code == 0, dispatched.stderr

    read = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}")
    assert read.code == 0, read.stderr
    summary = json.loads(read.stdout)
    assert summary["status"] == "SUCCEEDED"
    (write,) = summary["tasks"]
    assert write["items_total"] == 3
    assert [item["task_run_id"] for item in write["items"]] == [
        "write~000000",
        "write~000001",
        "write~000002",
    ]
    assert {item["status"] for item in write["items"]} == {"SUCCEEDED"}
    assert "write: 3 items: 3 succeeded" in read.stderr
    assert len(summary["outputs"]["write"]["said"]) == 3

"""step_runner, task_runner and job_runner as users run them: subprocesses, exit codes, output."""

from __future__ import annotations

import json
import pathlib

import pytest

from llm_scheduler.config import formats
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import run_pb2
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"


def test_seed_step_runs_offline_with_single_dash_flags() -> None:
    result = run_tool(
        "step_runner", f"-input_path={EXAMPLES / 'sample_step_config.json'}", "-offline"
    )
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"user_prompt": "Tell me a joke!"}
    assert "offline:GEMINI_FLASH" in result.stderr


def test_step_print_record_shows_the_offline_response() -> None:
    result = run_tool(
        "step_runner",
        f"--input_path={EXAMPLES / 'sample_step_config.json'}",
        "--print_record",
        env={"LLM_SCHEDULER_OFFLINE": "1"},
    )
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["provider"] == "offline"
    assert record["response_text"].startswith("[offline GEMINI_FLASH")


def test_missing_api_key_is_a_clear_error_before_any_call() -> None:
    result = run_tool("step_runner", f"--input_path={EXAMPLES / 'sample_step_config.json'}")
    assert result.code == 2
    assert "GEMINI_API_KEY" in result.stderr
    assert "--offline" in result.stderr
    assert result.stdout == ""


def test_invalid_config_exits_2_naming_file_and_field(tmp_path: pathlib.Path) -> None:
    job = json.loads((EXAMPLES / "sample_job_config.json").read_text())
    job["tasks"][1]["steps"][0]["model_query_config"]["model_key"] = "GEMINI_FLSH"
    job["tasks"][2]["next_task"] = "nowhere"
    path = tmp_path / "bad_job.json"
    path.write_text(json.dumps(job))
    result = run_tool("job_runner", f"--input_path={path}", "--offline")
    assert result.code == 2
    assert f"{path}: tasks[1].steps[0].model_query_config.model_key" in result.stderr
    assert "did you mean 'GEMINI_FLASH'" in result.stderr
    assert f"{path}: tasks[2].next_task" in result.stderr
    assert "2 problems" in result.stderr


def test_missing_file_exits_2() -> None:
    result = run_tool("job_runner", "--input_path=/nonexistent/job.json")
    assert result.code == 2
    assert "/nonexistent/job.json" in result.stderr


def test_task_runner_chains_two_task_files(tmp_path: pathlib.Path) -> None:
    first = tmp_path / "first.json"
    first.write_text(
        json.dumps(
            {
                "task_id": "first",
                "steps": [
                    {
                        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "%topic%"},
                        "output_config": {"payload": {"idea": ""}},
                    }
                ],
            }
        )
    )
    second = tmp_path / "second.textproto"
    second.write_text(
        'task_id: "second"\n'
        "steps {\n"
        '  model_query_config { model_key: "OFFLINE" user_prompt: "Expand: %idea%" }\n'
        "}\n"
    )
    result = run_tool("task_runner", f"--input_path={first},{second}", "--var", "topic=kites")
    assert result.code == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert outputs["response"].startswith("[offline offline")
    assert "Expand: [offline offline" in outputs["response"]
    assert "[first] task succeeded" in result.stderr
    assert "[second] task succeeded" in result.stderr


def test_job_runner_runs_the_sample_job_and_writes_a_trace(tmp_path: pathlib.Path) -> None:
    trace = tmp_path / "trace.json"
    result = run_tool(
        "job_runner",
        f"--input_path={EXAMPLES / 'sample_job_config.json'}",
        "--offline",
        f"--trace_out={trace}",
        "--var",
        "topic=autumn",
    )
    assert result.code == 0, result.stderr
    outputs = json.loads(result.stdout)
    assert set(outputs) == {"revise"}
    assert set(outputs["revise"]) == {"poem", "lines"}
    job_run = formats.load(trace, run_pb2.Trace).job_run
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [t.task_id for t in job_run.tasks] == ["draft", "review", "revise"]
    assert "autumn" in job_run.tasks[0].steps[0].user_prompt
    assert "step 1/2 revise" in result.stderr  # progress on stderr


def test_job_runner_exits_1_when_the_run_fails(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    job = {
        "job_id": "j",
        "tasks": [
            {
                "task_id": "only",
                "steps": [{"model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": "x"}}],
            }
        ],
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    fake_server.fail_next(3, status=503)
    result = run_tool(
        "job_runner",
        f"--input_path={path}",
        env={**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)},
    )
    assert result.code == 1
    assert "job failed" in result.stderr
    assert "503" in result.stderr
    assert fake_server.count() == 3


@pytest.mark.parametrize("tool", ["step_runner", "task_runner", "job_runner"])
def test_runners_require_input_path(tool: str) -> None:
    result = run_tool(tool)
    assert result.code == 2
    assert "--input_path is required" in result.stderr


def test_bad_flag_exits_2() -> None:
    result = run_tool("job_runner", "--no_such_flag=1")
    assert result.code == 2
    assert "no_such_flag" in result.stderr


def _defaults_configs(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    """A step, a task and a job whose input_config says topic=computers."""
    step = {
        "input_config": {"payload": {"topic": "computers"}},
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "About %topic%."},
        "output_config": {"payload": {"said": "%response%"}},
    }
    task = {
        "task_id": "t",
        "input_config": {"payload": {"topic": "computers"}},
        "steps": [{**step, "input_config": {}}],
    }
    job = {"job_id": "j", "input_config": {"payload": {"topic": "cats"}}, "tasks": [task]}
    paths = {}
    for name, config in (("step", step), ("task", task), ("job", job)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(config))
    return paths


@pytest.mark.parametrize(
    ("tool", "config", "extra"),
    [
        ("step_runner", "step", []),
        ("task_runner", "task", []),
        ("job_runner", "job", []),
        ("job_runner", "job", ["--store"]),  # through the event-driven protocol
    ],
    ids=["step_runner", "task_runner", "job_runner", "job_runner_store"],
)
def test_var_wins_over_input_config_defaults_in_every_runner(
    tmp_path: pathlib.Path, tool: str, config: str, extra: list[str]
) -> None:
    path = _defaults_configs(tmp_path)[config]
    if extra == ["--store"]:
        extra = [f"--store=sqlite:///{tmp_path / 'runs.db'}"]
    result = run_tool(tool, f"--input_path={path}", "--offline", "--var", "topic=owls", *extra)
    assert result.code == 0, result.stderr
    assert "About owls." in result.stdout
    assert "computers" not in result.stdout and "cats" not in result.stdout


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("job_runner", ["--input_path=/nope.json"], "--input_path: no such file: /nope.json"),
        (
            "task_runner",
            [f"--input_path={EXAMPLES / 'sample_task_config.json'},/nope/b.json"],
            "--input_path: no such file: /nope/b.json",
        ),
        (
            "step_runner",
            [f"--input_path={EXAMPLES / 'sample_step_config.json'}", "--models_file=/nope.json"],
            "--models_file: no such file: /nope.json",
        ),
        ("proto_decoder", ["--input_path=/tmp"], "--input_path: /tmp is a folder, not a file"),
    ],
    ids=["job_runner", "task_runner_second_file", "models_file", "folder"],
)
def test_a_missing_file_is_named_not_called_an_invalid_config(
    tool: str, args: list[str], message: str
) -> None:
    result = run_tool(tool, *args, "--offline")
    assert result.code == 2
    assert f"error: {message}" in result.stderr
    assert "invalid config" not in result.stderr


def test_var_values_json_cannot_hold_stay_text() -> None:
    # Python's JSON reader takes NaN and Infinity; JSON and the stores do not (a NaN input made
    # `--store` runs fail with a traceback from SQLite).
    from llm_scheduler.runner.common import parse_vars

    assert parse_vars(["a=NaN", "b=-Infinity", "c=[1, NaN]", "d=1.5", 'e={"x": 1}']) == {
        "a": "NaN",
        "b": "-Infinity",
        "c": "[1, NaN]",
        "d": 1.5,
        "e": {"x": 1},
    }

"""The inputs that once crashed or hung the tools: each must exit with 2 and a clean message."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.clitools import run_tool

_STEP = '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}}'


def _job(task_b: str = '"task_id": "b"', **top: str) -> str:
    fields = "".join(f'"{key}": {value}, ' for key, value in top.items())
    if '"steps"' not in task_b:
        task_b += f', "steps": [{_STEP}]'
    return (
        f'{{{fields}"tasks": [{{"task_id": "a", "next_task": "b", "steps": [{_STEP}]}}, '
        f"{{{task_b}}}]}}"
    )


# name -> (file content, a field path or phrase stderr must show)
CASES = {
    "deep_json.json": (
        '{"input_config": {"payload": {"x": ' + "[" * 1000 + "]" * 1000 + "}}, " + _job()[1:],
        "input_config.payload.x[0][0]",
    ),
    "deep.textproto": (
        'input_config { payload { fields { key: "x" value { '
        + "list_value { values { " * 300
        + "} } " * 300
        + "} } } }",
        "messages nested more than 100 deep",
    ),
    "big_number.json": (
        _job(metadata='{"timestamp": ' + "9" * 5000 + "}"),
        "metadata.timestamp: expected an integer",
    ),
    "surrogate.json": (
        _job('"task_id": "b", "description": "\\ud800"'),
        "tasks[1].description: the string holds a lone surrogate",
    ),
    "surrogate_enum.json": (
        _job('"task_id": "b", "steps": [{"step_type": "\\ud800"}]'),
        "tasks[1].steps[0].step_type: expected one of",
    ),
    "fractional_enum.json": (
        _job('"task_id": "b", "steps": [{"step_type": 1.9}]'),
        "tasks[1].steps[0].step_type: expected one of STEP_TYPE_MODEL_QUERY (0)",
    ),
    "bad_type.json": (
        _job('"task_id": "b", "steps": true'),
        "tasks[1].steps: expected a list of step objects, got true",
    ),
    "slash_id.json": (
        _job('"task_id": "b/c"').replace('"next_task": "b"', '"next_task": "b/c"'),
        "tasks[1].task_id: task id 'b/c' holds '/'",
    ),
}


def _write(folder: pathlib.Path, name: str) -> pathlib.Path:
    path = folder / name
    if name == "fifo.json":
        os.mkfifo(path)  # nothing will ever write to it
    elif name == "too_large.json":
        with path.open("wb") as stream:
            stream.truncate(33 * 2**20)
    else:
        path.write_text(CASES[name][0], encoding="utf-8")
    return path


def _assert_clean_refusal(code: int, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("error: invalid config"), stderr
    assert expected in stderr, stderr


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_reader_refuses_cleanly(tmp_path: pathlib.Path, name: str) -> None:
    result = run_tool("config_reader", f"--input_path={_write(tmp_path, name)}")
    _assert_clean_refusal(result.code, result.stderr, CASES[name][1])


@pytest.mark.parametrize("name", ["deep_json.json", "surrogate_enum.json", "slash_id.json"])
def test_job_runner_refuses_cleanly(tmp_path: pathlib.Path, name: str) -> None:
    result = run_tool("job_runner", f"--input_path={_write(tmp_path, name)}", "--offline")
    _assert_clean_refusal(result.code, result.stderr, CASES[name][1])
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fifo.json", "it is a named pipe (FIFO), not a regular file"),
        ("/dev/zero", "it is a character device, not a regular file"),
        ("too_large.json", "the file is too large"),
    ],
)
@pytest.mark.parametrize("tool", ["config_reader", "job_runner"])
def test_files_that_would_block_or_never_end_are_refused(
    tmp_path: pathlib.Path, tool: str, name: str, expected: str
) -> None:
    if name == "fifo.json" and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    if name.startswith("/") and not os.path.exists(name):
        pytest.skip(f"no {name} here")
    path = name if name.startswith("/") else str(_write(tmp_path, name))
    result = run_tool(tool, f"--input_path={path}", "--offline")
    _assert_clean_refusal(result.code, result.stderr, expected)


def test_a_chain_of_a_thousand_tasks_is_valid(tmp_path: pathlib.Path) -> None:
    # The cycle check used to recurse once per task.
    tasks = [
        f'{{"task_id": "t{i}", "next_task": "t{i + 1}", "steps": [{_STEP}]}}' for i in range(999)
    ]
    tasks.append(f'{{"task_id": "t999", "steps": [{_STEP}]}}')
    path = tmp_path / "chain.json"
    path.write_text(f'{{"tasks": [{", ".join(tasks)}]}}')
    result = run_tool("config_reader", f"--input_path={path}")
    assert result.code == 0, result.stderr[-2000:]
    assert result.stderr.startswith("valid job '': 1000 tasks, 1000 steps")


@pytest.mark.parametrize("tool", ["job_submitter", "task_runner"])
def test_the_other_validating_tools_refuse_an_id_that_is_a_path(
    tmp_path: pathlib.Path, tool: str
) -> None:
    if tool == "task_runner":
        path = tmp_path / "task.json"
        path.write_text(f'{{"task_id": "runs/x", "steps": [{_STEP}]}}')
        expected = "task_id: task id 'runs/x' holds '/'"
    else:
        path = _write(tmp_path, "slash_id.json")
        expected = CASES["slash_id.json"][1]
    result = run_tool(tool, f"--input_path={path}", "--offline")
    _assert_clean_refusal(result.code, result.stderr, expected)

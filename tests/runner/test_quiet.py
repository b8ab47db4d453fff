"""What reaches stderr: with --quiet only failures; never the libraries' routine INFO logs."""

from __future__ import annotations

import json
import pathlib

from llm_scheduler.testing import FakeProviderServer
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS


def _env(models_file: pathlib.Path) -> dict[str, str]:
    return {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models_file)}


def _step(tmp_path: pathlib.Path, model_key: str) -> pathlib.Path:
    path = tmp_path / "step.json"
    step = {"model_query_config": {"model_key": model_key, "user_prompt": "hi"}}
    path.write_text(json.dumps(step))
    return path


def test_quiet_step_runner_prints_nothing_on_stderr(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    # The Gemini SDK logs "AFC is enabled" and httpx logs every request at INFO.
    path = _step(tmp_path, "FAKE_GEMINI")
    result = run_tool("step_runner", f"--input_path={path}", "--quiet", env=_env(models_file))
    assert result.code == 0, result.stderr
    assert fake_server.count() == 1
    assert result.stderr == ""
    assert json.loads(result.stdout) == {"response": "fake google reply to: hi"}


def test_quiet_job_runner_prints_nothing_on_stderr(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    step = {"model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": "hi"}}
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"job_id": "j", "tasks": [{"task_id": "t", "steps": [step]}]}))
    trace = tmp_path / "trace.json"
    result = run_tool(
        "job_runner",
        f"--input_path={path}",
        f"--trace_out={trace}",
        "--quiet",
        env=_env(models_file),
    )
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    assert trace.exists()


def test_without_quiet_progress_shows_but_not_library_info_logs(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    path = _step(tmp_path, "FAKE_GEMINI")
    result = run_tool("step_runner", f"--input_path={path}", env=_env(models_file))
    assert result.code == 0, result.stderr
    assert "google:gemini-fake tokens:" in result.stderr  # the tool's own summary
    assert "HTTP Request" not in result.stderr
    assert "AFC is enabled" not in result.stderr


def test_quiet_still_reports_a_failure(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer, models_file: pathlib.Path
) -> None:
    path = _step(tmp_path, "FAKE_OPENAI")
    fake_server.fail_next(3, status=503)
    result = run_tool("step_runner", f"--input_path={path}", "--quiet", env=_env(models_file))
    assert result.code == 1
    assert "step failed" in result.stderr
    assert "HTTP Request" not in result.stderr

"""The Bazel targets print what the console scripts print (opt-in: Bazel is slow to start).

Skipped unless `bazel` is on PATH and LLM_SCHEDULER_BAZEL_TESTS=1; `.ci/run` checks all five
commands with scripts/bazel_check.sh instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("bazel") is None or os.environ.get("LLM_SCHEDULER_BAZEL_TESTS") != "1",
    reason="needs bazel on PATH and LLM_SCHEDULER_BAZEL_TESTS=1",
)

CASES = [
    ("//llm_scheduler/runner:step_runner", "llm_scheduler.runner.step_runner",
     ["--input_path=examples/sample_step_config.json", "--offline"]),
    ("//llm_scheduler/runner:task_runner", "llm_scheduler.runner.task_runner",
     ["--input_path=examples/sample_task_config.json", "--offline"]),
    ("//llm_scheduler/runner:job_runner", "llm_scheduler.runner.job_runner",
     ["--input_path=examples/sample_job_config.json", "--offline"]),
    ("//llm_scheduler/config_tools:config_reader", "llm_scheduler.config_tools.config_reader",
     ["--input_path=examples/sample_job_config.json", "--config_type=job"]),
]  # fmt: skip


def _run(command: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("target", "module", "args"), CASES, ids=[c[0] for c in CASES])
def test_bazel_run_prints_what_the_console_script_prints(
    target: str, module: str, args: list[str]
) -> None:
    bazel = _run(["bazel", "run", "--noshow_progress", target, "--", *args])
    console = _run([sys.executable, "-m", module, *args])
    # Compared as JSON: a job's outputs may come in either order from run to run.
    assert json.loads(bazel) == json.loads(console)

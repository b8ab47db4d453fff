"""Runs the command-line tools as real subprocesses."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping

from tests.conftest import REPO_ROOT

MODULES = {
    "create_sample": "llm_scheduler.config_tools.create_sample",
    "config_reader": "llm_scheduler.config_tools.config_reader",
    "step_runner": "llm_scheduler.runner.step_runner",
    "task_runner": "llm_scheduler.runner.task_runner",
    "job_runner": "llm_scheduler.runner.job_runner",
    "job_submitter": "llm_scheduler.runner.job_submitter",
    "dispatcher": "llm_scheduler.runner.dispatcher",
    "trace_export": "llm_scheduler.runner.trace_export",
    "cost_report": "llm_scheduler.runner.cost_report",
    "run_watcher": "llm_scheduler.runner.run_watcher",
    "schedule": "llm_scheduler.runner.schedule",
    "web_ui": "llm_scheduler.web.cli",
    "proto_decoder": "proto_decoder.main",
}


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes


def run_tool(
    tool: str, *args: str, env: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> Result:
    """Runs a tool with a clean environment (no API keys, no offline switch) plus ``env``.

    Unless ``env`` names a store, the default store is a fresh file, so no test sees another's
    runs or cached responses (nor the repository's own ``.llm_scheduler/``). The variables in
    ``unset`` are removed.
    """
    removed = set(unset)
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith("LLM_SCHEDULER_") and k not in removed
    }
    scratch = tempfile.mkdtemp(prefix="llm-scheduler-test-")
    base["LLM_SCHEDULER_STORE"] = f"sqlite:///{scratch}/state.db"
    completed = subprocess.run(
        [sys.executable, "-m", MODULES[tool], *args],
        capture_output=True,
        env={**base, **(env or {})},
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    return Result(
        code=completed.returncode,
        stdout=completed.stdout.decode("utf-8", errors="replace"),
        stderr=completed.stderr.decode("utf-8", errors="replace"),
        stdout_bytes=completed.stdout,
    )

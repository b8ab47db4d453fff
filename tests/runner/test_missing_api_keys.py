"""A runner stops before any request, naming every API key the config needs and lacks."""

from __future__ import annotations

import json
import pathlib

from tests.clitools import run_tool
from tests.conftest import REPO_ROOT


def test_job_runner_lists_every_missing_key_and_exits_2(tmp_path: pathlib.Path) -> None:
    job = json.loads((REPO_ROOT / "examples" / "sample_job_config.json").read_text())
    model_keys = ["GPT_4O_MINI", "CLAUDE_HAIKU_4_5", "GEMINI_FLASH"]
    for index, task in enumerate(job["tasks"]):
        for step in task["steps"]:
            if "model_query_config" in step:
                step["model_query_config"]["model_key"] = model_keys[index % 3]
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))

    result = run_tool("job_runner", f"--input_path={path}")

    assert result.code == 2, result.stderr
    assert "3 API keys are not set" in result.stderr
    for env_var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert f"  - {env_var}" in result.stderr
    assert "--offline" in result.stderr
    assert result.stdout == ""

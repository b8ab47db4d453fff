"""The provider SDKs add nothing to a runner's stderr: no per-request INFO lines."""

from __future__ import annotations

import json
import pathlib

from llm_scheduler.testing import FakeProviderServer
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, FAKE_MODEL_KEYS


def test_a_task_through_every_sdk_leaves_only_the_runners_lines_on_stderr(
    tmp_path: pathlib.Path, models_file: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    task = {
        "task_id": "every_sdk",
        "steps": [
            {"id": f"s{i}", "model_query_config": {"model_key": key, "user_prompt": "hi"}}
            for i, key in enumerate(FAKE_MODEL_KEYS)
        ],
    }
    path = tmp_path / "task.json"
    path.write_text(json.dumps(task))

    result = run_tool(
        "task_runner", f"--input_path={path}", f"--models_file={models_file}", env=FAKE_CREDENTIALS
    )

    assert result.code == 0, result.stderr
    assert fake_server.count() == 3
    assert "HTTP Request" not in result.stderr
    assert "AFC is enabled" not in result.stderr

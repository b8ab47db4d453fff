"""The editor's preview of a job with a sub-job step: the child's file is read next to it."""

from __future__ import annotations

import json
import pathlib
import shutil

from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT

SAMPLE = "sample_sub_job_config.json"
CHILD = "sample_sub_job_child_config.json"


def copy_sample(configs_dir: pathlib.Path) -> str:
    """Copies the sample and its child into the folder; returns the sample's path."""
    for name in (SAMPLE, CHILD):
        shutil.copy(REPO_ROOT / "examples" / name, configs_dir / name)
    return str(configs_dir / SAMPLE)


def test_the_preview_marks_the_sub_job_and_lists_the_childs_tasks(
    client: TestClient, configs_dir: pathlib.Path
) -> None:
    sample = copy_sample(configs_dir)
    data = client.get("/jobs/edit.json", params={"file": sample}).json()
    assert data["check"]["problems"] == [] and data["check"]["ok"] is True
    write = next(node for node in data["check"]["graph"]["nodes"] if node["task_id"] == "write")
    assert write["steps"][0]["kind"] == "sub_job"
    assert write["steps"][0]["detail"] == CHILD
    assert write["steps"][0]["child_tasks"] == ["draft", "polish"]
    texts = [line["text"] for line in write["lines"]]
    assert "sub-job" in texts and "↳ draft → polish" in texts
    html = client.get("/jobs/edit", params={"file": sample}).text
    assert "↳ draft → polish" in html


def test_the_editor_reads_sub_job_files_only_from_the_configs_folder(
    client: TestClient, configs_dir: pathlib.Path
) -> None:
    sample = copy_sample(configs_dir)
    text = pathlib.Path(sample).read_text()
    checked = client.post("/api/validate", json={"text": text, "file": sample}).json()
    assert checked["ok"] is True
    outside = json.loads(text)
    outside["tasks"][1]["steps"][0]["sub_job_config"]["job_path"] = f"../{CHILD}"
    (configs_dir.parent / CHILD).write_text((configs_dir / CHILD).read_text())
    checked = client.post(
        "/api/validate", json={"text": json.dumps(outside), "file": sample}
    ).json()
    assert checked["ok"] is False
    [problem] = checked["problems"]
    assert problem["path"] == "tasks[1].steps[0].sub_job_config.job_path"
    assert "outside the configs folder" in problem["message"]

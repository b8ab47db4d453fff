"""config_reader on sub-job steps: the child job expanded before a run, the child runs after."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from llm_scheduler import ModelClient, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config_tools.config_reader import (
    describe,
    describe_run,
    describe_step,
    summarize_run,
)
from llm_scheduler.config_tools.samples import SAMPLE_FILES
from llm_scheduler.config_tools.sub_job_view import describe_sub_job
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import run_closing


def _query(prompt: str, output: str) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": prompt},
        "output_config": {"payload": {output: "%response%"}},
    }


def _sub_job(name: str, job: dict[str, Any], inputs: dict[str, str], output: str) -> dict[str, Any]:
    return {
        "name": name,
        "step_type": "STEP_TYPE_SUB_JOB",
        "sub_job_config": {"job": job, "inputs": inputs},
        "output_config": {"payload": {output: f"%response.{output}%"}},
    }


# leaf: one task; middle: draft -> polish, whose polish runs leaf as a sub-job.
LEAF = {
    "job_id": "leaf",
    "input_config": {"payload": {"text": ""}},
    "tasks": [{"task_id": "shout", "steps": [_query("Shout %text%", "loud")]}],
}
MIDDLE = {
    "job_id": "middle",
    "input_config": {"payload": {"section": ""}},
    "tasks": [
        {"task_id": "draft", "next_task": "polish", "steps": [_query("On %section%", "draft")]},
        {
            "task_id": "polish",
            "steps": [
                _query("Polish %draft%", "text"),
                {
                    **_sub_job("louder", LEAF, {"text": "%text%"}, "shout"),
                    "output_config": {"payload": {"loud": "%response.shout.loud%"}},
                },
            ],
        },
    ],
}


def _parent(*, mapped: bool) -> config_pb2.JobConfig:
    """plan -> write (a sub-job step on `MIDDLE`, per section when ``mapped``)."""
    write: dict[str, Any] = {
        "task_id": "write",
        "steps": [
            {
                **_sub_job("section", MIDDLE, {"section": "%section%"}, "polish"),
                "output_config": {"payload": {"loud": "%response.polish.loud%"}},
            }
        ],
    }
    if mapped:
        write["for_each"] = {"items": "%sections%", "item_variable": "section"}
    config = {
        "job_id": "parent",
        "input_config": {"payload": {"section": "owls", "sections": ["owls", "bats"]}},
        "tasks": [write],
    }
    job = loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)
    Validator().check_job(job)
    return job


def test_the_preview_expands_each_child_job_under_its_step_recursively() -> None:
    job = _parent(mapped=False)
    text = describe("job", job)
    assert text.endswith(
        "\nsub-job steps:\n"
        "  write.steps[0] section (sub-job inline job 'middle'): section <- %section%\n"
        "      job 'middle': 2 tasks, 3 steps\n"
        "      level 0\n"
        "        draft [1 step] -> polish\n"
        "      level 1\n"
        "        polish [2 steps]  (final)\n"
        "      sub-job steps:\n"
        "        polish.steps[1] louder (sub-job inline job 'leaf'): text <- %text%\n"
        "            job 'leaf': 1 task, 1 step\n"
        "            level 0\n"
        "              shout [1 step]  (final)"
    )
    # A task config shows its sub-job steps the same way; a step names its child in a line.
    assert "sub-job steps:\n  write.steps[0] section" in describe("task", job.tasks[0])
    step = job.tasks[0].steps[0]
    assert describe_step(step) == "sub-job · inline job 'middle': section <- %section%"
    assert describe_sub_job(step) == "inline job 'middle': section <- %section%"
    step.sub_job_config.inputs.clear()
    step.sub_job_config.job_path = "middle.json"
    assert describe("step", step) == "valid step '': sub-job · middle.json: (no inputs)"


def test_a_mapped_child_job_shows_its_list_and_its_own_maps() -> None:
    text = describe("job", _parent(mapped=True))
    assert "map tasks:\n  write  for each section (index) in %sections%" in text
    assert "  write.steps[0] section (sub-job inline job 'middle')" in text


def test_a_run_shows_each_child_run_under_its_caller_recursively() -> None:
    context = RunContext(models=ModelClient(offline=True))
    job_run = run_closing(context, run_job(_parent(mapped=True), context))
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message

    lines = describe_run(job_run, "memory").splitlines()
    run_id = job_run.run_id
    assert lines[1:4] == ["  write: 2 items: 2 succeeded", "    [0] succeeded", "    [1] succeeded"]
    assert lines[4] == "  child runs:"
    assert lines[5].startswith(
        f"    write[0].steps[0] section: run {run_id}~write~000000~0: succeeded, "
        "2/2 tasks succeeded; tokens: "
    )
    assert lines[6] == "      child runs:"
    assert lines[7].startswith(
        f"        polish.steps[1] louder: run {run_id}~write~000000~0~polish~1: succeeded, "
        "1/1 tasks succeeded; "
    )
    assert lines[8].startswith(f"    write[1].steps[0] section: run {run_id}~write~000001~0: ")
    assert len(lines) == 11

    summary = summarize_run(job_run)
    assert "caller_run_id" not in summary
    children = summary["children"]
    assert isinstance(children, list)
    first, second = children
    assert (first["run_id"], first["status"]) == (f"{run_id}~write~000000~0", "SUCCEEDED")
    assert (first["caller_run_id"], first["caller_task_run_id"]) == (run_id, "write~000000")
    assert first["caller_step_index"] == 0
    assert [task["task_id"] for task in first["tasks"]] == ["draft", "polish"]
    [grandchild] = first["children"]
    assert grandchild["caller_task_run_id"] == "polish"
    assert grandchild["children"] == []
    assert second["caller_task_run_id"] == "write~000001"


def _store_run(tmp_path: pathlib.Path, config: pathlib.Path) -> tuple[str, str]:
    """Submits ``config`` to a SQLite store and dispatches it to the end; the store and run id."""
    store = f"sqlite:///{tmp_path / 'state.db'}"
    submitted = run_tool("job_submitter", f"--input_path={config}", f"--store={store}", "--offline")
    assert submitted.code == 0, submitted.stderr
    dispatched = run_tool("dispatcher", f"--store={store}", "--until_idle", "--offline")
    assert dispatched.code == 0, dispatched.stderr
    return store, submitted.stdout.strip()


def test_config_reader_reads_a_stored_run_with_its_child(tmp_path: pathlib.Path) -> None:
    child = {
        "job_id": "child",
        "input_config": {"payload": {"section": ""}},
        "tasks": [{"task_id": "final", "steps": [_query("On %section%", "summary")]}],
    }
    (tmp_path / "child.json").write_text(json.dumps(child))
    parent = {
        "job_id": "parent",
        "input_config": {"payload": {"topic": "owls"}},
        "tasks": [
            {
                "task_id": "write",
                "steps": [
                    {
                        "name": "child",
                        "step_type": "STEP_TYPE_SUB_JOB",
                        "sub_job_config": {
                            "job_path": "child.json",
                            "inputs": {"section": "%topic%"},
                        },
                        "output_config": {"payload": {"summary": "%response.final.summary%"}},
                    }
                ],
            }
        ],
    }
    config = tmp_path / "parent.json"
    config.write_text(json.dumps(parent))
    preview = run_tool("config_reader", f"--input_path={config}")
    assert preview.code == 0, preview.stderr
    assert (
        "  write.steps[0] child (sub-job child.json): section <- %topic%\n"
        "      job 'child': 1 task, 1 step\n"
        "      level 0\n"
        "        final [1 step]  (final)"
    ) in preview.stderr
    # stdout is the config as its file holds it: the path, not the child read from it.
    assert json.loads(preview.stdout)["tasks"][0]["steps"][0]["sub_job_config"] == {
        "job_path": "child.json",
        "inputs": {"section": "%topic%"},
    }

    store, run_id = _store_run(tmp_path, config)
    read = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}")
    assert read.code == 0, read.stderr
    summary = json.loads(read.stdout)
    [child_summary] = summary["children"]
    assert child_summary["run_id"] == f"{run_id}~write~0"
    assert child_summary["status"] == "SUCCEEDED"
    assert child_summary["caller_task_run_id"] == "write"
    assert child_summary["outputs"]["final"]["summary"].endswith("On owls")
    assert child_summary["children"] == []
    lines = read.stderr.splitlines()
    at = lines.index("  child runs:")
    assert lines[at + 1].startswith(
        f"    write.steps[0] child: run {run_id}~write~0: succeeded, 1/1 tasks succeeded; tokens: "
    )


def test_the_sub_job_sample_runs_in_a_store_a_child_per_section(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "samples"
    created = run_tool("create_sample", f"--output_dir={folder}")
    assert created.code == 0, created.stderr
    assert {"sample_sub_job_config.json", "sample_sub_job_child_config.json"} <= set(SAMPLE_FILES)
    preview = run_tool("config_reader", f"--input_path={folder / 'sample_sub_job_config.json'}")
    assert preview.code == 0, preview.stderr
    assert (
        "  write.steps[0] write_section (sub-job sample_sub_job_child_config.json): "
        "section <- %section%, topic <- %topic%\n"
        "      job 'section_writer': 2 tasks, 2 steps\n"
        "      level 0\n"
        "        draft [1 step] -> polish\n"
    ) in preview.stderr

    store, run_id = _store_run(tmp_path, folder / "sample_sub_job_config.json")
    read = run_tool("config_reader", f"--run_id={run_id}", f"--store={store}")
    assert read.code == 0, read.stderr
    summary = json.loads(read.stdout)
    assert summary["status"] == "SUCCEEDED"
    children = summary["children"]
    assert [child["caller_task_run_id"] for child in children] == [
        f"write~{index:06d}" for index in range(3)
    ]
    assert {child["status"] for child in children} == {"SUCCEEDED"}
    paragraphs = [child["outputs"]["polish"]["paragraph"] for child in children]
    write = next(task for task in summary["tasks"] if task["task_id"] == "write")
    assert write["outputs"]["paragraph"] == paragraphs
    assert "article" in summary["outputs"]["assemble"]
    for index in range(3):
        assert f"    write[{index}].steps[0] write_section: run {run_id}~write~{index:06d}~0: " in (
            read.stderr
        )

"""config_reader on map tasks: the list and bindings before a run, the items after one."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from llm_scheduler import ModelClient, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config_tools.config_reader import describe, describe_run, summarize_run
from llm_scheduler.config_tools.map_view import (
    ITEM_LINES,
    describe_for_each,
    describe_items,
    for_each_json,
    item_counts,
)
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import run_closing


def _function(name: str, request: Any, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "step_type": 1,
        "function_call_config": {"function_name": name, "request": request},
        "output_config": {"payload": outputs},
    }


def _config(topics: Any, **for_each: Any) -> dict[str, Any]:
    """write (a map over ``topics``: json_parse of each item) -> count (the list's length)."""
    return {
        "job_id": "mapped",
        "input_config": {"payload": {"topics": topics}},
        "tasks": [
            {
                "task_id": "write",
                "next_task": "count",
                "for_each": {"items": "%topics%", **for_each},
                "steps": [
                    _function(
                        "json_parse",
                        f"%{for_each.get('item_variable', 'item')}%",
                        {"text": "%response%"},
                    )
                ],
            },
            {
                "task_id": "count",
                "steps": [_function("length", {"value": "%text%"}, {"n": "%response%"})],
            },
        ],
    }


def _job(topics: Any, **for_each: Any) -> config_pb2.JobConfig:
    job = loads(json.dumps(_config(topics, **for_each)), config_pb2.JobConfig, ConfigFormat.JSON)
    Validator().check_job(job)
    return job


def _run(topics: Any, **for_each: Any) -> run_pb2.JobRun:
    """Runs the job in process, as job_runner does without --store."""
    context = RunContext(models=ModelClient(offline=True))
    return run_closing(context, run_job(_job(topics, **for_each), context))


def _task(summary: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(task for task in summary["tasks"] if task["task_id"] == task_id)


def test_the_preview_shows_each_map_with_its_list_and_bindings() -> None:
    job = _job(["1"], max_in_flight=8)
    text = describe("job", job)
    assert text.endswith(
        "\nmap tasks:\n"
        "  write  for each item (index) in %topics%  [max_in_flight 8, max_items 1000]"
    )
    assert "level 0\n  write [1 step] -> count" in text  # the graph is drawn as before

    custom = _job(["1"], item_variable="topic", index_variable="i", max_items=50)
    assert describe_for_each(custom.tasks[0].for_each) == (
        "for each topic (i) in %topics%  [max_items 50]"
    )
    assert describe("task", custom.tasks[0]).endswith(
        "\nmap tasks:\n  write  for each topic (i) in %topics%  [max_items 50]"
    )
    assert for_each_json(custom.tasks[0].for_each) == {
        "items": "%topics%",
        "item_variable": "topic",
        "index_variable": "i",
        "max_in_flight": 0,
        "max_items": 50,
    }
    assert "map tasks" not in describe("task", custom.tasks[1])


def test_config_reader_previews_a_map_job(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(_config(["1", "2"], max_in_flight=2)))
    result = run_tool("config_reader", f"--input_path={path}")
    assert result.code == 0, result.stderr
    assert "  write  for each item (index) in %topics%  [max_in_flight 2, max_items 1000]" in (
        result.stderr
    )
    assert json.loads(result.stdout)["tasks"][0]["for_each"] == {
        "items": "%topics%",
        "max_in_flight": 2,
    }


def test_a_run_shows_each_map_item_and_the_counts() -> None:
    job_run = _run(["1", "2", "3"])
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message

    text = describe_run(job_run, "memory")
    assert text.startswith(f"run {job_run.run_id} in memory: succeeded, 2/2 tasks succeeded; ")
    assert text.splitlines()[1:] == [
        "  write: 3 items: 3 succeeded",
        "    [0] succeeded",
        "    [1] succeeded",
        "    [2] succeeded",
    ]

    summary = summarize_run(job_run)
    write = _task(summary, "write")
    assert write["for_each"] == {
        "items": "%topics%",
        "item_variable": "item",
        "index_variable": "index",
        "max_in_flight": 0,
        "max_items": 1000,
    }
    assert write["items_total"] == 3
    assert write["item_counts"] == {"SUCCEEDED": 3}
    assert write["items"] == [
        {"index": i, "task_run_id": f"write~{i:06d}", "status": "SUCCEEDED", "outputs": {"text": n}}
        for i, n in enumerate([1, 2, 3])
    ]
    assert write["outputs"] == {"text": [1, 2, 3]}
    assert "items" not in _task(summary, "count")  # not a map: the entry is as before
    json.dumps(summary)  # printable as JSON


def test_a_failed_item_is_counted_and_its_line_holds_the_error() -> None:
    job_run = _run(["1", "2", "oops", "4", "5"], max_in_flight=1)
    assert job_run.status == run_pb2.RUN_STATUS_FAILED

    lines = describe_run(job_run, "memory").splitlines()
    assert lines[1] == "  write: 5 items: 2 succeeded, 1 failed, 2 skipped"
    assert lines[2:4] == ["    [0] succeeded", "    [1] succeeded"]
    assert lines[4].startswith("    [2] failed: ") and "oops" in lines[4]
    assert lines[5:] == ["    [3] skipped", "    [4] skipped"]

    write = _task(summarize_run(job_run), "write")
    assert write["item_counts"] == {"SUCCEEDED": 2, "FAILED": 1, "SKIPPED": 2}
    assert [item["status"] for item in write["items"]] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "SKIPPED",
        "SKIPPED",
    ]
    assert "oops" in write["items"][2]["error"]
    assert "error" not in write["items"][0]


def test_many_items_are_counted_and_listed_only_when_asked() -> None:
    count = ITEM_LINES + 5
    job_run = _run([str(i) for i in range(count)])
    write = next(task for task in job_run.tasks if task.task_id == "write")

    assert describe_items(write) == [
        f"write: {count} items: {count} succeeded",
        f"  ({count} items; --show_items lists each)",
    ]
    every = describe_items(write, every_item=True)
    assert len(every) == 1 + count and every[-1] == f"  [{count - 1}] succeeded"
    assert len(describe_run(job_run, "memory", every_item=True).splitlines()) == 2 + count


def test_a_map_whose_list_was_never_read_has_no_items() -> None:
    job_run = _run("not a list")
    assert describe_run(job_run, "memory").splitlines()[1:] == ["  write: no items (failed)"]
    write = _task(summarize_run(job_run), "write")
    assert write["items_total"] == 0 and write["items"] == []
    assert "not a list" in write["error"]

    empty = _run([])
    assert describe_run(empty, "memory").splitlines()[1:] == ["  write: 0 items"]


def test_items_a_store_has_not_created_yet_are_counted_as_not_started() -> None:
    # The shape a stored map has mid-run: items_total known, only the first items created.
    record = run_pb2.TaskRun(task_id="write", items_total=5, status=run_pb2.RUN_STATUS_RUNNING)
    for index, status in enumerate([run_pb2.RUN_STATUS_SUCCEEDED, run_pb2.RUN_STATUS_RUNNING]):
        record.items.add(
            task_id="write", task_run_id=f"write~{index:06d}", item_index=index, status=status
        )
    assert item_counts(record) == {"RUNNING": 1, "SUCCEEDED": 1, "NOT_STARTED": 3}
    assert describe_items(record) == [
        "write: 5 items: 1 running, 1 succeeded, 3 not started",
        "  [0] succeeded",
        "  [1] running",
    ]


def test_show_items_goes_with_run_id(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(_config(["1"])))
    result = run_tool("config_reader", f"--input_path={path}", "--show_items")
    assert result.code == 2
    assert "--show_items goes with --run_id" in result.stderr

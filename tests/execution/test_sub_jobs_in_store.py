"""Sub-job steps in a store (`execution.sub_job_runs`): the task waits, the child wakes it."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

from llm_scheduler import ModelRegistry, Validator
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.submit import DEFAULT_MAX_ATTEMPTS, submit_job
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import context_for
from tests.engine.test_sub_job import CHILD, _load, _parent, plan_sections, sub_job_map
from tests.execution.test_map_runs import deliver_every_event_twice, run_dispatchers, task_of


def _submit(store_url: str, job: config_pb2.JobConfig, registry: ModelRegistry, **kw: Any) -> str:
    Validator(registry).check_job(job)
    with open_store(store_url) as store:
        return submit_job(store, job, **kw)


def test_a_sub_job_step_waits_in_the_store_and_its_child_wakes_it(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    run_id = _submit(store_url, _parent(), fake_registry)
    with open_store(store_url) as store:
        context = context_for(fake_registry)

        async def first_delivery() -> str:
            try:
                return (await handle_task_run(store, run_id, "write", context)).action
            finally:
                await context.models.aclose()

        # The parent's task submits its child and waits: no process waits for the child.
        assert asyncio.run(first_delivery()) == "waiting"
        child_id = f"{run_id}~write~0"
        waiting = store.get(docs.task_run_path(run_id, "write"))
        assert waiting is not None
        assert (waiting["status"], waiting["waiting_child"]) == (Status.WAITING, child_id)
        assert not waiting["lease_owner"]
        child_doc = store.get(docs.job_run_path(child_id))
        assert child_doc is not None
        assert (child_doc["caller_run_id"], child_doc["caller_task_run_id"]) == (run_id, "write")
        assert fake_server.count() == 0

        run_dispatchers(store_url, fake_registry, 3)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 3  # draft, polish (the child), title (the parent)
    sub_step, title = job_run.tasks[0].steps
    assert sub_step.child_run_id == child_id
    [child] = job_run.children
    assert child.run_id == child_id and child.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert (child.caller_run_id, child.caller_task_run_id, child.caller_step_index) == (
        run_id,
        "write",
        0,
    )
    summary = struct_to_dict(child.outputs)["final"]["summary"]
    assert struct_to_dict(sub_step.outputs) == {"summary": summary}
    assert title.user_prompt == f"Title for {summary}"
    assert sub_step.usage == child.usage and sub_step.usage.input_tokens > 0


def test_every_event_delivered_twice_calls_each_model_once(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    run_id = _submit(store_url, _parent(), fake_registry)
    deliver_every_event_twice(store_url, fake_registry)
    with open_store(store_url) as store:
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 3


def test_a_map_over_a_sub_job_step_runs_a_child_per_item(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = 4
    plan_sections(fake_server, count)
    job = sub_job_map()
    run_id = _submit(store_url, job, fake_registry)
    run_dispatchers(store_url, fake_registry, 3)
    with open_store(store_url) as store:
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 1 + 2 * count + 1
    ids = [f"{run_id}~write~{i:06d}~0" for i in range(count)]
    write = task_of(job_run, "write")
    assert [item.steps[0].child_run_id for item in write.items] == ids
    assert [child.run_id for child in job_run.children] == ids
    expected = [f"wrote Polish wrote Draft s{i}" for i in range(count)]
    assert struct_to_dict(write.outputs) == {"summary": expected}


def test_a_failed_child_fails_the_step_and_the_parent_run(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    child = json.loads(json.dumps(CHILD))
    child["tasks"][0]["steps"][0] = {
        "step_type": 1,
        "function_call_config": {"function_name": "json_parse", "request": "%section%"},
        "output_config": {"payload": {"draft": "%response%"}},
    }
    run_id = _submit(store_url, _parent(child), fake_registry)  # "tides" is no JSON
    run_dispatchers(store_url, fake_registry, 2)
    with open_store(store_url) as store:
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    step = job_run.tasks[0].steps[0]
    assert step.status == run_pb2.RUN_STATUS_FAILED
    assert step.error.message.startswith("sub-job 'child': task 'draft' failed: ")
    assert job_run.children[0].status == run_pb2.RUN_STATUS_FAILED
    assert fake_server.count() == 0


def test_an_edited_child_response_in_a_stored_trace_replays_only_what_follows(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    run_id = _submit(store_url, _parent(), fake_registry)
    run_dispatchers(store_url, fake_registry, 2)
    with open_store(store_url) as store:
        first = read_job_run(store, run_id)
    assert first is not None and first.status == run_pb2.RUN_STATUS_SUCCEEDED
    calls = fake_server.count()
    edited = run_pb2.JobRun()
    edited.CopyFrom(first)
    draft = edited.children[0].tasks[0].steps[0]
    draft.response_text = "an edited draft"
    draft.outputs.Clear()

    again_id = _submit(
        store_url, _parent(), fake_registry, parent_run_id=run_id, replay_source=edited
    )
    run_dispatchers(store_url, fake_registry, 2)
    with open_store(store_url) as store:
        again = read_job_run(store, again_id)
    assert again is not None
    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == calls + 2  # the child's polish, then the parent's title
    child = again.children[0]
    assert child.tasks[0].steps[0].reused_from_run_id == first.children[0].run_id
    assert child.tasks[1].steps[0].user_prompt == "Polish an edited draft"
    assert "Polish an edited draft" in again.tasks[0].steps[1].user_prompt


def test_cancelling_the_parent_cancels_its_child_and_resume_finishes_both(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    run_id = _submit(store_url, _parent(), fake_registry)
    child_id = f"{run_id}~write~0"
    with open_store(store_url) as store:
        context = context_for(fake_registry)

        async def start() -> str:
            try:
                return (await handle_task_run(store, run_id, "write", context)).action
            finally:
                await context.models.aclose()

        assert asyncio.run(start()) == "waiting"
        assert cancel_run(store, run_id) == ["write"]
        child_doc = store.get(docs.job_run_path(child_id))
        assert child_doc is not None and child_doc["status"] == Status.CANCELLED
        run_dispatchers(store_url, fake_registry, 1)
        assert fake_server.count() == 0

        assert resume_run(store, run_id) == ["write"]
        run_dispatchers(store_url, fake_registry, 2)
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert job_run.children[0].status == run_pb2.RUN_STATUS_SUCCEEDED
    assert fake_server.count() == 3


def test_job_runner_runs_a_sub_job_from_its_file(tmp_path: pathlib.Path) -> None:
    """In process; in a store: tests/config_tools/test_sub_job_view.py (the CLIs end to end)."""
    child = {
        "job_id": "child",
        "input_config": {"payload": {"section": ""}},
        "tasks": [
            {
                "task_id": "final",
                "steps": [
                    {
                        "model_query_config": {
                            "model_key": "OFFLINE",
                            "user_prompt": "On %section%",
                        },
                        "output_config": {"payload": {"summary": "%response%"}},
                    }
                ],
            }
        ],
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
    in_process = run_tool("job_runner", f"--input_path={config}", "--offline")
    assert in_process.code == 0, in_process.stderr
    assert json.loads(in_process.stdout)["write"]["summary"].endswith("On owls")


def test_waiting_for_children_uses_no_attempts(
    store_url: str, fake_registry: ModelRegistry
) -> None:
    """A task with more sub-job steps than attempts: each wake gives its claim one back."""
    child = {
        "job_id": "count",
        "input_config": {"payload": {"section": ""}},
        "tasks": [
            {
                "task_id": "final",
                "steps": [
                    {
                        "step_type": 1,
                        "function_call_config": {
                            "function_name": "length",
                            "request": {"value": "%section%"},
                        },
                        "output_config": {"payload": {"n": "%response%"}},
                    }
                ],
            }
        ],
    }
    steps = [
        {
            "name": f"count{i}",
            "step_type": "STEP_TYPE_SUB_JOB",
            "sub_job_config": {"job": child, "inputs": {"section": "x" * (i + 1)}},
            "output_config": {"payload": {f"n{i}": "%response.final.n%"}},
        }
        for i in range(DEFAULT_MAX_ATTEMPTS + 2)
    ]
    job = _load({"job_id": "many", "tasks": [{"task_id": "t", "steps": steps}]})
    run_id = _submit(store_url, job, fake_registry)
    run_dispatchers(store_url, fake_registry, 1)
    with open_store(store_url) as store:
        job_run = read_job_run(store, run_id)
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    outputs = struct_to_dict(job_run.outputs)["t"]
    assert [outputs[f"n{i}"] for i in range(len(steps))] == list(range(1, len(steps) + 1))
    assert len(job_run.children) == len(steps)

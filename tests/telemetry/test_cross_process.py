"""Spans of one event-driven run built by several "processes".

Receivers are switched between deliveries: one trace, the right parents, whichever process
finished each record.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from llm_scheduler import ModelClient, RunContext, Validator
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.telemetry import hooks, ids
from llm_scheduler.v1 import config_pb2
from tests.telemetry.conftest import Collected
from tests.telemetry.jobs import fan_out_job


def _deliver(store: Store, run_id: str, task_id: str, worker: Collected, **kwargs: Any) -> str:
    """One delivery, handled by ``worker`` (its receiver installed meanwhile)."""
    hooks.install(worker.telemetry)
    context = RunContext(models=ModelClient(offline=True))

    async def body() -> str:
        try:
            return (await handle_task_run(store, run_id, task_id, context, **kwargs)).action
        finally:
            await context.models.aclose()

    try:
        return asyncio.run(body())
    finally:
        hooks.uninstall()


def _task_run(span: ReadableSpan) -> str:
    assert span.attributes is not None
    return str(span.attributes["llm_scheduler.task_run.id"])


def _instance(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.instance.id"])


def test_spans_of_tasks_run_by_two_workers_form_one_tree(tmp_path: pathlib.Path) -> None:
    a, b = Collected(instance_id="worker-a"), Collected(instance_id="worker-b")
    job = fan_out_job(branches=2)
    Validator().check_job(job)
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        run_id = submit_job(store, job)
        assert _deliver(store, run_id, "start", a) == "succeeded"
        assert _deliver(store, run_id, "branch0", b) == "succeeded"
        assert _deliver(store, run_id, "branch1", a) == "succeeded"
        # The join's two steps: the first by b, which hands the rest over at its deadline, the
        # second by a, which completes the task and so finishes the job.
        handoff = {"deadline": time.monotonic() + 100.0, "handoff_margin": 1000.0}
        assert _deliver(store, run_id, "join", b, **handoff) == "handed_off"
        assert _deliver(store, run_id, "join", a) == "succeeded"
        job_doc = store.get(docs.job_run_path(run_id))
        assert job_doc is not None and job_doc["status"] == "RUN_STATUS_SUCCEEDED"
    spans = [*a.finished_spans(), *b.finished_spans()]
    trace = ids.run_trace(run_id)
    assert {s.context.trace_id for s in spans if s.context} == {trace.trace_id}
    by_id = {s.context.span_id: s for s in spans if s.context}
    assert len(by_id) == len(spans) == 1 + 4 + 5  # ids are unique
    job_span = by_id[ids.job_span_id(run_id)]
    assert job_span.parent is None and _instance(job_span) == "worker-a"
    tasks = {_task_run(s): s for s in spans if s.name.startswith("task ")}
    assert {k: _instance(v) for k, v in tasks.items()} == {
        "start": "worker-a",
        "branch0": "worker-b",
        "branch1": "worker-a",
        "join": "worker-a",
    }
    for task_run_id, task in tasks.items():
        assert task.parent is not None and job_span.context is not None
        assert task.parent.span_id == job_span.context.span_id
        assert task.context is not None
        assert task.context.span_id == ids.task_span_id(run_id, task_run_id)
    steps = [s for s in spans if s.name.startswith("chat ")]
    assert len(steps) == 5
    for step in steps:
        task = tasks[_task_run(step)]
        assert step.parent is not None and task.context is not None
        assert step.parent.span_id == task.context.span_id
    join_steps = sorted(
        (s for s in steps if _task_run(s) == "join"),
        key=lambda s: s.start_time or 0,
    )
    assert [_instance(s) for s in join_steps] == ["worker-b", "worker-a"]
    # The join's task span covers both of its steps though no process saw it whole.
    join = tasks["join"]
    assert join.start_time is not None and join.end_time is not None
    assert join.start_time <= (join_steps[0].start_time or 0)
    assert join.end_time >= (join_steps[1].end_time or 0)
    assert job_span.start_time is not None and job_span.start_time <= join.start_time


def test_a_sub_job_child_run_is_in_its_callers_trace_under_its_task(
    tmp_path: pathlib.Path,
) -> None:
    child = {
        "job_id": "child",
        "tasks": [{"task_id": "inner", "steps": [_query("inner %section%", {"summary": ""})]}],
    }
    parent = _load(
        {
            "job_id": "parent",
            "input_config": {"payload": {"topic": "tides"}},
            "tasks": [
                {
                    "task_id": "write",
                    "steps": [
                        {
                            "name": "child",
                            "step_type": "STEP_TYPE_SUB_JOB",
                            "sub_job_config": {"job": child, "inputs": {"section": "%topic%"}},
                            "output_config": {"payload": {"summary": "%response.inner.summary%"}},
                        }
                    ],
                }
            ],
        }
    )
    Validator().check_job(parent)
    worker = Collected()
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        run_id = submit_job(store, parent)
        assert _deliver(store, run_id, "write", worker) == "waiting"
        child_id = f"{run_id}~write~0"
        assert _deliver(store, child_id, "inner", worker) == "succeeded"
        assert _deliver(store, run_id, "write", worker) == "succeeded"
    spans = worker.finished_spans()
    assert {s.context.trace_id for s in spans if s.context} == {ids.run_trace(run_id).trace_id}
    child_job = next(s for s in spans if s.name == "invoke_workflow child")
    assert child_job.parent is not None
    assert child_job.parent.span_id == ids.task_span_id(run_id, "write")


def _query(prompt: str, outputs: dict[str, str]) -> dict[str, object]:
    return {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def _load(config: dict[str, object]) -> config_pb2.JobConfig:
    import json

    from llm_scheduler import loads
    from llm_scheduler.config.formats import ConfigFormat

    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def test_a_cancelled_run_exports_its_job_span(tmp_path: pathlib.Path) -> None:
    from llm_scheduler.execution.cancel import cancel_run

    job = fan_out_job(branches=2)
    Validator().check_job(job)
    worker = Collected()
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        run_id = submit_job(store, job)
        assert _deliver(store, run_id, "start", worker) == "succeeded"
        hooks.install(worker.telemetry)
        try:
            cancel_run(store, run_id, reason="not needed")
        finally:
            hooks.uninstall()
    spans = {span.name: span for span in worker.finished_spans()}
    job_span = spans[f"invoke_workflow {job.job_id}"]
    assert job_span.context is not None
    assert job_span.context.span_id == ids.job_span_id(run_id)
    assert job_span.attributes is not None
    assert job_span.attributes["llm_scheduler.run.status"] == "cancelled"
    assert job_span.attributes["llm_scheduler.tasks_cancelled"] == 2
    assert "task start" in spans  # the task that ran before the cancel

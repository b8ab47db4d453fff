"""Export over OTLP/HTTP from real processes (the CLIs) to a local receiver decoding protobuf."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
from typing import Any

import pytest
from google.protobuf import json_format

from llm_scheduler import Validator
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, REPO_ROOT
from tests.telemetry.jobs import failing_function_job, fan_out_job
from tests.telemetry.otlp_receiver import OtlpReceiver, Span

STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


@pytest.fixture
def receiver() -> Any:
    with OtlpReceiver() as server:
        yield server


def _job_file(tmp_path: pathlib.Path, job: config_pb2.JobConfig) -> str:
    path = tmp_path / "job.json"
    path.write_text(json_format.MessageToJson(job, preserving_proto_field_name=True))
    return str(path)


@pytest.mark.timeout(120)
def test_a_fan_out_run_by_two_dispatcher_processes_is_one_trace(
    receiver: OtlpReceiver,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
    fake_registry: ModelRegistry,
    tmp_path: pathlib.Path,
) -> None:
    # Each branch's call waits for another one to be in flight: with one worker per dispatcher,
    # that one is the other process's, so both processes run branches (no timing assumed).
    both = threading.Barrier(2, timeout=60)

    def responder(provider: str, body: dict[str, Any]) -> str:
        prompt = str(body["messages"][-1]["content"])
        if prompt.startswith("branch "):
            both.wait()
        return f"reply to: {prompt}"

    fake_server.responder = responder
    job = fan_out_job(branches=4, model_key="FAKE_OPENAI")
    Validator(fake_registry).check_job(job)
    store_url = f"sqlite:///{tmp_path}/state.db"
    with open_store(store_url) as store:
        run_id = submit_job(store, job)
    env = {
        **os.environ,
        **FAKE_CREDENTIALS,
        **receiver.otel_env(),
        "OTEL_SERVICE_NAME": "workers-under-test",
        "LLM_SCHEDULER_MODELS_FILE": str(models_file),
        "LLM_SCHEDULER_STORE": store_url,
    }
    command = [
        sys.executable,
        "-m",
        "llm_scheduler.runner.dispatcher",
        "--until_idle",
        "--workers=1",
        "--quiet",
    ]
    workers = [
        subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=100)
        assert worker.returncode == 0, stderr.decode()
    with open_store(store_url) as store:
        record = read_job_run(store, run_id)
    assert record is not None and record.status == run_pb2.RUN_STATUS_SUCCEEDED

    # Each process flushed at exit: everything is here.
    spans = receiver.spans
    assert len({span.trace_id for span in spans}) == 1
    jobs = [s for s in spans if s.name == "invoke_workflow fan"]
    assert len(jobs) == 1 and jobs[0].parent_span_id == ""
    job_span = jobs[0]
    assert job_span.attributes["llm_scheduler.run.id"] == run_id
    assert job_span.attributes["llm_scheduler.tasks_succeeded"] == 6
    tasks = {
        s.attributes["llm_scheduler.task_run.id"]: s for s in spans if s.name.startswith("task ")
    }
    assert set(tasks) == {"start", "branch0", "branch1", "branch2", "branch3", "join"}
    assert all(task.parent_span_id == job_span.span_id for task in tasks.values())
    steps = [s for s in spans if s.name.startswith("chat ")]
    assert len(steps) == 1 + 4 + 2
    recorded = {(task.task_id, step.index): step for task in record.tasks for step in task.steps}
    for step in steps:
        task_run_id = step.attributes["llm_scheduler.task_run.id"]
        assert step.parent_span_id == tasks[task_run_id].span_id
        expected = recorded[(task_run_id, step.attributes["llm_scheduler.step.index"])]
        _assert_genai(step, expected)
    # Spans came from both processes, told apart by their resource.
    pids = {s.resource["process.pid"] for s in spans}
    assert pids == {worker.pid for worker in workers}
    branch_pids = {tasks[f"branch{i}"].resource["process.pid"] for i in range(4)}
    assert len(branch_pids) == 2
    assert {s.resource["service.name"] for s in spans} == {"workers-under-test"}
    assert len({s.resource["service.instance.id"] for s in spans}) == 2

    # Metrics arrived from both processes: calls and tokens per model key.
    calls = [p for m in receiver.metrics if m.name == "llm_scheduler.model.calls" for p in m.points]
    assert sum(value for _, value in calls) == 7
    assert {attributes["llm_scheduler.model_key"] for attributes, _ in calls} == {"FAKE_OPENAI"}
    tokens = [
        (attributes["gen_ai.token.type"], value)
        for m in receiver.metrics
        if m.name == "llm_scheduler.model.tokens"
        for attributes, value in m.points
    ]
    assert sum(v for kind, v in tokens if kind == "input") == record.usage.input_tokens
    assert sum(v for kind, v in tokens if kind == "output") == record.usage.output_tokens
    names = {m.name for m in receiver.metrics}
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= names


def _assert_genai(span: Span, step: run_pb2.StepRun) -> None:
    assert span.name == "chat gpt-fake"
    assert span.kind == 3  # SPAN_KIND_CLIENT
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-fake"
    assert attributes["gen_ai.response.model"] == "gpt-fake"
    assert attributes["llm_scheduler.model_key"] == "FAKE_OPENAI"
    assert attributes["gen_ai.usage.input_tokens"] == step.usage.input_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == step.usage.output_tokens > 0
    assert attributes["llm_scheduler.cost_usd"] == pytest.approx(step.cost_usd)
    assert step.cost_usd > 0
    assert span.start == step.started_at.ToNanoseconds()
    assert span.end == step.finished_at.ToNanoseconds()
    assert not span.events  # no prompts without the opt-in


def test_job_runner_exports_prompts_only_when_opted_in(
    receiver: OtlpReceiver, tmp_path: pathlib.Path
) -> None:
    path = _job_file(tmp_path, fan_out_job(branches=1))
    done = run_tool("job_runner", f"--input_path={path}", "--offline", env=receiver.otel_env())
    assert done.code == 0, done.stderr
    assert len(receiver.spans) == 1 + 3 + 4
    everything = repr([(s.attributes, s.events) for s in receiver.spans])
    assert "start owls" not in everything

    receiver.spans.clear()
    env = {**receiver.otel_env(), "LLM_SCHEDULER_OTEL_CAPTURE_CONTENT": "true"}
    done = run_tool("job_runner", f"--input_path={path}", "--offline", env=env)
    assert done.code == 0, done.stderr
    start = next(
        s
        for s in receiver.spans
        if s.name.startswith("chat ") and s.attributes["llm_scheduler.task_run.id"] == "start"
    )
    ((name, attributes),) = start.events
    assert name == "gen_ai.client.inference.operation.details"
    assert "start owls" in attributes["gen_ai.input.messages"]
    assert "[offline" in attributes["gen_ai.output.messages"]


def test_job_runner_exports_a_failed_step_with_status_error(
    receiver: OtlpReceiver, tmp_path: pathlib.Path
) -> None:
    path = _job_file(tmp_path, failing_function_job())
    done = run_tool("job_runner", f"--input_path={path}", "--offline", env=receiver.otel_env())
    assert done.code != 0
    by_name = {s.name: s for s in receiver.spans}
    step = by_name["execute_tool json_extract"]
    assert step.status_code == STATUS_ERROR
    assert step.attributes["error.type"] == "FunctionCallError"
    assert "no JSON found" in step.status_message
    assert by_name["invoke_workflow broken"].status_code == STATUS_ERROR


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="no endpoint"),
        pytest.param({"OTEL_SDK_DISABLED": "true"}, id="sdk disabled"),
    ],
)
def test_nothing_is_exported_without_an_endpoint_or_when_disabled(
    receiver: OtlpReceiver, tmp_path: pathlib.Path, env: dict[str, str]
) -> None:
    path = _job_file(tmp_path, fan_out_job(branches=1))
    if env:  # the endpoint is set, but the SDK is disabled
        env = {**env, **receiver.otel_env()}
    done = run_tool(
        "job_runner",
        f"--input_path={path}",
        "--offline",
        env={"OTEL_SERVICE_NAME": "quiet", **env},
        unset=("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    )
    assert done.code == 0, done.stderr
    assert receiver.requests == 0 and not receiver.spans


def test_task_runner_exports_its_tasks_as_one_trace(
    receiver: OtlpReceiver, tmp_path: pathlib.Path
) -> None:
    task = fan_out_job(branches=1).tasks[0]
    path = tmp_path / "task.json"
    path.write_text(json_format.MessageToJson(task, preserving_proto_field_name=True))
    done = run_tool(
        "task_runner",
        f"--input_path={path}",
        "--offline",
        "--var=topic=owls",
        env=receiver.otel_env(),
    )
    assert done.code == 0, done.stderr
    names = sorted(span.name for span in receiver.spans)
    assert names == ["chat offline", "invoke_workflow task_runner", "task start"]
    assert len({span.trace_id for span in receiver.spans}) == 1

"""Runs in process (`run_job`) exported through the real SDK's in-memory exporter and reader."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from llm_scheduler import ModelClient, RunContext, Validator, run_job_sync
from llm_scheduler.telemetry import ids
from llm_scheduler.v1 import run_pb2
from tests.conftest import REPO_ROOT
from tests.telemetry.conftest import Collected
from tests.telemetry.jobs import failing_function_job, fan_out_job


def _run(job: Any) -> run_pb2.JobRun:
    Validator().check_job(job)
    return run_job_sync(job, RunContext(models=ModelClient(offline=True)))


def _by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def _attr(span: ReadableSpan, key: str) -> Any:
    assert span.attributes is not None
    return span.attributes.get(key)


def test_run_job_exports_one_trace_job_task_step(collected: Collected) -> None:
    record = _run(fan_out_job(branches=3))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    spans = collected.finished_spans()
    # 1 job, 5 tasks, 3 + 1 + 2 steps.
    assert len(spans) == 1 + 5 + 6
    assert {span.context.trace_id for span in spans if span.context} == {
        ids.run_trace(record.run_id).trace_id
    }
    job = _by_name(spans)["invoke_workflow fan"]
    assert job.parent is None and job.context is not None
    assert job.context.span_id == ids.job_span_id(record.run_id)
    assert _attr(job, "llm_scheduler.run.id") == record.run_id
    assert _attr(job, "gen_ai.usage.input_tokens") == record.usage.input_tokens
    tasks = {_attr(s, "llm_scheduler.task.id"): s for s in spans if s.name.startswith("task ")}
    assert set(tasks) == {"start", "branch0", "branch1", "branch2", "join"}
    for task in tasks.values():
        assert task.parent is not None and task.parent.span_id == job.context.span_id
    steps = [s for s in spans if s.name.startswith("chat ")]
    assert len(steps) == 6
    for step in steps:
        task = tasks[_attr(step, "llm_scheduler.task_run.id")]
        assert task.context is not None and step.parent is not None
        assert step.parent.span_id == task.context.span_id
        assert step.kind == trace_api.SpanKind.CLIENT
    # GenAI attributes, with the offline model's usage.
    recorded = {t.task_id: t for t in record.tasks}
    join_steps = sorted(
        (s for s in steps if _attr(s, "llm_scheduler.task_run.id") == "join"),
        key=lambda s: _attr(s, "llm_scheduler.step.index"),
    )
    for span, step_record in zip(join_steps, recorded["join"].steps, strict=True):
        assert span.name == "chat offline"
        assert _attr(span, "gen_ai.operation.name") == "chat"
        assert _attr(span, "gen_ai.provider.name") == "offline"
        assert _attr(span, "gen_ai.request.model") == "offline"
        assert _attr(span, "gen_ai.response.model") == "offline"
        assert _attr(span, "llm_scheduler.model_key") == "OFFLINE"
        usage = step_record.usage
        assert _attr(span, "gen_ai.usage.input_tokens") == usage.input_tokens > 0
        assert _attr(span, "gen_ai.usage.output_tokens") == usage.output_tokens > 0
        assert span.start_time == step_record.started_at.ToNanoseconds()
        assert span.end_time == step_record.finished_at.ToNanoseconds()
        assert span.status.status_code == trace_api.StatusCode.UNSET
        assert not span.events  # no content without the opt-in
    # Prompts are not anywhere without the opt-in.
    assert "start owls" not in repr([dict(s.attributes or {}) for s in spans])


def test_metrics_count_calls_tokens_and_latency_per_model_key(collected: Collected) -> None:
    record = _run(fan_out_job(branches=2))
    steps = [step for task in record.tasks for step in task.steps]
    calls = _points(collected, "llm_scheduler.model.calls")
    assert sum(value for _, value in calls) == len(steps) == 5
    assert {attributes["llm_scheduler.model_key"] for attributes, _ in calls} == {"OFFLINE"}
    token_points = _points(collected, "llm_scheduler.model.tokens")
    tokens = {attributes["gen_ai.token.type"]: value for attributes, value in token_points}
    assert tokens["input"] == sum(step.usage.input_tokens for step in steps)
    assert tokens["output"] == sum(step.usage.output_tokens for step in steps)
    durations = _points(collected, "gen_ai.client.operation.duration")
    assert sum(count for _, count in durations) == 5
    usage = _points(collected, "gen_ai.client.token.usage")
    assert {attributes["gen_ai.token.type"] for attributes, _ in usage} == {"input", "output"}


def _points(collected: Collected, name: str) -> list[tuple[dict[str, Any], float]]:
    """A metric's points: attributes and value (a histogram's: its count)."""
    data = collected.metrics_data()
    found: list[tuple[dict[str, Any], float]] = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    value: float | None = None
                    if isinstance(point, HistogramDataPoint):
                        value = point.count
                    elif isinstance(point, NumberDataPoint):
                        value = point.value
                    assert value is not None
                    found.append((dict(point.attributes or {}), value))
    return found


def test_prompts_and_responses_only_when_opted_in(collected_with_content: Collected) -> None:
    record = _run(fan_out_job(branches=1))
    spans = collected_with_content.finished_spans()
    start = next(
        s
        for s in spans
        if _attr(s, "llm_scheduler.task_run.id") == "start" and s.name.startswith("chat")
    )
    (event,) = start.events
    assert event.name == "gen_ai.client.inference.operation.details"
    assert event.attributes is not None
    assert "start owls" in str(event.attributes["gen_ai.input.messages"])
    assert "You are terse." in str(event.attributes["gen_ai.system_instructions"])
    response = record.tasks[0].steps[0].response_text
    assert response in str(event.attributes["gen_ai.output.messages"])


def test_a_failed_step_has_status_error_with_its_type(collected: Collected) -> None:
    record = _run(failing_function_job())
    assert record.status == run_pb2.RUN_STATUS_FAILED
    spans = _by_name(collected.finished_spans())
    step = spans["execute_tool json_extract"]
    assert step.status.status_code == trace_api.StatusCode.ERROR
    assert _attr(step, "error.type") == "FunctionCallError"
    assert _attr(step, "gen_ai.tool.name") == "json_extract"
    assert [event.name for event in step.events] == ["exception"]
    assert spans["task broken"].status.status_code == trace_api.StatusCode.ERROR
    assert spans["invoke_workflow broken"].status.status_code == trace_api.StatusCode.ERROR
    assert spans["task ask"].status.status_code == trace_api.StatusCode.UNSET


def test_a_run_started_inside_a_span_joins_its_trace(collected: Collected) -> None:
    tracer = TracerProvider().get_tracer("the application")
    with tracer.start_as_current_span("web request") as request:
        record = _run(fan_out_job(branches=1))
    context = request.get_span_context()
    spans = collected.finished_spans()
    assert {s.context.trace_id for s in spans if s.context} == {context.trace_id}
    job = _by_name(spans)["invoke_workflow fan"]
    assert job.parent is not None and job.parent.span_id == context.span_id
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED


# A fresh process's run of a fan-out job, offline, after `setup_telemetry` declined: the run
# goes on, and the process prints the record's status and the opentelemetry modules loaded.
_FRESH_RUN = (
    "from llm_scheduler import ModelClient, RunContext, run_job_sync\n"
    "from llm_scheduler.telemetry import hooks, setup_telemetry\n"
    "from tests.telemetry.jobs import fan_out_job\n"
    "assert setup_telemetry() is False and hooks.active is None\n"
    "record = run_job_sync(fan_out_job(), RunContext(models=ModelClient(offline=True)))\n"
    "print(record.status, sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
)


def _fresh_run(prelude: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + prelude + _FRESH_RUN],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_telemetry_off_costs_one_check_and_imports_nothing() -> None:
    # This process has imported OpenTelemetry (the tests do); a fresh one must not.
    done = _fresh_run("", {"OTEL_SERVICE_NAME": "x"})
    assert done.stdout.strip() == f"{run_pb2.RUN_STATUS_SUCCEEDED} []"


def test_without_the_extra_an_endpoint_exports_nothing_and_says_how_to_install_it() -> None:
    # A fresh process where OpenTelemetry cannot be imported (as without the extra), with an
    # endpoint set: the run goes on, a warning names the install command, nothing is loaded.
    hide = (
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry' or name.startswith('opentelemetry.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hide())\n"
    )
    done = _fresh_run(hide, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert done.stdout.strip() == f"{run_pb2.RUN_STATUS_SUCCEEDED} []"
    assert "OpenTelemetry is not installed; nothing is exported" in done.stderr
    assert "llm-scheduler[otel]" in done.stderr


def test_a_maps_items_are_spans_under_the_maps_span(collected: Collected) -> None:
    from llm_scheduler import loads
    from llm_scheduler.config.formats import ConfigFormat
    from llm_scheduler.v1 import config_pb2
    from tests.telemetry.jobs import query

    config = {
        "job_id": "mapped",
        "input_config": {"payload": {"sections": ["a", "b", "c"]}},
        "tasks": [
            {
                "task_id": "write",
                "for_each": {"items": "%sections%"},
                "steps": [query("Section %item%", {"text": ""})],
            }
        ],
    }
    import json

    record = _run(loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    spans = collected.finished_spans()
    by_task_run = {
        _attr(s, "llm_scheduler.task_run.id"): s for s in spans if s.name.startswith("task ")
    }
    assert set(by_task_run) == {"write", "write~000000", "write~000001", "write~000002"}
    map_span = by_task_run["write"]
    assert map_span.context is not None
    for index in range(3):
        item = by_task_run[f"write~{index:06d}"]
        assert item.parent is not None and item.parent.span_id == map_span.context.span_id
        assert _attr(item, "llm_scheduler.task.item_index") == index
    steps = [s for s in spans if s.name.startswith("chat ")]
    assert len(steps) == 3
    assert {s.parent.span_id for s in steps if s.parent} == {
        by_task_run[f"write~{i:06d}"].context.span_id for i in range(3)
    }


def test_a_run_only_queues_its_records_and_the_builder_makes_their_spans(
    collected: Collected,
) -> None:
    # The fixture's telemetry builds every 5 s (OTEL_BSP_SCHEDULE_DELAY's default): right after
    # the run nothing has reached the span processor; a flush builds the spans.
    _run(fan_out_job(branches=1))
    assert collected.spans.get_finished_spans() == ()
    assert len(collected.finished_spans()) == 1 + 3 + 4  # job, tasks, steps (the join has 2)


def test_the_builder_thread_makes_spans_without_a_flush() -> None:
    import threading

    from opentelemetry.sdk.trace import SpanProcessor

    from llm_scheduler.telemetry import hooks
    from llm_scheduler.telemetry.exporter import OtelRunTelemetry, process_resource

    built = threading.Event()
    names: list[str] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            names.append(span.name)
            if span.name.startswith("invoke_workflow"):
                built.set()

    telemetry = OtelRunTelemetry(Keep(), process_resource("t"), build_interval_seconds=0.01)
    hooks.install(telemetry)
    try:
        _run(fan_out_job(branches=1))
        assert built.wait(timeout=30)  # the builder's turn came: no flush was asked for
    finally:
        hooks.uninstall()
        telemetry.shutdown()
    assert len(names) == 1 + 3 + 4


def test_the_job_span_is_what_the_run_ended_with_though_its_record_changes(
    collected: Collected,
) -> None:
    record = _run(fan_out_job(branches=1))
    run_id, job_id = record.run_id, record.job_id
    record.Clear()  # the caller's record, changed before the spans are built
    spans = _by_name(collected.finished_spans())
    job_span = spans[f"invoke_workflow {job_id}"]
    assert _attr(job_span, "llm_scheduler.run.id") == run_id
    assert _attr(job_span, "llm_scheduler.run.status") == "succeeded"
    assert job_span.start_time and job_span.end_time and job_span.start_time < job_span.end_time

"""Trace ids derived from run ids, traceparent values, and the environment that turns export on."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

from llm_scheduler.telemetry import hooks, ids, setup_telemetry, telemetry_settings


def test_ids_are_the_same_in_every_process_and_distinct_per_record() -> None:
    assert ids.run_trace("r1") == ids.run_trace("r1") != ids.run_trace("r2")
    assert ids.task_span_id("r1", "a") == ids.task_span_id("r1", "a")
    spans = {
        ids.job_span_id("r1"),
        ids.task_span_id("r1", "a"),
        ids.task_span_id("r1", "a~000001"),
        ids.step_span_id("r1", "a", 0, 1),
        ids.step_span_id("r1", "a", 0, 2),
        ids.step_span_id("r1", "a", 1, 1),
    }
    assert len(spans) == 6 and all(0 < span < 2**64 for span in spans)


def test_traceparent_round_trip_and_malformed_values() -> None:
    value = ids.format_traceparent(0xABC, 0xDEF, sampled=False)
    assert value == f"00-{0xABC:032x}-{0xDEF:016x}-00"
    assert ids.parse_traceparent(value) == ids.TraceContext(0xABC, 0xDEF, sampled=False)
    for bad in ("", "00-xyz", f"00-{0:032x}-{1:016x}-01", "01-" + value[3:]):
        assert ids.parse_traceparent(bad) is None
    # A stored traceparent wins over the derived trace.
    assert ids.run_trace("r1", value).trace_id == 0xABC


def test_child_runs_are_in_their_callers_trace() -> None:
    child = ids.parse_traceparent(ids.child_traceparent("r1", "", "write"))
    assert child == ids.TraceContext(ids.run_trace("r1").trace_id, ids.task_span_id("r1", "write"))


def test_current_traceparent_from_a_live_span_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRACEPARENT", raising=False)
    assert ids.current_traceparent() == ""
    inherited = ids.format_traceparent(5, 6)
    monkeypatch.setenv("TRACEPARENT", inherited)
    assert ids.current_traceparent() == inherited
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        context = span.get_span_context()
        assert ids.current_traceparent() == ids.format_traceparent(
            context.trace_id, context.span_id
        )


@pytest.mark.parametrize(
    ("environ", "traces", "metrics"),
    [
        ({}, False, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, True, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x/v1/traces"}, True, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, False, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_METRICS_EXPORTER": "none"}, True, False),
    ],
)
def test_settings_follow_the_standard_variables(
    environ: dict[str, str], traces: bool, metrics: bool
) -> None:
    settings = telemetry_settings(environ)
    assert (settings.traces, settings.metrics) == (traces, metrics)


@pytest.mark.parametrize(
    ("name", "value", "captured"),
    [
        ("LLM_SCHEDULER_OTEL_CAPTURE_CONTENT", "true", True),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "True", True),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY", True),
        ("LLM_SCHEDULER_OTEL_CAPTURE_CONTENT", "false", False),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT", False),
    ],
)
def test_content_capture_is_opt_in(name: str, value: str, captured: bool) -> None:
    assert telemetry_settings({name: value}).capture_content is captured
    assert telemetry_settings({}).capture_content is False


def test_setup_does_nothing_without_an_endpoint() -> None:
    assert setup_telemetry(environ={"OTEL_SERVICE_NAME": "x"}) is False
    assert hooks.active is None


@pytest.mark.parametrize(
    ("environ", "ratio"),
    [
        ({}, 1.0),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, 0.0),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            0.25,
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"}, 1.0),
    ],
)
def test_sampler_variables_give_the_share_of_runs_exported(
    environ: dict[str, str], ratio: float
) -> None:
    assert telemetry_settings(environ).sample_ratio == ratio


def test_a_sampled_out_run_exports_no_span_in_any_process() -> None:
    from opentelemetry.sdk.trace import SpanProcessor

    from llm_scheduler.telemetry.exporter import OtelRunTelemetry, process_resource
    from llm_scheduler.v1 import run_pb2

    kept: list[str] = []

    class Keep(SpanProcessor):
        def on_end(self, span: object) -> None:
            kept.append(str(getattr(span, "name", "")))

    half = OtelRunTelemetry(Keep(), process_resource("a"), sample_ratio=0.5)
    for index in range(200):
        half.job_finished(run_pb2.JobRun(run_id=f"run-{index}", job_id="j"), "")
    half.force_flush()  # builds the spans of the records queued
    assert 60 < len(kept) < 140  # about half, decided by each run's trace id
    # A parent's decision wins over the ratio.
    kept.clear()
    none = OtelRunTelemetry(Keep(), process_resource("b"), sample_ratio=0.0)
    none.job_finished(run_pb2.JobRun(run_id="r", job_id="j"), ids.format_traceparent(7, 8))
    none.job_finished(run_pb2.JobRun(run_id="s", job_id="j"), "")
    none.force_flush()
    assert kept == ["invoke_workflow j"]
    half.shutdown()
    none.shutdown()

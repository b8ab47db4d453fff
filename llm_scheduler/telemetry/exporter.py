"""The OpenTelemetry receiver of finished run records: spans and metrics over OTLP/HTTP.

Needs the ``otel`` extra; `llm_scheduler.telemetry.setup_telemetry` builds one from the standard
environment (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ...) and installs it.
"""

from __future__ import annotations

import collections
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from llm_scheduler.telemetry import ids
from llm_scheduler.telemetry.metrics import ModelMetrics
from llm_scheduler.telemetry.spans import SpanFactory
from llm_scheduler.v1 import run_pb2

__all__ = ["OtelRunTelemetry", "process_resource"]

DEFAULT_SERVICE_NAME = "llm-scheduler"
# Records waiting to become spans that wake the builder before its next scheduled turn.
_BUILD_BATCH = 2048


def process_resource(instance_id: str = "") -> Resource:
    """This process's resource: the environment's over our defaults.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` win over ours: service
    ``llm-scheduler``, ``service.instance.id`` and ``process.pid``.
    """
    detected = dict(Resource.create({}).attributes)
    if str(detected.get("service.name", "")).startswith("unknown_service"):
        detected["service.name"] = DEFAULT_SERVICE_NAME
    if instance_id and "service.instance.id" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        detected["service.instance.id"] = instance_id  # over the SDK's random one
    detected.setdefault("service.instance.id", uuid.uuid4().hex)
    detected.setdefault("process.pid", os.getpid())
    return Resource(detected)


class OtelRunTelemetry:
    """Turns finished records into spans (to a span processor) and metrics (to an exporter).

    Implements `llm_scheduler.telemetry.hooks.RunTelemetry`. A run only queues its finished
    records (a reference each): spans and metrics are built from them in a background thread,
    every ``build_interval_seconds`` or once `_BUILD_BATCH` records wait, and at every
    `force_flush`, so a run's own path does not pay for them (a span costs ~40 µs to build and
    ~100 µs to encode and send: more than an engine step).

    Args:
        span_processor: Receives the finished spans (e.g. a `BatchSpanProcessor` over an OTLP
            exporter); shut down with this object.
        resource: The process's resource (`process_resource`).
        metric_exporter: Where the model-call metrics go (`metrics.ModelMetrics`); None for
            none. Shut down with this object.
        metric_interval_seconds: Seconds between metric exports (``OTEL_METRIC_EXPORT_INTERVAL``
            by default); 0 for only at flushes and at shutdown.
        capture_content: Whether step spans carry prompts and responses (opt-in: they may hold
            personal data).
        sample_ratio: The share of runs without a sampled-or-not parent whose spans are
            exported, decided by their trace id (so every process decides alike); a run with a
            parent follows its parent's decision.
        build_interval_seconds: How often queued records are turned into spans and metrics
            (``OTEL_BSP_SCHEDULE_DELAY``, 5 s, by default); 0 for only at flushes.
    """

    def __init__(
        self,
        span_processor: SpanProcessor,
        resource: Resource,
        *,
        metric_exporter: MetricExporter | None = None,
        metric_interval_seconds: float | None = None,
        capture_content: bool = False,
        sample_ratio: float = 1.0,
        build_interval_seconds: float | None = None,
    ) -> None:
        self.span_processor = span_processor
        # As the SDK's TraceIdRatioBased sampler: the trace id's low 64 bits under a bound.
        self._sample_bound = round(max(0.0, min(sample_ratio, 1.0)) * (2**64))
        self.spans = SpanFactory(resource, capture_content=capture_content)
        self.metrics = (
            ModelMetrics(
                metric_exporter,
                resource,
                self.spans.scope,
                interval_seconds=metric_interval_seconds,
            )
            if metric_exporter is not None
            else None
        )
        # The traceparent of each run in process, by run id, while it runs.
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()
        self._shut_down = False
        # Finished records waiting to be built into spans and metrics, as calls to make.
        self._pending: collections.deque[Callable[[], None]] = collections.deque()
        self._build_lock = threading.Lock()  # one builder at a time, calls in their order
        self._wake = threading.Event()
        if build_interval_seconds is None:
            build_interval_seconds = _schedule_delay_seconds()
        self._builder: threading.Thread | None = None
        if build_interval_seconds > 0:
            self._builder = threading.Thread(
                target=self._build_every,
                args=(build_interval_seconds,),
                name="llm-scheduler-telemetry",
                daemon=True,
            )
            self._builder.start()

    def _defer(self, call: Callable[[], None]) -> None:
        self._pending.append(call)
        if len(self._pending) >= _BUILD_BATCH:
            self._wake.set()

    def _build_pending(self) -> None:
        with self._build_lock:
            while self._pending:
                self._pending.popleft()()

    def _build_every(self, interval_seconds: float) -> None:
        while not self._shut_down:
            self._wake.wait(interval_seconds)
            self._wake.clear()
            self._build_pending()

    @classmethod
    def over_otlp_http(
        cls,
        *,
        capture_content: bool = False,
        traces: bool = True,
        metrics: bool = True,
        instance_id: str = "",
        sample_ratio: float = 1.0,
    ) -> OtelRunTelemetry:
        """Exports over OTLP/HTTP, configured by the standard environment variables.

        Spans go through a `BatchSpanProcessor` (``OTEL_BSP_*``), metrics are exported every
        ``OTEL_METRIC_EXPORT_INTERVAL``; endpoints, headers, timeouts and compression come from
        ``OTEL_EXPORTER_OTLP_*``.
        """
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Without traces, a processor that drops them (the base class does nothing).
        processor = BatchSpanProcessor(OTLPSpanExporter()) if traces else SpanProcessor()
        return cls(
            processor,
            process_resource(instance_id),
            metric_exporter=OTLPMetricExporter() if metrics else None,
            capture_content=capture_content,
            sample_ratio=sample_ratio,
        )

    def _sampled(self, trace: ids.TraceContext) -> bool:
        if not trace.sampled:
            return False
        if trace.parent_span_id:  # the parent sampled it
            return True
        return (trace.trace_id & 0xFFFFFFFFFFFFFFFF) < self._sample_bound

    def _emit(self, spans: Iterable[ReadableSpan]) -> None:
        for span in spans:
            self.span_processor.on_end(span)

    def run_started(self, run_id: str) -> str:
        """See `RunTelemetry.run_started`: the current span's, or the caller run's for a child."""
        traceparent = ids.current_traceparent()
        with self._lock:
            if not traceparent:
                # A sub-job's child run in process (`{run_id}~{task_run_id}~{step_index}`):
                # in its caller's trace, under the task holding the step.
                for caller, caller_traceparent in self._runs.items():
                    if run_id.startswith(caller + "~"):
                        task_run_id = run_id[len(caller) + 1 : run_id.rfind("~")]
                        traceparent = ids.child_traceparent(caller, caller_traceparent, task_run_id)
                        break
            self._runs[run_id] = traceparent
        return traceparent

    def step_finished(
        self,
        run_id: str,
        traceparent: str,
        task_run_id: str,
        attempt: int,
        record: run_pb2.StepRun,
    ) -> None:
        """See `RunTelemetry.step_finished`."""
        self._defer(lambda: self._step_finished(run_id, traceparent, task_run_id, attempt, record))

    def _step_finished(
        self,
        run_id: str,
        traceparent: str,
        task_run_id: str,
        attempt: int,
        record: run_pb2.StepRun,
    ) -> None:
        trace = ids.run_trace(run_id, traceparent)
        if self._sampled(trace):
            span_id = ids.step_span_id(run_id, task_run_id, record.index, attempt)
            parent = ids.task_span_id(run_id, task_run_id)
            self.span_processor.on_end(
                self.spans.step_span(record, trace, span_id, parent, run_id, task_run_id)
            )
        if self.metrics is not None:
            self.metrics.record_steps((record,))

    def task_finished(
        self, run_id: str, traceparent: str, record: run_pb2.TaskRun, *, with_steps: bool
    ) -> None:
        """See `RunTelemetry.task_finished`."""
        self._defer(lambda: self._task_finished(run_id, traceparent, record, with_steps))

    def _task_finished(
        self, run_id: str, traceparent: str, record: run_pb2.TaskRun, with_steps: bool
    ) -> None:
        trace = ids.run_trace(run_id, traceparent)
        task_run_id = record.task_run_id or record.task_id
        map_id, _, item = task_run_id.partition("~")  # a map's item: under its map's span
        parent = ids.task_span_id(run_id, map_id) if item else ids.job_span_id(run_id)
        if self._sampled(trace):
            self._emit(self._task_spans(record, trace, parent, run_id, with_steps))
        if with_steps and self.metrics is not None:
            self.metrics.record_steps(_all_steps(record))

    def _task_spans(
        self,
        record: run_pb2.TaskRun,
        trace: ids.TraceContext,
        parent: int,
        run_id: str,
        with_steps: bool,
    ) -> Iterable[ReadableSpan]:
        task_run_id = record.task_run_id or record.task_id
        span_id = ids.task_span_id(run_id, task_run_id)
        yield self.spans.task_span(record, trace, span_id, parent, run_id)
        if not with_steps:
            return
        attempt = record.attempt or 1
        for step in record.steps:
            step_id = ids.step_span_id(run_id, task_run_id, step.index, attempt)
            yield self.spans.step_span(step, trace, step_id, span_id, run_id, task_run_id)
        for item in record.items:
            yield from self._task_spans(item, trace, span_id, run_id, with_steps)

    def job_finished(
        self,
        record: run_pb2.JobRun,
        traceparent: str,
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        """See `RunTelemetry.job_finished`."""
        with self._lock:
            self._runs.pop(record.run_id, None)
        head = _job_head(record)  # the caller keeps the record, and may change it meanwhile
        self._defer(lambda: self._job_finished(head, traceparent, attributes))

    def _job_finished(
        self,
        record: run_pb2.JobRun,
        traceparent: str,
        attributes: Mapping[str, str | int | float | bool] | None,
    ) -> None:
        trace = ids.run_trace(record.run_id, traceparent)
        if self._sampled(trace):
            span_id = ids.job_span_id(record.run_id)
            self.span_processor.on_end(self.spans.job_span(record, trace, span_id, attributes))

    def export_run(self, record: run_pb2.JobRun, traceparent: str = "") -> None:
        """Exports a whole finished run record at once: the job, its tasks and their steps."""
        for task in record.tasks:
            if task.status not in (run_pb2.RUN_STATUS_UNSPECIFIED, run_pb2.RUN_STATUS_SKIPPED):
                self.task_finished(record.run_id, traceparent, task, with_steps=True)
        self.job_finished(record, traceparent)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Builds and exports what is queued; returns whether it all went within the timeout."""
        self._build_pending()
        flushed = self.span_processor.force_flush(timeout_millis)
        if self.metrics is not None:
            flushed = self.metrics.export(timeout_millis) and flushed
        return flushed

    def shutdown(self) -> None:
        """Flushes and stops the exporters (idempotent)."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._wake.set()
        if self._builder is not None:
            self._builder.join()
        self._build_pending()
        self.span_processor.shutdown()
        if self.metrics is not None:
            self.metrics.shutdown()


def _job_head(record: run_pb2.JobRun) -> run_pb2.JobRun:
    """What a job span reads of a job run's record (not its tasks), copied."""
    head = run_pb2.JobRun(
        run_id=record.run_id,
        job_id=record.job_id,
        status=record.status,
        cost_usd=record.cost_usd,
        parent_run_id=record.parent_run_id,
        caller_run_id=record.caller_run_id,
    )
    for name in ("error", "started_at", "finished_at", "usage"):
        if record.HasField(name):
            getattr(head, name).CopyFrom(getattr(record, name))
    return head


def _schedule_delay_seconds() -> float:
    """``OTEL_BSP_SCHEDULE_DELAY`` (milliseconds, 5,000 by default) in seconds."""
    try:
        return max(float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")), 0.0) / 1000
    except ValueError:
        return 5.0


def _all_steps(record: run_pb2.TaskRun) -> Iterable[run_pb2.StepRun]:
    yield from record.steps
    for item in record.items:
        yield from _all_steps(item)

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_scheduler.telemetry import hooks
from llm_scheduler.telemetry.exporter import OtelRunTelemetry, process_resource


class MetricsKept(MetricExporter):
    """Keeps what it is given to export."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


class Collected:
    """An `OtelRunTelemetry` over the SDK's in-memory span exporter, and metrics kept."""

    def __init__(self, capture_content: bool = False, instance_id: str = "test") -> None:
        self.spans = InMemorySpanExporter()
        self.metric_exporter = MetricsKept()
        self.telemetry = OtelRunTelemetry(
            SimpleSpanProcessor(self.spans),
            process_resource(instance_id),
            metric_exporter=self.metric_exporter,
            metric_interval_seconds=0,
            capture_content=capture_content,
        )

    def finished_spans(self) -> tuple[ReadableSpan, ...]:
        """The spans of the records reported so far (a flush builds those queued)."""
        assert self.telemetry.force_flush()
        return self.spans.get_finished_spans()

    def metrics_data(self) -> MetricsData:
        """What a flush exports now."""
        assert self.telemetry.force_flush()
        return self.metric_exporter.exported[-1]


def _installed(made: Collected) -> Iterator[Collected]:
    hooks.install(made.telemetry)
    try:
        yield made
    finally:
        hooks.uninstall()
        made.telemetry.shutdown()


@pytest.fixture
def collected() -> Iterator[Collected]:
    yield from _installed(Collected())


@pytest.fixture
def collected_with_content() -> Iterator[Collected]:
    yield from _installed(Collected(capture_content=True))

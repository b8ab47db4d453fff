from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llm_scheduler.telemetry import hooks
from llm_scheduler.telemetry.exporter import OtelRunTelemetry, process_resource


class Collected:
    """An installed `OtelRunTelemetry` over the SDK's in-memory exporter and metric reader."""

    def __init__(self, capture_content: bool = False, instance_id: str = "test") -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.telemetry = OtelRunTelemetry(
            SimpleSpanProcessor(self.spans),
            process_resource(instance_id),
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            capture_content=capture_content,
        )


@pytest.fixture
def collected() -> Iterator[Collected]:
    made = Collected()
    hooks.install(made.telemetry)
    try:
        yield made
    finally:
        hooks.uninstall()
        made.telemetry.shutdown()


@pytest.fixture
def collected_with_content() -> Iterator[Collected]:
    made = Collected(capture_content=True)
    hooks.install(made.telemetry)
    try:
        yield made
    finally:
        hooks.uninstall()
        made.telemetry.shutdown()

"""Model-call metrics: calls, tokens, cost and latency per model key (needs the ``otel`` extra).

The GenAI conventions' instruments where they exist (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``), and counters of ours for what they do not cover (calls, tokens
by type including cached input, cost).

Aggregated here, not through the SDK's instruments: a measurement through those costs tens of
microseconds (its attributes are cleaned, hashed and sampled for exemplars on every call), more
than the engine spends on a step. A step adds a few numbers to its series (its attributes' key
built once per series); the series become the SDK's metric data (cumulative) when exported,
every ``OTEL_METRIC_EXPORT_INTERVAL`` milliseconds (60 s by default), at a flush and at shutdown,
through a `MetricExporter` (OTLP/HTTP in production).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import threading
import time
from collections.abc import Iterable

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

from llm_scheduler.telemetry.spans import operation_name, provider_name
from llm_scheduler.v1 import run_pb2

__all__ = ["ModelMetrics"]

# The GenAI conventions' advisory bucket boundaries.
DURATION_BUCKETS: tuple[float, ...] = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
DURATION_BUCKETS += (5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(float(4**power) for power in range(14))  # 1, 4, 16, ... 67,108,864
_CUMULATIVE = AggregationTemporality.CUMULATIVE

Key = tuple[str, str, str, str, str]  # operation, provider, model, model key, error type


@dataclasses.dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int]
    count: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    @classmethod
    def over(cls, bounds: tuple[float, ...]) -> _Histogram:
        return cls(bounds, [0] * (len(bounds) + 1))

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def point(
        self, attributes: dict[str, AttributeValue], start: int, now: int
    ) -> HistogramDataPoint:
        return HistogramDataPoint(
            attributes=attributes,
            start_time_unix_nano=start,
            time_unix_nano=now,
            count=self.count,
            sum=self.total,
            bucket_counts=list(self.counts),
            explicit_bounds=list(self.bounds),
            min=self.low,
            max=self.high,
        )


@dataclasses.dataclass
class _Series:
    """What the calls of one model (and outcome) added up to."""

    attributes: dict[str, AttributeValue]
    duration: _Histogram = dataclasses.field(
        default_factory=lambda: _Histogram.over(DURATION_BUCKETS)
    )
    input_usage: _Histogram = dataclasses.field(
        default_factory=lambda: _Histogram.over(TOKEN_BUCKETS)
    )
    output_usage: _Histogram = dataclasses.field(
        default_factory=lambda: _Histogram.over(TOKEN_BUCKETS)
    )
    calls: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    cost_usd: float = 0.0


class ModelMetrics:
    """The model-call series of this process, exported periodically.

    Args:
        exporter: Where the metric data goes (e.g. `OTLPMetricExporter`).
        resource: The process's resource.
        scope: The instrumentation scope.
        interval_seconds: Seconds between exports; ``OTEL_METRIC_EXPORT_INTERVAL`` (ms) or 60 by
            default; 0 exports only at flushes and at shutdown.
    """

    def __init__(
        self,
        exporter: MetricExporter,
        resource: Resource,
        scope: InstrumentationScope,
        *,
        interval_seconds: float | None = None,
    ) -> None:
        self.exporter = exporter
        self.resource = resource
        self.scope = scope
        if interval_seconds is None:
            interval_seconds = float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") or 60000) / 1000
        self._series: dict[Key, _Series] = {}
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()
        self._start = time.time_ns()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if interval_seconds > 0:
            self._thread = threading.Thread(
                target=self._export_every,
                args=(interval_seconds,),
                name="llm_scheduler metrics",
                daemon=True,
            )
            self._thread.start()

    def record_steps(self, records: Iterable[run_pb2.StepRun]) -> None:
        """Adds the model calls among finished steps (reused steps made none)."""
        with self._lock:
            for record in records:
                if not record.model_key or record.reused_from_run_id:
                    continue
                failed = record.status == run_pb2.RUN_STATUS_FAILED
                key = (
                    operation_name(record),
                    record.provider,
                    record.provider_model,
                    record.model_key,
                    (record.error.type or "_OTHER") if failed else "",
                )
                series = self._series.get(key)
                if series is None:
                    series = self._series[key] = _Series(_attributes(key))
                series.calls += 1
                series.duration.add(record.latency_seconds)
                if record.cache_hit:
                    series.cache_hits += 1
                    continue  # no tokens, no cost
                usage = record.usage
                if not failed:
                    series.input_usage.add(usage.input_tokens)
                    series.output_usage.add(usage.output_tokens)
                series.input_tokens += usage.input_tokens
                series.output_tokens += usage.output_tokens
                series.cached_input_tokens += usage.cached_input_tokens
                series.cache_write_input_tokens += usage.cache_write_input_tokens
                series.cost_usd += record.cost_usd

    def collect(self) -> MetricsData:
        """The series as the SDK's metric data (cumulative since this object was made)."""
        now = time.time_ns()
        start = self._start
        duration: list[HistogramDataPoint] = []
        usage: list[HistogramDataPoint] = []
        calls: list[NumberDataPoint] = []
        tokens: list[NumberDataPoint] = []
        cost: list[NumberDataPoint] = []

        def number(attributes: dict[str, AttributeValue], value: float) -> NumberDataPoint:
            return NumberDataPoint(attributes, start, now, value)

        with self._lock:
            for series in self._series.values():
                attributes = series.attributes
                duration.append(series.duration.point(attributes, start, now))
                for kind, histogram in (
                    ("input", series.input_usage),
                    ("output", series.output_usage),
                ):
                    if histogram.count:
                        usage.append(
                            histogram.point({**attributes, "gen_ai.token.type": kind}, start, now)
                        )
                for hit, count in (
                    (False, series.calls - series.cache_hits),
                    (True, series.cache_hits),
                ):
                    if count:
                        calls.append(number({**attributes, "llm_scheduler.cache_hit": hit}, count))
                for kind, count in (
                    ("input", series.input_tokens),
                    ("output", series.output_tokens),
                    ("cached_input", series.cached_input_tokens),
                    ("cache_write_input", series.cache_write_input_tokens),
                ):
                    tokens.append(number({**attributes, "gen_ai.token.type": kind}, count))
                cost.append(number(attributes, series.cost_usd))
        metrics = [
            Metric(
                "gen_ai.client.operation.duration",
                "Duration of model calls (retries included).",
                "s",
                Histogram(duration, _CUMULATIVE),
            ),
            Metric(
                "gen_ai.client.token.usage",
                "Input and output tokens per model call.",
                "{token}",
                Histogram(usage, _CUMULATIVE),
            ),
            Metric(
                "llm_scheduler.model.calls",
                "Model steps run.",
                "{call}",
                Sum(calls, _CUMULATIVE, True),
            ),
            Metric(
                "llm_scheduler.model.tokens",
                "Tokens by type: input, output, and cached_input and cache_write_input (parts of"
                " input).",
                "{token}",
                Sum(tokens, _CUMULATIVE, True),
            ),
            Metric(
                "llm_scheduler.model.cost",
                "Cost from the registry's prices.",
                "USD",
                Sum(cost, _CUMULATIVE, True),
            ),
        ]
        scope = ScopeMetrics(self.scope, [m for m in metrics if m.data.data_points], "")
        return MetricsData([ResourceMetrics(self.resource, [scope], "")])

    def export(self, timeout_millis: float = 10_000) -> bool:
        """Exports the series now (nothing when no call was recorded)."""
        with self._lock:
            if not self._series:
                return True
        with self._export_lock:
            data = self.collect()
            return self.exporter.export(data, timeout_millis=timeout_millis) == (
                MetricExportResult.SUCCESS
            )

    def _export_every(self, interval_seconds: float) -> None:
        while not self._stop.wait(interval_seconds):
            try:
                self.export()
            except Exception:  # the exporter logs its own failures; keep the thread alive
                continue

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Exports a last time and shuts the exporter down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_millis / 1000)
        try:
            self.export(timeout_millis)
        finally:
            self.exporter.shutdown(timeout_millis=timeout_millis)


def _attributes(key: Key) -> dict[str, AttributeValue]:
    operation, provider, model, model_key, error_type = key
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider_name(provider),
        "gen_ai.request.model": model,
        "llm_scheduler.model_key": model_key,
    }
    if error_type:
        attributes["error.type"] = error_type
    return attributes

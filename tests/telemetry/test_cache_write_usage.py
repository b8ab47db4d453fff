"""Prompt-cache writes in step spans and token metrics."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, Sum
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from llm_scheduler.telemetry.metrics import ModelMetrics
from llm_scheduler.telemetry.spans import step_attributes
from llm_scheduler.v1 import run_pb2

WRITES = "gen_ai.usage.cache_creation.input_tokens"


def _step(writes: int) -> run_pb2.StepRun:
    record = run_pb2.StepRun(
        model_key="CLAUDE_SONNET_4_5",
        provider="anthropic",
        provider_model="claude-sonnet-4-5",
        status=run_pb2.RUN_STATUS_SUCCEEDED,
        attempts=1,
    )
    record.usage.input_tokens, record.usage.output_tokens = 1000, 100
    record.usage.cached_input_tokens, record.usage.cache_write_input_tokens = 300, writes
    return record


def test_the_step_span_counts_cache_writes_when_there_are_any() -> None:
    attributes = step_attributes(_step(200), "r", "t")
    assert attributes[WRITES] == 200
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 300
    assert WRITES not in step_attributes(_step(0), "r", "t")


def test_token_metrics_count_cache_writes_as_a_token_type() -> None:
    metrics = ModelMetrics(
        ConsoleMetricExporter(), Resource.create({}), InstrumentationScope("t"), interval_seconds=0
    )
    metrics.record_steps([_step(200), _step(50)])
    data = metrics.collect()
    tokens = [
        metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "llm_scheduler.model.tokens"
    ]
    assert len(tokens) == 1 and isinstance(tokens[0].data, Sum)
    by_type = {
        point.attributes["gen_ai.token.type"]: point.value
        for point in tokens[0].data.data_points
        if point.attributes is not None
    }
    assert by_type == {
        "input": 2000,
        "output": 200,
        "cached_input": 600,
        "cache_write_input": 250,
    }

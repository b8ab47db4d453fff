"""Model-call metrics: calls, tokens, cost and latency per model key (needs the ``otel`` extra).

The GenAI conventions' instruments where they exist (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``), and counters of ours for what they do not cover (calls, tokens
by type including cached input, cost). Recorded from finished step records, a task's at a time.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from opentelemetry.metrics import Meter
from opentelemetry.util.types import AttributeValue

from llm_scheduler.telemetry.spans import operation_name, provider_name
from llm_scheduler.v1 import run_pb2

__all__ = ["ModelMetrics"]

# The GenAI conventions' advisory bucket boundaries.
_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48]
_DURATION_BUCKETS += [40.96, 81.92]
_TOKEN_BUCKETS = [float(4**power) for power in range(14)]  # 1, 4, 16, ... 67,108,864

Key = tuple[tuple[str, AttributeValue], ...]


class ModelMetrics:
    """The instruments, created once per meter.

    Args:
        meter: Where they are created.
    """

    def __init__(self, meter: Meter) -> None:
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of model calls (retries included).",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Input and output tokens per model call.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.calls = meter.create_counter(
            "llm_scheduler.model.calls", unit="{call}", description="Model steps run."
        )
        self.tokens = meter.create_counter(
            "llm_scheduler.model.tokens",
            unit="{token}",
            description="Tokens by type: input, output and cached_input (a part of input).",
        )
        self.cost = meter.create_counter(
            "llm_scheduler.model.cost", unit="USD", description="Cost from the registry's prices."
        )

    def record_steps(self, records: Iterable[run_pb2.StepRun]) -> None:
        """Records the model calls among finished steps (reused steps made none)."""
        calls: collections.Counter[Key] = collections.Counter()
        tokens: collections.Counter[Key] = collections.Counter()
        cost: collections.defaultdict[Key, float] = collections.defaultdict(float)
        for record in records:
            if not record.model_key or record.reused_from_run_id:
                continue
            attributes: dict[str, AttributeValue] = {
                "gen_ai.operation.name": operation_name(record),
                "gen_ai.provider.name": provider_name(record.provider),
                "gen_ai.request.model": record.provider_model,
                "llm_scheduler.model_key": record.model_key,
            }
            if record.status == run_pb2.RUN_STATUS_FAILED:
                attributes["error.type"] = record.error.type or "_OTHER"
            self.duration.record(record.latency_seconds, attributes)
            usage = record.usage
            if record.status == run_pb2.RUN_STATUS_SUCCEEDED and not record.cache_hit:
                self.token_usage.record(
                    usage.input_tokens, {**attributes, "gen_ai.token.type": "input"}
                )
                self.token_usage.record(
                    usage.output_tokens, {**attributes, "gen_ai.token.type": "output"}
                )
            key = tuple(attributes.items())
            calls[(*key, ("llm_scheduler.cache_hit", record.cache_hit))] += 1
            if not record.cache_hit:
                tokens[(*key, ("gen_ai.token.type", "input"))] += usage.input_tokens
                tokens[(*key, ("gen_ai.token.type", "output"))] += usage.output_tokens
                tokens[(*key, ("gen_ai.token.type", "cached_input"))] += usage.cached_input_tokens
                cost[key] += record.cost_usd
        for key, count in calls.items():
            self.calls.add(count, dict(key))
        for key, count in tokens.items():
            if count:
                self.tokens.add(count, dict(key))
        for key, dollars in cost.items():
            self.cost.add(dollars, dict(key))

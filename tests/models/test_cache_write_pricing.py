"""Prompt-cache writes: priced at the entry's cache-write price, recorded apart in a run."""

from __future__ import annotations

import asyncio
import json
import pathlib

import pytest

from llm_scheduler import ModelClient, ModelRegistry, RunContext, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.models.registry import BUILTIN_MODELS, ModelSpec
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS


def test_cost_prices_reads_writes_and_the_rest_of_the_input_apart() -> None:
    spec = ModelSpec(
        "K", "anthropic", "m", input_price=3.0, output_price=15.0, cached_input_price=0.30,
        cache_write_price=3.75,
    )  # fmt: skip
    # 500 * 3.00 + 300 * 0.30 + 200 * 3.75 + 100 * 15.00 = 1500 + 90 + 750 + 1500 = 3,840 µ$
    assert spec.cost(1000, 100, 300, cache_write_input_tokens=200) == pytest.approx(0.00384)
    # Without writes, as before: 700 * 3.00 + 300 * 0.30 + 100 * 15.00 = 3,690 µ$.
    assert spec.cost(1000, 100, 300) == pytest.approx(0.00369)


def test_a_cache_write_price_of_0_means_the_input_price() -> None:
    spec = ModelSpec("K", "openai", "m", input_price=2.0, output_price=8.0)
    assert spec.cost(1000, 0, 0, cache_write_input_tokens=400) == pytest.approx(0.002)
    assert spec.priced and not ModelSpec("K", "openai", "m").priced
    assert ModelSpec("K", "anthropic", "m", cache_write_price=1.0).priced


def test_builtin_anthropic_models_bill_cache_writes_at_125_percent_of_input() -> None:
    for spec in BUILTIN_MODELS:
        if spec.provider == "anthropic":
            assert spec.cache_write_price == pytest.approx(1.25 * spec.input_price), spec.key
        else:
            assert spec.cache_write_price == 0, spec.key
    sonnet = ModelRegistry().resolve("CLAUDE_SONNET_4_5")
    assert (sonnet.input_price, sonnet.cache_write_price) == (3.0, 3.75)


def _models_file(path: pathlib.Path, server: FakeProviderServer) -> pathlib.Path:
    entry = {
        "key": "CLAUDE_FAKE",
        "provider": "anthropic",
        "model": "claude-fake",
        "base_url": server.anthropic_base_url,
        "input_price_per_million_tokens": 3.00,
        "cached_input_price_per_million_tokens": 0.30,
        "cache_write_price_per_million_tokens": 3.75,
        "output_price_per_million_tokens": 15.00,
    }
    path.write_text(json.dumps({"models": [entry]}))
    return path


def test_a_models_file_sets_the_cache_write_price(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    registry = ModelRegistry.with_models_file(_models_file(tmp_path / "m.json", fake_server))
    assert registry.resolve("CLAUDE_FAKE").cache_write_price == 3.75


def test_a_run_records_cache_writes_and_prices_them(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    registry = ModelRegistry.with_models_file(_models_file(tmp_path / "m.json", fake_server))
    fake_server.responder = lambda provider, body: " ".join(["reply"] * 100)
    fake_server.cached_input_tokens = 300
    fake_server.cache_write_input_tokens = 200
    step = {"model_query_config": {"model_key": "CLAUDE_FAKE", "user_prompt": "w " * 1000}}
    text = json.dumps({"job_id": "cw", "tasks": [{"task_id": "t", "steps": [step, step]}]})
    job = loads(text, config_pb2.JobConfig, ConfigFormat.JSON)
    client = ModelClient(registry, offline=False, credentials=FAKE_CREDENTIALS)

    async def body() -> run_pb2.JobRun:
        try:
            return await run_job(job, RunContext(models=client))
        finally:
            await client.aclose()

    record = asyncio.run(body())

    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    first = record.tasks[0].steps[0]
    assert (first.usage.input_tokens, first.usage.cached_input_tokens) == (1000, 300)
    assert (first.usage.cache_write_input_tokens, first.usage.output_tokens) == (200, 100)
    # 500 * 3.00 + 300 * 0.30 + 200 * 3.75 + 100 * 15.00 = 3,840 µ$ a call.
    assert first.cost_usd == pytest.approx(0.00384, abs=1e-12)
    assert record.tasks[0].usage.cache_write_input_tokens == 400
    assert record.usage.cache_write_input_tokens == 400
    assert record.cost_usd == pytest.approx(2 * 0.00384, abs=1e-12)

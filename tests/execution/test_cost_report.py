"""Cost reports over the runs in a store, checked against costs computed by hand."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from llm_scheduler import ModelRegistry, UserError, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cost_report import (
    CostRow,
    cost_report,
    parse_group_by,
    store_cost_report,
)
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS, context_for, run_closing

# Every call: a user prompt of 1,000 words (the fake server counts a token per word), of which
# the server reports 400 as read from the provider's prompt cache, and a reply of 200 words.
PROMPT = " ".join(["word"] * 1000)
# Prices per million tokens: input, cached input, output.
PRICES = {
    "M_OPENAI": ("openai", 0.50, 0.05, 2.00),
    "M_GEMINI": ("google", 0.30, 0.03, 2.50),
    "M_ANTHROPIC": ("anthropic", 3.00, 0.30, 15.00),
}
# One call of each, by hand: 600 uncached input + 400 cached input + 200 output tokens.
OPENAI_CALL = 0.000720  # 600 * 0.50 + 400 * 0.05 + 200 * 2.00 = 300 + 20 + 400 = 720 µ$
GEMINI_CALL = 0.000692  # 600 * 0.30 + 400 * 0.03 + 200 * 2.50 = 180 + 12 + 500 = 692 µ$
ANTHROPIC_CALL = 0.004920  # 600 * 3.00 + 400 * 0.30 + 200 * 15.00 = 1800 + 120 + 3000 µ$
# Billing the 400 cached tokens at the full input price would give 900 µ$ for OpenAI instead.

DAY_1 = "2025-01-14"
DAY_2 = "2025-01-15"


def models_file(path: pathlib.Path, server: FakeProviderServer, scale: float = 1.0) -> pathlib.Path:
    bases = {
        "openai": server.openai_base_url,
        "google": server.gemini_base_url,
        "anthropic": server.anthropic_base_url,
    }
    entries = [
        {
            "key": key,
            "provider": provider,
            "model": f"{key.lower()}-model",
            "base_url": bases[provider],
            "input_price_per_million_tokens": price_in * scale,
            "cached_input_price_per_million_tokens": price_cached * scale,
            "output_price_per_million_tokens": price_out * scale,
        }
        for key, (provider, price_in, price_cached, price_out) in PRICES.items()
    ]
    path.write_text(json.dumps({"models": entries}))
    return path


def _query(model_key: str) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": model_key, "user_prompt": PROMPT},
        "output_config": {"payload": {model_key.lower(): "%response%"}},
    }


def _job(config: dict[str, Any]) -> config_pb2.JobConfig:
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


ALPHA = {
    "job_id": "alpha",
    "tasks": [
        {
            "task_id": "write",
            "steps": [_query("M_OPENAI"), _query("M_GEMINI")],
            "next_task": "check",
        },
        {"task_id": "check", "steps": [_query("M_ANTHROPIC")]},
    ],
}
BETA = {"job_id": "beta", "tasks": [{"task_id": "solo", "steps": [_query("M_OPENAI")]}]}


def _set_day(store: Store, run_id: str, task_id: str, day: str) -> None:
    for path, _ in store.list(docs.step_runs_collection(run_id, task_id)):
        store.update_if(path, lambda doc: {"started_at": f"{day}T10:00:00Z"})


def build_store(store: Store, registry: ModelRegistry, server: FakeProviderServer) -> list[str]:
    """alpha (3 calls, 3 models), then beta twice with the response cache (1 call, 1 hit)."""
    server.responder = lambda provider, body: " ".join(["reply"] * 200)
    server.cached_input_tokens = 400
    run_ids = []
    for job, policy in ((ALPHA, ""), (BETA, "CACHE_POLICY_USE"), (BETA, "CACHE_POLICY_USE")):
        run_ids.append(submit_job(store, _job(job), default_cache_policy=policy))
        context = context_for(registry)
        run_closing(context, Dispatcher(store, context, workers=2).run(until_idle=True))
    alpha, beta_1, beta_2 = run_ids
    assert server.count() == 4  # the second beta was answered from the cache
    _set_day(store, alpha, "write", DAY_1)
    _set_day(store, alpha, "check", DAY_2)
    _set_day(store, beta_1, "solo", DAY_2)
    _set_day(store, beta_2, "solo", DAY_2)
    return run_ids


def row(group: dict[str, str], calls: int, cost: float, hits: int = 0) -> dict[str, Any]:
    return {
        **group,
        "calls": calls,
        "cache_hits": hits,
        "reused": 0,
        "input_tokens": 1000 * calls,
        "cached_input_tokens": 400 * calls,
        "cache_write_input_tokens": 0,
        "output_tokens": 200 * calls,
        "cost_usd": pytest.approx(cost, abs=1e-12),
        "recorded_cost_usd": pytest.approx(cost, abs=1e-12),
    }


@pytest.fixture
def registry(tmp_path: pathlib.Path, fake_server: FakeProviderServer) -> ModelRegistry:
    return ModelRegistry.with_models_file(models_file(tmp_path / "models.json", fake_server))


def test_the_report_matches_costs_computed_by_hand_on_each_backend(
    store_url: str, registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    with open_store(store_url) as store:
        run_ids = build_store(store, registry, fake_server)
        full = store_cost_report(store, registry)
        by_model = store_cost_report(store, registry, group_by=["model"])
        by_day = store_cost_report(store, registry, group_by=["day"])
        day_2 = store_cost_report(store, registry, group_by="job,model", since=_date(DAY_2))
        beta = store_cost_report(store, registry, group_by="task", job_id="beta")
        one = store_cost_report(store, registry, group_by="", run_id=run_ids[0])
        with pytest.raises(UserError, match="no job run 'nope'"):
            store_cost_report(store, registry, run_id="nope")
    assert full.runs == 3
    assert [r.to_json() for r in full.rows] == [
        row({"job": "alpha", "task": "check", "model": "M_ANTHROPIC", "day": DAY_2}, 1, 0.00492),
        row({"job": "alpha", "task": "write", "model": "M_GEMINI", "day": DAY_1}, 1, 0.000692),
        row({"job": "alpha", "task": "write", "model": "M_OPENAI", "day": DAY_1}, 1, 0.00072),
        row({"job": "beta", "task": "solo", "model": "M_OPENAI", "day": DAY_2}, 1, 0.00072, 1),
    ]
    # 4,920 + 692 + 720 + 720 µ$.
    assert full.total.to_json() == row({}, 4, 0.007052, 1)
    assert [r.to_json() for r in by_model.rows] == [
        row({"model": "M_ANTHROPIC"}, 1, ANTHROPIC_CALL),
        row({"model": "M_GEMINI"}, 1, GEMINI_CALL),
        row({"model": "M_OPENAI"}, 2, 2 * OPENAI_CALL, 1),
    ]
    assert [r.to_json() for r in by_day.rows] == [
        row({"day": DAY_1}, 2, 0.001412),  # 692 + 720 µ$
        row({"day": DAY_2}, 2, 0.00564, 1),  # 4,920 + 720 µ$
    ]
    assert [r.to_json() for r in day_2.rows] == [
        row({"job": "alpha", "model": "M_ANTHROPIC"}, 1, ANTHROPIC_CALL),
        row({"job": "beta", "model": "M_OPENAI"}, 1, OPENAI_CALL, 1),
    ]
    assert [r.to_json() for r in beta.rows] == [row({"task": "solo"}, 1, OPENAI_CALL, 1)]
    assert beta.runs == 2
    assert one.rows == [one.total] and one.total.to_json() == row({}, 3, 0.006332)


def test_changed_prices_show_beside_the_recorded_cost(
    tmp_path: pathlib.Path, registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        build_store(store, registry, fake_server)
        doubled = ModelRegistry.with_models_file(
            models_file(tmp_path / "doubled.json", fake_server, scale=2.0)
        )
        report = store_cost_report(store, doubled, group_by="")
    assert report.total.recorded_cost_usd == pytest.approx(0.007052, abs=1e-12)
    assert report.total.cost_usd == pytest.approx(2 * 0.007052, abs=1e-12)


def test_records_in_memory_count_children_skip_function_reused_and_refused_steps() -> None:
    registry = ModelRegistry()  # GPT_4O_MINI: $0.15 input, $0.075 cached, $0.60 output
    call = run_pb2.StepRun(model_key="GPT_4O_MINI", provider="openai", attempts=1, cost_usd=1.0)
    call.usage.input_tokens, call.usage.cached_input_tokens, call.usage.output_tokens = (
        1000,
        400,
        200,
    )
    call.started_at.FromJsonString("2025-03-01T23:59:59Z")
    child = run_pb2.JobRun(job_id="child")
    child.tasks.add(task_id="inner").steps.append(call)
    parent = run_pb2.JobRun(job_id="parent")
    task = parent.tasks.add(task_id="outer")
    task.steps.add(function_name="f", attempts=1)  # a function step
    task.steps.add(model_key="GPT_4O_MINI", child_run_id="c", cost_usd=1.0)  # a sub-job step
    task.steps.add(model_key="GPT_4O_MINI", reused_from_run_id="old")
    task.steps.add(model_key="GPT_4O_MINI", attempts=0)  # refused by a budget
    offline = task.steps.add(model_key="GPT_4O_MINI", provider="offline", attempts=1)
    offline.usage.input_tokens = 50
    parent.children.append(child)
    report = cost_report([parent], registry, group_by=["job", "day"])
    # 600 * 0.15 + 400 * 0.075 + 200 * 0.60 = 90 + 30 + 120 = 240 µ$
    assert [r.to_json() for r in report.rows] == [
        {
            "job": "child",
            "day": "2025-03-01",
            "calls": 1,
            "cache_hits": 0,
            "reused": 0,
            "input_tokens": 1000,
            "cached_input_tokens": 400,
            "cache_write_input_tokens": 0,
            "output_tokens": 200,
            "cost_usd": pytest.approx(0.00024, abs=1e-12),
            "recorded_cost_usd": 1.0,
        },
        {
            "job": "parent",
            "day": "unknown",
            "calls": 1,
            "cache_hits": 0,
            "reused": 1,
            "input_tokens": 50,
            "cached_input_tokens": 0,
            "cache_write_input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,  # the offline model answered: free
            "recorded_cost_usd": 0.0,
        },
    ]
    assert report.runs == 2


def test_unknown_and_unpriced_models_are_listed() -> None:
    unknown = run_pb2.StepRun(model_key="NOT_A_KEY", attempts=1)
    unpriced = run_pb2.StepRun(model_key="openai:gpt-x", provider="openai", attempts=1)
    run = run_pb2.JobRun(job_id="j")
    run.tasks.add(task_id="t").steps.extend([unknown, unpriced])
    report = cost_report([run], ModelRegistry())
    assert report.unpriced_models == ["NOT_A_KEY", "openai:gpt-x"]


def test_groupings_and_days_are_checked() -> None:
    assert parse_group_by("model, day") == ("model", "day")
    assert parse_group_by("") == ()
    with pytest.raises(UserError, match="cannot group costs by 'week'"):
        parse_group_by("model,week")
    with pytest.raises(UserError, match="named twice"):
        parse_group_by("day,day")
    with pytest.raises(UserError, match="is after the last day"):
        cost_report([], ModelRegistry(), since=_date(DAY_2), until=_date(DAY_1))
    assert cost_report([], ModelRegistry()).total == CostRow()


def test_the_cost_report_tool_end_to_end(
    tmp_path: pathlib.Path, registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    url = f"sqlite:///{tmp_path / 'tool.db'}"
    with open_store(url) as store:
        build_store(store, registry, fake_server)
    models = str(models_file(tmp_path / "models.json", fake_server))
    env = {**FAKE_CREDENTIALS, "LLM_SCHEDULER_STORE": url}
    result = run_tool(
        "cost_report", f"--models_file={models}", "--group_by=model", "--json", env=env
    )
    assert result.code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["rows"] == [
        row({"model": "M_ANTHROPIC"}, 1, ANTHROPIC_CALL),
        row({"model": "M_GEMINI"}, 1, GEMINI_CALL),
        row({"model": "M_OPENAI"}, 2, 2 * OPENAI_CALL, 1),
    ]
    assert printed["total"]["cost_usd"] == pytest.approx(0.007052, abs=1e-12)
    table = run_tool("cost_report", f"--models_file={models}", f"--since={DAY_2}", env=env)
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        *("job", "task", "model", "day", "calls", "cache", "hits", "reused", "input"),
        *("cached", "input", "cache", "write", "output", "cost", "$", "recorded", "$"),
    ]
    assert lines[1].split() == [
        *("alpha", "check", "M_ANTHROPIC", DAY_2, "1", "0", "0", "1000", "400", "0", "200"),
        *("0.004920", "0.004920"),
    ]
    assert lines[2].split()[:4] == ["beta", "solo", "M_OPENAI", DAY_2]
    assert lines[-2].split()[:2] == ["total", "2"]
    assert lines[-1] == f"(3 runs, days {DAY_2} to … (UTC))"
    bad = run_tool("cost_report", "--group_by=week", env=env)
    assert bad.code == 2 and "cannot group costs by 'week'" in bad.stderr


def _date(text: str) -> Any:
    import datetime

    return datetime.date.fromisoformat(text)


def test_a_run_read_back_from_the_store_is_reported_as_in_memory(
    tmp_path: pathlib.Path, registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_ids = build_store(store, registry, fake_server)
        records = [read_job_run(store, run_id) for run_id in run_ids]
        from_store = store_cost_report(store, registry)
    from_records = cost_report([r for r in records if r is not None], registry)
    assert [r.to_json() for r in from_records.rows] == [r.to_json() for r in from_store.rows]


def test_anthropic_cache_writes_are_priced_at_the_cache_write_price(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    entry = {
        "key": "M_ANTHROPIC",
        "provider": "anthropic",
        "model": "m-anthropic-model",
        "base_url": fake_server.anthropic_base_url,
        "input_price_per_million_tokens": 3.00,
        "cached_input_price_per_million_tokens": 0.30,
        "cache_write_price_per_million_tokens": 3.75,
        "output_price_per_million_tokens": 15.00,
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [entry]}))
    registry = ModelRegistry.with_models_file(path)
    # 1,000 input tokens: 300 read from the prompt cache, 200 written to it; 100 out.
    fake_server.responder = lambda provider, body: " ".join(["reply"] * 100)
    fake_server.cached_input_tokens = 300
    fake_server.cache_write_input_tokens = 200
    job = {"job_id": "cw", "tasks": [{"task_id": "solo", "steps": [_query("M_ANTHROPIC")]}]}
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = submit_job(store, _job(job))
        context = context_for(registry)
        run_closing(context, Dispatcher(store, context, workers=1).run(until_idle=True))
        record = read_job_run(store, run_id)
        report = store_cost_report(store, registry, group_by="")
    assert record is not None
    step = record.tasks[0].steps[0]
    assert (step.usage.input_tokens, step.usage.cached_input_tokens) == (1000, 300)
    assert (step.usage.cache_write_input_tokens, step.usage.output_tokens) == (200, 100)
    assert record.usage.cache_write_input_tokens == 200
    # 500 * 3.00 + 300 * 0.30 + 200 * 3.75 + 100 * 15.00 = 1500 + 90 + 750 + 1500 = 3,840 µ$
    # (the 200 writes at the plain input price would give 3,690 µ$).
    assert step.cost_usd == pytest.approx(0.00384, abs=1e-12)
    assert record.cost_usd == pytest.approx(0.00384, abs=1e-12)
    assert report.total.to_json() == {
        "calls": 1,
        "cache_hits": 0,
        "reused": 0,
        "input_tokens": 1000,
        "cached_input_tokens": 300,
        "cache_write_input_tokens": 200,
        "output_tokens": 100,
        "cost_usd": pytest.approx(0.00384, abs=1e-12),
        "recorded_cost_usd": pytest.approx(0.00384, abs=1e-12),
    }

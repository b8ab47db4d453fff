"""Per-run budgets in process: the estimate rule, and calls refused before they are made."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import pytest

from llm_scheduler import ModelRegistry, RunContext, UserError, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.engine.budget import (
    PROBE_WAIT_SECONDS,
    BudgetLedger,
    BudgetState,
    PlannedCall,
    check_budget,
    plan_embedding,
    plan_query,
)
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.errors import BudgetExceededError
from llm_scheduler.models.base import EmbeddingRequest, ModelRequest, ResponseFormatSpec
from llm_scheduler.models.registry import ModelSpec
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for, run_closing

BUDGET = 0.001
# Every call of the jobs below: the user prompt "Say hello now" (3 words, 13 bytes; the fake
# server counts a token per word), max_tokens 100, and a reply of 100 words.
PROMPT = "Say hello now"
REPLY_WORDS = 100
# Recorded cost of one call: 3 input tokens at $1/M + 100 output tokens at $2/M = $0.000203.
CALL_COST = 0.000203
# Its estimate before the model answered: ceil(13 bytes / 3) = 5 input tokens at $1/M + 100
# (max_tokens) at $2/M = $0.000205; after: 3 input tokens (3 per 13 bytes) + 100, $0.000203.
FIRST_ESTIMATE = 0.000205


def budget_models_file(path: pathlib.Path, server: FakeProviderServer) -> pathlib.Path:
    """A models file with BUDGET_MODEL at $1/M input, $2/M output, on the fake server."""
    entry = {
        "key": "BUDGET_MODEL",
        "provider": "openai",
        "model": "gpt-budget",
        "base_url": server.openai_base_url,
        "input_price_per_million_tokens": 1.0,
        "output_price_per_million_tokens": 2.0,
        "cached_input_price_per_million_tokens": 0.5,
        "max_attempts": 1,
    }
    path.write_text(json.dumps({"models": [entry]}))
    return path


def reply_words(provider: str, body: dict[str, Any]) -> str:
    return " ".join(["word"] * REPLY_WORDS)


def _step(max_tokens: int | None = 100) -> dict[str, Any]:
    query: dict[str, Any] = {"model_key": "BUDGET_MODEL", "user_prompt": PROMPT}
    if max_tokens is not None:
        query["parameters"] = {"max_tokens": max_tokens}
    return {"model_query_config": query, "output_config": {"payload": {"out": "%response%"}}}


def chain_job(length: int = 6, max_tokens: int | None = 100) -> config_pb2.JobConfig:
    """t0 -> t1 -> ... : one call per task."""
    tasks: list[dict[str, Any]] = []
    for i in range(length):
        task: dict[str, Any] = {"task_id": f"t{i}", "steps": [_step(max_tokens)]}
        if i + 1 < length:
            task["next_task"] = f"t{i + 1}"
        tasks.append(task)
    return loads(
        json.dumps({"job_id": "chain", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )


def fan_out_job(width: int = 5) -> config_pb2.JobConfig:
    """root -> b0 ... b{width-1}, in parallel: one call per task."""
    branches = [f"b{i}" for i in range(width)]
    tasks = [{"task_id": "root", "steps": [_step()], "next_tasks": branches}]
    tasks += [{"task_id": b, "steps": [_step()]} for b in branches]
    return loads(
        json.dumps({"job_id": "fan", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )


def parallel_job(width: int = 5) -> config_pb2.JobConfig:
    """A function step, then ``width`` model calls without max_tokens, in parallel."""
    branches = [f"b{i}" for i in range(width)]
    root = {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "length", "request": {"value": "go"}},
    }
    tasks: list[dict[str, Any]] = [{"task_id": "root", "steps": [root], "next_tasks": branches}]
    tasks += [{"task_id": b, "steps": [_step(max_tokens=None)]} for b in branches]
    return loads(
        json.dumps({"job_id": "parallel", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )


@pytest.fixture
def budget_registry(tmp_path: pathlib.Path, fake_server: FakeProviderServer) -> ModelRegistry:
    fake_server.responder = reply_words
    return ModelRegistry.with_models_file(budget_models_file(tmp_path / "m.json", fake_server))


def run(context: RunContext, job: config_pb2.JobConfig, **kwargs: Any) -> run_pb2.JobRun:
    return run_closing(context, run_job(job, context, **kwargs))


def step_of(task: run_pb2.TaskRun) -> run_pb2.StepRun:
    assert len(task.steps) == 1
    return task.steps[0]


# -- the rule -------------------------------------------------------------------------------


def test_a_query_is_estimated_from_its_bytes_and_max_tokens() -> None:
    spec = ModelSpec("K", "openai", "m", input_price=1.0, output_price=2.0)
    request = ModelRequest("m", "sys", "héllo", {"max_tokens": 50})
    call = plan_query("K", spec, request)
    # "sys" (3 bytes) + "héllo" (6 bytes): 9 bytes, 3 tokens at one per 3 bytes.
    assert call.request_bytes == 9 and call.max_output_tokens == 50
    estimate = BudgetState(budget_usd=1.0).reserve(call)
    assert (estimate.input_basis, estimate.input_tokens) == ("default", 3)
    assert estimate.output_basis == "max_tokens"
    assert estimate.cost_usd == pytest.approx((3 * 1.0 + 50 * 2.0) / 1e6)


def test_a_json_schema_counts_in_the_input_estimate() -> None:
    spec = ModelSpec("K", "openai", "m", input_price=1.0)
    schema = {"type": "object"}
    request = ModelRequest("m", "", "hi", {}, ResponseFormatSpec("json_schema", schema))
    assert plan_query("K", spec, request).request_bytes == 2 + len('{"type":"object"}')


def test_what_a_model_counted_informs_its_next_estimates() -> None:
    state = BudgetState(budget_usd=1.0)
    call = PlannedCall("K", request_bytes=30, input_price=1.0, output_price=2.0)
    first = state.reserve(call)
    # Before K answered: 10 input tokens, and as many output tokens (no max_tokens).
    assert (first.input_basis, first.input_tokens) == ("default", 10)
    assert (first.output_basis, first.output_tokens) == ("as_input", 10)
    assert "K has not answered in this run yet" in first.describe()
    state.settle(first, 0.0001, 300, input_tokens=45)  # 1.5 tokens per byte
    second = state.reserve(call)
    assert (second.input_basis, second.input_tokens) == ("ratio_so_far", 45)
    assert (second.output_basis, second.output_tokens) == ("largest_so_far", 300)
    state.settle(second, 0.0001, 200, input_tokens=15)  # fewer: the largest ratio stays
    assert state.largest_output_tokens == {"K": 300}
    assert state.input_tokens_per_byte == {"K": 1.5}
    assert "largest output of K in this run so far" in second.describe()
    assert "most tokens per byte K counted in this run so far" in second.describe()
    # Another model key learns on its own.
    other = state.reserve(PlannedCall("L", request_bytes=30, input_price=1.0, output_price=2.0))
    assert (other.input_basis, other.output_basis) == ("default", "as_input")


def test_reserving_counts_calls_in_flight_and_settling_replaces_the_estimate() -> None:
    state = BudgetState(budget_usd=0.001)
    call = PlannedCall(
        "K", request_bytes=300, max_output_tokens=100, input_price=1.0, output_price=2.0
    )
    # Each estimate: 100 * $1/M + 100 * $2/M = $0.0003; three fit, a fourth does not.
    estimates = [state.reserve(call) for _ in range(3)]
    with pytest.raises(BudgetExceededError, match=r"\$0\.000900 is reserved by calls in flight"):
        state.reserve(call)
    state.settle(estimates[0], 0.0001, 100, 50)  # cheaper than estimated: room is freed
    assert state.spent_usd == pytest.approx(0.0001)
    assert state.reserved_usd == pytest.approx(0.0006)
    state.reserve(call)
    assert (state.calls, state.refused) == (4, 1)


def test_an_embedding_is_estimated_from_its_input_bytes_only() -> None:
    spec = ModelSpec("E", "openai", "e", input_price=0.02, kind="embedding")
    call = plan_embedding("E", spec, EmbeddingRequest("e", "abcdef"))
    estimate = BudgetState(budget_usd=1.0).reserve(call)
    assert (estimate.input_tokens, estimate.output_tokens) == (2, 0)
    assert estimate.cost_usd == pytest.approx(2 * 0.02 / 1e6)
    assert "output" not in estimate.describe()


def test_a_model_without_prices_that_needs_a_key_is_refused_and_free_ones_pass() -> None:
    state = BudgetState(budget_usd=1.0)
    request = ModelRequest("m", "", "hi")
    unpriced = plan_query("openai:gpt-x", ModelSpec("openai:gpt-x", "openai", "gpt-x"), request)
    with pytest.raises(BudgetExceededError, match="has no prices"):
        state.reserve(unpriced)
    offline = plan_query("OFFLINE", ModelSpec("OFFLINE", "offline", "offline"), request)
    local = ModelSpec("LOCAL", "openai", "llama", no_api_key=True)
    assert state.reserve(offline).cost_usd == 0.0
    assert state.reserve(plan_query("LOCAL", local, request)).cost_usd == 0.0


def test_the_state_round_trips_through_a_document() -> None:
    state = BudgetState(budget_usd=0.5, spent_usd=0.1, reserved_usd=0.2, calls=3, refused=1)
    state.largest_output_tokens["K"] = 7
    state.input_tokens_per_byte["K"] = 0.25
    assert BudgetState.from_doc(json.loads(json.dumps(state.to_doc()))) == state


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_a_budget_must_be_a_finite_amount_above_zero(bad: float) -> None:
    with pytest.raises(UserError, match="above 0"):
        check_budget(bad)


# -- runs -----------------------------------------------------------------------------------


def test_a_chain_stops_before_the_call_that_would_exceed_the_budget(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    job_run = run(context_for(budget_registry), chain_job(), budget_usd=BUDGET)
    # Spent before each call: 0 (+205), 203, 406, 609 (+203 fits under 1000), 812 (+203 does
    # not): the estimate after the first call is the recorded cost of a like call.
    assert fake_server.count("openai") == 4
    statuses = [t.status for t in job_run.tasks]
    assert statuses == [run_pb2.RUN_STATUS_SUCCEEDED] * 4 + [
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_STATUS_SKIPPED,
    ]
    refused = step_of(job_run.tasks[4])
    assert refused.status == run_pb2.RUN_STATUS_FAILED
    assert refused.error.type == "BudgetExceededError"
    assert refused.attempts == 0 and refused.cost_usd == 0.0
    assert refused.error.message == (
        "the run's budget of $0.001000 would be exceeded: $0.000812 is spent, and this call to "
        "BUDGET_MODEL is estimated $0.000203: 3 input tokens (13 bytes of request at the most "
        "tokens per byte BUDGET_MODEL counted in this run so far) at $1/M + 100 output tokens "
        "(the step's max_tokens) at $2/M; no call was made. Raise the budget (--budget_usd), "
        "or set a smaller max_tokens on the step"
    )
    assert job_run.tasks[4].error.type == "BudgetExceededError"
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert job_run.error.type == "BudgetExceededError"
    assert job_run.error.message.startswith("task 't4' failed: the run's budget of $0.001000")
    assert job_run.budget_usd == BUDGET
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST)
    assert job_run.cost_usd <= BUDGET


def test_a_parallel_fan_out_makes_only_the_calls_that_fit(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    fake_server.latency_seconds = 0.05  # calls overlap (the bounds below hold either way)
    job_run = run(context_for(budget_registry, max_concurrency=8), fan_out_job(), budget_usd=BUDGET)
    steps = [step_of(t) for t in job_run.tasks]
    made = [s for s in steps if s.status == run_pb2.RUN_STATUS_SUCCEEDED]
    refused = [s for s in steps if s.status == run_pb2.RUN_STATUS_FAILED]
    assert fake_server.count("openai") == len(made)
    assert len(made) + len(refused) == 6
    # root spends 203; then like calls are estimated at 203 each: at most 4 in all (812 + 203
    # is over 1000), and 4 whichever way they overlap (203 + 3 * 203 <= 1000).
    assert len(made) == 4
    assert all(s.error.type == "BudgetExceededError" for s in refused)
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert job_run.cost_usd == pytest.approx(len(made) * CALL_COST)
    assert job_run.cost_usd <= BUDGET


def test_a_step_without_max_tokens_is_estimated_by_what_its_model_gave(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    # First call: 5 input + 5 output tokens ("as many as the input"): $0.000015, made; it
    # counts 3 in, 100 out ($0.000203). The second is estimated 3 + 100 (the largest output so
    # far): $0.000203 + $0.000203 > $0.0003, refused.
    job_run = run(context_for(budget_registry), chain_job(3, max_tokens=None), budget_usd=0.0003)
    assert fake_server.count("openai") == 1
    message = step_of(job_run.tasks[1]).error.message
    assert "100 output tokens (the largest output of BUDGET_MODEL in this run so far)" in message
    assert [t.status for t in job_run.tasks] == [
        run_pb2.RUN_STATUS_SUCCEEDED,
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_STATUS_SKIPPED,
    ]
    assert job_run.cost_usd == pytest.approx(CALL_COST)


def test_a_models_first_call_of_unknown_output_is_a_probe_the_others_wait_for() -> None:
    state = BudgetState(budget_usd=1.0)
    call = PlannedCall("K", request_bytes=30, input_price=1.0, output_price=2.0)
    probe = state.reserve(call, now=100.0)
    assert state.probes == {"K": 100.0}
    assert state.must_wait(call, now=101.0)
    bounded = PlannedCall("K", request_bytes=30, max_output_tokens=10, input_price=1.0)
    assert not state.must_wait(bounded, now=101.0)  # its output is bounded: no need to wait
    assert not state.must_wait(PlannedCall("L", request_bytes=30, output_price=2.0), now=101.0)
    assert not state.must_wait(call, now=100.0 + PROBE_WAIT_SECONDS)  # a dead probe holds no one
    state.settle(probe, 0.0002, 100, 20)
    assert state.probes == {} and not state.must_wait(call, now=101.0)


def test_parallel_calls_of_unknown_output_wait_for_the_probe_and_stay_in_budget(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    # Five calls at once, no max_tokens, nothing known of the model: guessed all at once, each
    # would be estimated 5 + 5 tokens ($0.000015) and all five made ($0.001015). The first is
    # a probe; the others wait for it and are then estimated at its cost ($0.000203): 4 fit.
    fake_server.latency_seconds = 0.05
    job_run = run(
        context_for(budget_registry, max_concurrency=8), parallel_job(), budget_usd=BUDGET
    )
    steps = [step_of(t) for t in job_run.tasks[1:]]
    made = [s for s in steps if s.status == run_pb2.RUN_STATUS_SUCCEEDED]
    assert fake_server.count("openai") == len(made) == 4
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST)
    assert job_run.cost_usd <= BUDGET


def test_without_a_budget_nothing_is_refused(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    job_run = run(context_for(budget_registry), chain_job())
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert fake_server.count("openai") == 6 and job_run.budget_usd == 0.0


def test_a_replay_reuses_recorded_steps_at_no_cost_to_its_budget(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    recorded = run(context_for(budget_registry), chain_job())
    fake_server.reset()
    context = context_for(budget_registry, replay=ReplaySource(recorded))
    # Less than one call's estimate: only reused steps can run.
    replayed = run(context, chain_job(), budget_usd=0.0001)
    assert replayed.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert fake_server.count("openai") == 0 and replayed.cost_usd == 0.0


def test_the_ledger_of_a_context_is_shared_by_the_runs_that_use_it(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    ledger = BudgetLedger(BUDGET)
    context = context_for(budget_registry, budget=ledger)

    async def both() -> list[run_pb2.JobRun]:
        try:
            return [await run_job(chain_job(3), context), await run_job(chain_job(3), context)]
        finally:
            await context.models.aclose()

    first, second = asyncio.run(both())
    assert fake_server.count("openai") == 4
    assert first.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert second.status == run_pb2.RUN_STATUS_FAILED
    assert ledger.state.spent_usd == pytest.approx(4 * CALL_COST)
    assert (ledger.state.calls, ledger.state.refused) == (4, 1)


def test_response_cache_hits_reserve_nothing(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer, tmp_path: pathlib.Path
) -> None:
    from llm_scheduler.cache import StoreResponseCache
    from llm_scheduler.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'cache.db'}") as store:
        use = config_pb2.CACHE_POLICY_USE
        cache = StoreResponseCache(store)
        first = run(
            context_for(budget_registry, cache=cache, default_cache_policy=use), chain_job(3)
        )
        # The same request three times: one call, then two cache hits.
        assert first.status == run_pb2.RUN_STATUS_SUCCEEDED and fake_server.count() == 1
        context = context_for(budget_registry, cache=cache, default_cache_policy=use)
        # Less than one call's estimate: only cache hits can run.
        second = run(context, chain_job(3), budget_usd=0.0001)
    assert second.status == run_pb2.RUN_STATUS_SUCCEEDED and fake_server.count() == 1
    steps = [step_of(t) for t in second.tasks]
    assert all(s.cache_hit and s.cost_usd == 0.0 and s.attempts == 0 for s in steps)
    assert second.cost_usd == 0.0


def test_a_nested_sub_job_spends_from_its_callers_budget(
    budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    from llm_scheduler import dumps

    child = json.loads(dumps(chain_job(3), ConfigFormat.JSON))
    step = {"step_type": "STEP_TYPE_SUB_JOB", "sub_job_config": {"job": child}}
    parent = {
        "job_id": "parent",
        "tasks": [
            {"task_id": "first", "steps": [step], "next_task": "second"},
            {"task_id": "second", "steps": [step]},
        ],
    }
    job = loads(json.dumps(parent), config_pb2.JobConfig, ConfigFormat.JSON)
    job_run = run(context_for(budget_registry), job, budget_usd=BUDGET)
    assert fake_server.count("openai") == 4  # 3 in the first child, 1 in the second
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert "the run's budget of $0.001000 would be exceeded" in job_run.error.message
    refused = step_of(job_run.children[1].tasks[1])
    assert refused.error.type == "BudgetExceededError"
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST)
    assert job_run.cost_usd <= BUDGET

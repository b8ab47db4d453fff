"""Per-run budgets of event-driven runs: one ledger document that every worker reserves in."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

import pytest

from llm_scheduler import ModelRegistry, UserError, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.budget_ledger import ledger_path, read_budget, set_budget
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.local_run import resume_in_store
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.run_requests import handle_run_request
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for, run_closing
from tests.engine.test_budget import (
    BUDGET,
    CALL_COST,
    budget_models_file,
    chain_job,
    fan_out_job,
    reply_words,
    step_of,
)


@pytest.fixture
def budget_registry(tmp_path: pathlib.Path, fake_server: FakeProviderServer) -> ModelRegistry:
    fake_server.responder = reply_words
    return ModelRegistry.with_models_file(budget_models_file(tmp_path / "m.json", fake_server))


def dispatch(store: Store, registry: ModelRegistry, workers: int = 4) -> None:
    context = context_for(registry)
    run_closing(context, Dispatcher(store, context, workers=workers).run(until_idle=True))


def read(store: Store, run_id: str) -> run_pb2.JobRun:
    job_run = read_job_run(store, run_id)
    assert job_run is not None
    return job_run


def test_a_chain_in_the_store_stops_before_the_call_that_would_exceed_the_budget(
    store_url: str, budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_job(), budget_usd=BUDGET)
        doc = store.get(docs.job_run_path(run_id))
        assert doc is not None and (doc["budget_usd"], doc["budget_run_id"]) == (BUDGET, run_id)
        dispatch(store, budget_registry)
        job_run = read(store, run_id)
        ledger = read_budget(store, run_id)
    assert fake_server.count("openai") == 4
    statuses = [t.status for t in job_run.tasks]
    assert statuses == [run_pb2.RUN_STATUS_SUCCEEDED] * 4 + [
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_STATUS_SKIPPED,
    ]
    refused = step_of(job_run.tasks[4])
    assert refused.error.type == "BudgetExceededError" and refused.attempts == 0
    assert refused.error.message.startswith(
        "the run's budget of $0.001000 would be exceeded: $0.000812 is spent, and this call to "
        "BUDGET_MODEL is estimated $0.000203"
    )
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert "the run's budget of $0.001000 would be exceeded" in job_run.error.message
    assert job_run.budget_usd == BUDGET
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST) and job_run.cost_usd <= BUDGET
    assert ledger is not None
    assert ledger.spent_usd == pytest.approx(4 * CALL_COST) and ledger.reserved_usd == 0.0
    assert (ledger.calls, ledger.refused) == (4, 1)
    assert ledger.largest_output_tokens == {"BUDGET_MODEL": 100}
    assert ledger.input_tokens_per_byte == {"BUDGET_MODEL": pytest.approx(3 / 13)}


def test_parallel_workers_make_only_the_calls_that_fit(
    store_url: str, budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    fake_server.latency_seconds = 0.05
    with open_store(store_url) as store:
        run_id = submit_job(store, fan_out_job(), budget_usd=BUDGET)
        dispatch(store, budget_registry, workers=6)
        job_run = read(store, run_id)
        ledger = read_budget(store, run_id)
    steps = [step_of(t) for t in job_run.tasks]
    made = [s for s in steps if s.status == run_pb2.RUN_STATUS_SUCCEEDED]
    refused = [s for s in steps if s.status == run_pb2.RUN_STATUS_FAILED]
    assert fake_server.count("openai") == len(made) and len(made) + len(refused) == 6
    assert len(made) == 4  # see tests/engine/test_budget.py
    assert all(s.error.type == "BudgetExceededError" for s in refused)
    assert job_run.cost_usd == pytest.approx(len(made) * CALL_COST)
    assert job_run.cost_usd <= BUDGET
    assert ledger is not None and (ledger.calls, ledger.refused) == (len(made), len(refused))


def test_parallel_workers_wait_for_a_models_probe(
    store_url: str, budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    from tests.engine.test_budget import parallel_job

    fake_server.latency_seconds = 0.05
    with open_store(store_url) as store:
        run_id = submit_job(store, parallel_job(), budget_usd=BUDGET)
        dispatch(store, budget_registry, workers=6)
        job_run = read(store, run_id)
        ledger = read_budget(store, run_id)
    made = [t for t in job_run.tasks[1:] if step_of(t).status == run_pb2.RUN_STATUS_SUCCEEDED]
    assert fake_server.count("openai") == len(made) == 4  # see tests/engine/test_budget.py
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST) and job_run.cost_usd <= BUDGET
    assert ledger is not None and ledger.probes == {}


def test_a_sub_job_spends_from_its_callers_budget(
    store_url: str, budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    child = json.loads(config_to_json(chain_job(3)))
    parent = {
        "job_id": "parent",
        "tasks": [
            {
                "task_id": "first",
                "steps": [{"step_type": "STEP_TYPE_SUB_JOB", "sub_job_config": {"job": child}}],
                "next_task": "second",
            },
            {
                "task_id": "second",
                "steps": [{"step_type": "STEP_TYPE_SUB_JOB", "sub_job_config": {"job": child}}],
            },
        ],
    }
    job = loads(json.dumps(parent), config_pb2.JobConfig, ConfigFormat.JSON)
    with open_store(store_url) as store:
        run_id = submit_job(store, job, budget_usd=BUDGET)
        dispatch(store, budget_registry)
        job_run = read(store, run_id)
        first_child = store.get(docs.job_run_path(f"{run_id}~first~0"))
        assert first_child is not None and first_child["budget_run_id"] == run_id
        assert store.get(ledger_path(f"{run_id}~first~0")) is None
    # The first child's 3 calls, then 1 of the second's: 4 in all, as in one chain.
    assert fake_server.count("openai") == 4
    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    assert "budget of $0.001000 would be exceeded" in job_run.error.message
    assert job_run.cost_usd == pytest.approx(4 * CALL_COST)
    assert job_run.cost_usd <= BUDGET


def test_a_resume_with_a_raised_budget_continues_after_the_spent_calls(
    store_url: str, budget_registry: ModelRegistry, fake_server: FakeProviderServer
) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_job(), budget_usd=BUDGET)
        dispatch(store, budget_registry)
        assert fake_server.count("openai") == 4
        context = context_for(budget_registry)
        job_run = run_closing(context, resume_in_store(store, run_id, context, budget_usd=0.002))
        ledger = read_budget(store, run_id)
    # The 4 calls made are not made again; the last 2 fit the raised budget.
    assert fake_server.count("openai") == 6
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert ledger is not None and ledger.budget_usd == 0.002
    assert ledger.spent_usd == pytest.approx(6 * CALL_COST)


def test_only_a_run_with_a_budget_of_its_own_can_have_it_changed(store_url: str) -> None:
    with open_store(store_url) as store:
        run_id = submit_job(store, chain_job())
        assert store.get(ledger_path(run_id)) is None and read_budget(store, run_id) is None
        with pytest.raises(UserError, match="has no budget of its own"):
            set_budget(store, run_id, 1.0)
        with pytest.raises(UserError, match="above 0"):
            submit_job(store, chain_job(), budget_usd=-1.0)


def config_to_json(job: config_pb2.JobConfig) -> str:
    from llm_scheduler import dumps

    return dumps(job, ConfigFormat.JSON).decode()


def test_a_ledger_reservation_race_lets_only_one_of_two_calls_through(store_url: str) -> None:
    """Two workers (two store connections) race for a budget that fits one estimate."""
    from llm_scheduler.engine.budget import PlannedCall
    from llm_scheduler.errors import BudgetExceededError
    from llm_scheduler.execution.budget_ledger import StoreBudget

    call = PlannedCall(
        "K", request_bytes=300, max_output_tokens=100, input_price=1.0, output_price=2.0
    )
    with open_store(store_url) as one, open_store(store_url) as two:
        run_id = submit_job(one, chain_job(1), budget_usd=0.0005)  # one $0.0003 estimate fits

        async def race() -> list[Any]:
            budgets = [StoreBudget(one, run_id), StoreBudget(two, run_id)]
            return await asyncio.gather(*(b.reserve(call) for b in budgets), return_exceptions=True)

        outcomes = asyncio.run(race())
        ledger = read_budget(one, run_id)
    assert sorted(type(o).__name__ for o in outcomes) == ["BudgetExceededError", "CallEstimate"]
    assert any(isinstance(o, BudgetExceededError) for o in outcomes)
    assert ledger is not None and ledger.reserved_usd == pytest.approx(0.0003)
    assert (ledger.calls, ledger.refused) == (1, 1)


def test_a_run_request_may_give_a_budget(store_url: str) -> None:
    from tests.execution.test_run_requests import Requests, _config

    requests = Requests(store_url)
    try:
        requests.write("req-budget", {"config": _config(), "budget_usd": 0.25})
        assert handle_run_request(requests.store, "req-budget").action == "accepted"
        ledger = read_budget(requests.store, "req-budget")
        assert ledger is not None and ledger.budget_usd == 0.25
        for bad in (0, -1, "1", True):
            request_id = f"req-bad-{bad!r}".replace("'", "").replace("-1", "minus1")
            requests.write(request_id, {"config": _config(), "budget_usd": bad})
            assert handle_run_request(requests.store, request_id).action == "rejected"
            (problem,) = requests.read(request_id)["problems"]
            assert problem["path"] == "budget_usd" and "above 0" in problem["message"]
    finally:
        requests.close()

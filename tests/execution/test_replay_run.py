"""Replays through a store: planned, submitted as a linked run, run by any dispatcher."""

from __future__ import annotations

import pytest

from llm_scheduler import ModelRegistry
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.run_compare import compare_runs
from llm_scheduler.engine.what_if import edits_from_json
from llm_scheduler.errors import ConfigError, UserError
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.replay_run import edited_run, plan_stored_replay, submit_replay
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import run_pb2
from tests.conftest import context_for
from tests.engine.test_replay import CHAIN, restart, short_responses, two_chain_job
from tests.execution.test_event_driven import run_dispatcher


def test_an_edited_stored_run_replays_exactly_the_planned_steps_on_any_dispatcher(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    with open_store(store_url) as store:
        original_id = submit_job(store, two_chain_job())
        run_dispatcher(store, fake_registry)
        edits = edits_from_json(
            [
                {"kind": "step_response", "task_id": "b", "step_index": 20, "value": '["NEW"]'},
                {"kind": "task_inputs", "task_id": "join", "value": {"a_last": "by hand"}},
            ]
        )
        context = context_for(fake_registry)
        plan = plan_stored_replay(store, original_id, edits, context)
        restart(fake_server)

        replay_id = submit_replay(store, edited_run(store, original_id, edits), context)
        run_dispatcher(store, fake_registry)

        replayed = read_job_run(store, replay_id)
        original = read_job_run(store, original_id)
    assert replayed is not None and original is not None
    assert replayed.status == run_pb2.RUN_STATUS_SUCCEEDED, replayed.error.message
    assert replayed.parent_run_id == original_id
    ran = [
        (t.task_id, s.index) for t in replayed.tasks for s in t.steps if not s.reused_from_run_id
    ]
    planned = [(s.task_id, s.step_index) for s in plan.steps if s.action == "run"]
    assert ran == planned == [("b", i) for i in range(21, CHAIN)] + [("join", 0)]
    assert fake_server.count() == plan.model_calls == len(planned)
    join = next(t for t in replayed.tasks if t.task_id == "join")
    assert struct_to_dict(join.inputs)["a_last"] == "by hand"
    comparison = compare_runs(original, replayed)
    assert [t.task_id for t in comparison.tasks if t.changed] == ["b", "join"]


def test_a_replay_with_an_invalid_edit_is_refused_before_anything_runs(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    with open_store(store_url) as store:
        original_id = submit_job(store, two_chain_job())
        run_dispatcher(store, fake_registry)
        context = context_for(fake_registry)
        bad_prompt = edits_from_json(
            [
                {
                    "kind": "step_prompt",
                    "task_id": "a",
                    "step_index": 0,
                    "value": {"user_prompt": "%no_such_variable%"},
                }
            ]
        )
        with pytest.raises(ConfigError, match="no_such_variable"):
            plan_stored_replay(store, original_id, bad_prompt, context)
        with pytest.raises(ConfigError, match="no_such_variable"):
            submit_replay(store, edited_run(store, original_id, bad_prompt), context)
        with pytest.raises(UserError, match="no job run 'missing'"):
            edited_run(store, "missing")
        runs = store.list("job_runs")
    assert len(runs) == 1

"""What-if edits and replay plans: the plan says exactly what the replay then does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_scheduler import ModelClient, ModelRegistry, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.engine.run_compare import compare_runs
from llm_scheduler.engine.what_if import Edit, EditKind, apply_edits, edits_from_json
from llm_scheduler.errors import UserError
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS
from tests.engine.test_replay import CHAIN, restart, run, short_responses, two_chain_job


def context(registry: ModelRegistry) -> RunContext:
    return RunContext(models=ModelClient(registry, offline=False, credentials=FAKE_CREDENTIALS))


def ran(job_run: run_pb2.JobRun) -> list[tuple[str, int]]:
    return [
        (t.task_id, s.index) for t in job_run.tasks for s in t.steps if not s.reused_from_run_id
    ]


EDITS: dict[str, list[dict[str, Any]]] = {
    "none": [],
    "response": [
        {"kind": "step_response", "task_id": "a", "step_index": 3, "value": json.dumps(["NEW"])}
    ],
    "outputs": [{"kind": "step_outputs", "task_id": "b", "step_index": 20, "value": {"b20": "X"}}],
    "prompt": [
        {
            "kind": "step_prompt",
            "task_id": "b",
            "step_index": 22,
            "value": {"user_prompt": "b step 22, again: %b21%"},
        }
    ],
    "task_inputs": [{"kind": "task_inputs", "task_id": "join", "value": {"a_last": "by hand"}}],
    "job_inputs": [{"kind": "job_inputs", "value": {"topic": "another"}}],
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_the_plan_names_exactly_the_steps_the_replay_runs_and_their_recorded_cost(
    case: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    edited = apply_edits(original, edits_from_json(EDITS[case]))

    plan = plan_replay(edited.config, edited, context(fake_registry))
    restart(fake_server)
    replayed = run(
        edited.config, fake_registry, replay=edited, inputs=struct_to_dict(edited.inputs)
    )

    planned = [(s.task_id, s.step_index) for s in plan.steps if s.action == "run"]
    assert planned == ran(replayed)
    assert plan.model_calls == fake_server.count()
    assert len(plan.steps) == 2 * CHAIN + 2
    recorded = {(t.task_id, s.index): s.cost_usd for t in original.tasks for s in t.steps}
    assert plan.estimated_cost_usd == pytest.approx(sum(recorded[key] for key in planned))
    assert plan.to_json()["to_run"] == len(planned)


def test_plan_reasons_say_what_changed(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    edited = apply_edits(original, edits_from_json(EDITS["prompt"] + EDITS["response"]))

    steps = {
        (s.task_id, s.step_index): s
        for s in plan_replay(edited.config, edited, context(fake_registry)).steps
    }

    assert steps[("b", 22)].reason == "user prompt changed"
    assert "a step before it recomputes" in steps[("b", 23)].reason
    assert steps[("a", 3)].action == "reuse"
    assert "edited response" in steps[("a", 3)].reason
    assert steps[("a", 2)].reason.startswith("unchanged")


def test_a_replay_compared_with_its_source_shows_every_changed_output(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    edited = apply_edits(original, edits_from_json(EDITS["response"]))
    restart(fake_server)
    replayed = run(
        edited.config, fake_registry, replay=edited, inputs=struct_to_dict(edited.inputs)
    )

    comparison = compare_runs(original, replayed)

    by_task = {task.task_id: task for task in comparison.tasks}
    assert not by_task["b"].changed and not by_task["start"].changed
    assert by_task["a"].changed and by_task["join"].changed
    changed_steps = [s.index for s in by_task["a"].steps if s.changed]
    assert changed_steps == list(range(3, CHAIN))
    assert by_task["a"].steps[3].after_outputs == {"a3": "NEW"}
    assert by_task["a"].steps[3].reused
    assert comparison.to_json()["changed_tasks"] == 2


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"kind": "step_response"}, "needs a 'task_id'"),
        ([{"kind": "nope", "value": 1}], "unknown kind 'nope'"),
        ([{"kind": "job_inputs"}], "missing 'value'"),
        ([{"kind": "job_inputs", "value": 1, "extra": 2}], "unknown field(s) extra"),
        ([{"kind": "task_inputs", "task_id": "a", "step_index": -1, "value": {}}], "non-negative"),
    ],
)
def test_malformed_edits_are_named(edits: Any, message: str) -> None:
    data = edits if isinstance(edits, list) else [edits]
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        edits_from_json(data)


def test_edits_that_do_not_fit_the_run_are_named(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.responder = short_responses
    original = run(two_chain_job(), fake_registry)
    cases = [
        (Edit(EditKind.STEP_RESPONSE, "x", "nope", 0), "no record of task 'nope'"),
        (Edit(EditKind.STEP_RESPONSE, "x", "a", 99), "no succeeded step 99"),
        (Edit(EditKind.STEP_RESPONSE, {"a": 1}, "a", 0), "a model step's response is text"),
        (Edit(EditKind.STEP_PROMPT, {"user_prompt": "x"}, "start", 0), "function step"),
        (Edit(EditKind.STEP_PROMPT, {"prompt": "x"}, "a", 0), "'user_prompt' and/or"),
        (Edit(EditKind.JOB_INPUTS, "x"), "must be a JSON object"),
    ]
    for edit, message in cases:
        with pytest.raises(UserError, match=message):
            apply_edits(original, [edit])
    # The recorded run itself is never changed.
    assert apply_edits(original, []) == original


def test_a_successor_reading_only_known_task_outputs_is_planned_reused(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    from tests.engine.test_replay import _fn

    def ask(step_id: str, prompt: str) -> dict[str, Any]:
        return {
            "id": step_id,
            "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": prompt},
            "output_config": {"payload": {step_id: ""}},
        }

    job = loads(
        json.dumps(
            {
                "job_id": "passthrough",
                "input_config": {"payload": {"topic": "t"}},
                "tasks": [
                    {
                        "task_id": "first",
                        "steps": [_fn("seed", "%topic%"), ask("x", "about %seed%")],
                        "output_config": {"payload": {"x": "", "seed": "", "both": "%x% %seed%"}},
                        "next_task": "second",
                    },
                    {"task_id": "second", "steps": [ask("y", "again %seed%"), ask("z", "%both%")]},
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    fake_server.responder = short_responses
    original = run(job, fake_registry)
    edited = apply_edits(
        original,
        [Edit(EditKind.STEP_PROMPT, {"user_prompt": "more about %seed%"}, "first", 1)],
    )

    plan = plan_replay(edited.config, edited, context(fake_registry))
    restart(fake_server)
    replayed = run(
        edited.config, fake_registry, replay=edited, inputs=struct_to_dict(edited.inputs)
    )

    actions = {(s.task_id, s.step_index): s.action for s in plan.steps}
    assert actions == {
        ("first", 0): "reuse",
        ("first", 1): "run",
        ("second", 0): "reuse",  # reads the seed, passed through unchanged
        ("second", 1): "run",  # reads a template output over the recomputed x
    }
    assert [k for k, a in actions.items() if a == "run"] == ran(replayed)

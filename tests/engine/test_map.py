"""Maps in process (`TaskConfig.for_each`): one task run per item, collected in item order."""

from __future__ import annotations

import json
from typing import Any

from llm_scheduler import ModelClient, ModelRegistry, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.engine.what_if import apply_edits, edits_from_json
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for
from tests.conftest import run_closing as run


def _query(prompt: str, outputs: dict[str, Any], model_key: str = "FAKE_OPENAI") -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": model_key, "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


def _job(
    for_each: dict[str, Any],
    *,
    plan: dict[str, Any] | None = None,
    item_step: dict[str, Any] | None = None,
    inputs: dict[str, Any] | None = None,
    model_key: str = "FAKE_OPENAI",
) -> config_pb2.JobConfig:
    """plan -> write (a map over ``for_each``) -> join, or write -> join without a plan."""
    write: dict[str, Any] = {
        "task_id": "write",
        "next_task": "join",
        "for_each": for_each,
        "steps": [item_step or _query("Section %index%: %item%", {"text": ""}, model_key)],
    }
    tasks: list[dict[str, Any]] = []
    if plan is not None:
        tasks.append({"task_id": "plan", "next_task": "write", "steps": [plan]})
    tasks += [
        write,
        {"task_id": "join", "steps": [_query("All: %text%", {"final": ""}, model_key)]},
    ]
    config: dict[str, Any] = {"job_id": "mapped", "tasks": tasks}
    if inputs is not None:
        config["input_config"] = {"payload": inputs}
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def _task(job_run: run_pb2.JobRun, task_id: str) -> run_pb2.TaskRun:
    return next(t for t in job_run.tasks if t.task_id == task_id)


def _planned_by_the_fake_server(fake_server: FakeProviderServer, count: int) -> None:
    """The plan step answers a JSON list of ``count`` sections; other prompts are echoed."""

    def responder(provider: str, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if prompt == "Plan the sections":
            return json.dumps([f"section {i}" for i in range(count)])
        return f"wrote {prompt}"

    fake_server.responder = responder


def test_a_map_over_a_model_json_list_runs_each_item_and_the_join_sees_them_in_order(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = 5  # decided by the model's answer, not by the config
    _planned_by_the_fake_server(fake_server, count)
    fake_server.latency_seconds = 0.02
    job = _job(
        {"items": "%sections%", "max_in_flight": 2},
        plan=_query("Plan the sections", {"sections": ""}),
    )
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 1 + count + 1  # exactly the logical calls
    assert fake_server.max_in_flight <= 2
    write = _task(job_run, "write")
    assert write.items_total == count
    assert [item.task_run_id for item in write.items] == [f"write~{i:06d}" for i in range(count)]
    assert [item.item_index for item in write.items] == list(range(count))
    assert all(item.task_id == "write" for item in write.items)
    assert not write.steps  # the steps are the items'
    expected = [f"wrote Section {i}: section {i}" for i in range(count)]
    assert struct_to_dict(write.outputs) == {"text": expected}
    join = _task(job_run, "join")
    assert struct_to_dict(join.inputs)["text"] == expected
    assert join.steps[0].user_prompt == f"All: {json.dumps(expected)}"
    assert write.usage.input_tokens == sum(item.usage.input_tokens for item in write.items) > 0


def test_a_map_over_an_offline_json_list(fake_server: FakeProviderServer) -> None:
    # The offline model answers a JSON schema with an instance of it: here a list of 3.
    schema = {
        "type": "object",
        "properties": {"sections": {"type": "array", "minItems": 3, "items": {"type": "string"}}},
    }
    plan = {
        "model_query_config": {
            "model_key": "offline:echo",
            "user_prompt": "Plan",
            "response_format": {"type": "TYPE_JSON_SCHEMA", "json_schema": schema},
        },
        "output_config": {"payload": {"plan": "%response%"}},
    }
    job = _job(
        {"items": "%plan.sections%", "item_variable": "section"},
        plan=plan,
        item_step=_query("Write %index%: %section%", {"text": ""}, "offline:echo"),
        model_key="offline:echo",
    )
    Validator().check_job(job)
    context = RunContext(models=ModelClient(offline=True))
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 0
    write = _task(job_run, "write")
    assert write.items_total == 3
    texts = struct_to_dict(write.outputs)["text"]
    assert [text.split("] ", 1)[1].split(":")[0] for text in texts] == [
        "Write 0",
        "Write 1",
        "Write 2",
    ]
    assert struct_to_dict(_task(job_run, "join").inputs)["text"] == texts


def test_an_empty_list_gives_empty_outputs(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = _job({"items": "%topics%"}, inputs={"topics": []})
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    write = _task(job_run, "write")
    assert write.items_total == 0 and not write.items
    assert struct_to_dict(write.outputs) == {"text": []}
    assert struct_to_dict(_task(job_run, "join").inputs)["text"] == []
    assert fake_server.count() == 1  # the join only


def test_a_list_longer_than_max_items_fails_the_task_naming_it(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = _job({"items": "%topics%", "max_items": 2}, inputs={"topics": ["a", "b", "c"]})
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    write = _task(job_run, "write")
    assert write.status == run_pb2.RUN_STATUS_FAILED
    assert write.error.type == "MapError"
    assert "task 'write'" in write.error.message
    assert "3 items" in write.error.message and "max_items (2)" in write.error.message
    assert _task(job_run, "join").status == run_pb2.RUN_STATUS_SKIPPED
    assert fake_server.count() == 0


def test_the_default_limit_is_1000_items(fake_registry: ModelRegistry) -> None:
    job = _job({"items": "%topics%"}, inputs={"topics": list(range(1_001))})
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))
    assert "more than its max_items (1,000)" in _task(job_run, "write").error.message


def test_a_value_that_is_not_a_list_fails_the_task(fake_registry: ModelRegistry) -> None:
    job = _job({"items": "%topics%"}, inputs={"topics": "not a list"})
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))
    write = _task(job_run, "write")
    assert write.status == run_pb2.RUN_STATUS_FAILED
    assert "is a str, not a list" in write.error.message


def test_a_failed_item_fails_the_map_naming_the_item(fake_registry: ModelRegistry) -> None:
    parse = {
        "step_type": 1,
        "function_call_config": {"function_name": "json_parse", "request": "%item%"},
        "output_config": {"payload": {"text": "%response%"}},
    }
    job = _job(
        {"items": "%topics%", "max_in_flight": 1},
        inputs={"topics": ["1", "2", "oops", "4", "5"]},
        item_step=parse,
    )
    Validator(fake_registry).check_job(job)
    context = context_for(fake_registry)
    job_run = run(context, run_job(job, context))

    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    write = _task(job_run, "write")
    assert write.status == run_pb2.RUN_STATUS_FAILED
    assert write.error.message.startswith("write[2]: ")
    statuses = [item.status for item in write.items]
    assert statuses[:3] == [
        run_pb2.RUN_STATUS_SUCCEEDED,
        run_pb2.RUN_STATUS_SUCCEEDED,
        run_pb2.RUN_STATUS_FAILED,
    ]
    # One item at a time: nothing starts after the failure.
    assert statuses[3:] == [run_pb2.RUN_STATUS_SKIPPED] * 2
    assert [item.task_run_id for item in write.items][3:] == ["write~000003", "write~000004"]
    assert "task 'write' failed: write[2]: " in job_run.error.message


def test_max_in_flight_is_never_exceeded_and_max_concurrency_caps_it(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.latency_seconds = 0.02
    job = _job({"items": "%topics%", "max_in_flight": 10}, inputs={"topics": list(range(8))})
    context = context_for(fake_registry, max_concurrency=3)
    job_run = run(context, run_job(job, context))
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.max_in_flight <= 3
    assert fake_server.count() == 8 + 1


def test_an_unchanged_replay_of_a_map_makes_no_calls(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    _planned_by_the_fake_server(fake_server, 4)
    job = _job({"items": "%sections%"}, plan=_query("Plan the sections", {"sections": ""}))
    context = context_for(fake_registry)
    first = run(context, run_job(job, context))
    assert first.status == run_pb2.RUN_STATUS_SUCCEEDED, first.error.message
    calls = fake_server.count()
    assert calls == 1 + 4 + 1

    context = context_for(fake_registry, replay=ReplaySource(first))
    again = run(context, run_job(job, context))
    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == calls
    assert struct_to_dict(again.outputs) == struct_to_dict(first.outputs)
    items = _task(again, "write").items
    assert all(item.steps[0].reused_from_run_id == first.run_id for item in items)


def test_a_replay_with_an_edited_item_answer_calls_only_what_depends_on_it(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    _planned_by_the_fake_server(fake_server, 3)
    job = _job({"items": "%sections%"}, plan=_query("Plan the sections", {"sections": ""}))
    context = context_for(fake_registry)
    first = run(context, run_job(job, context))
    calls = fake_server.count()
    edited = run_pb2.JobRun()
    edited.CopyFrom(first)
    step = _task(edited, "write").items[1].steps[0]
    step.response_text = "edited"
    step.outputs.Clear()  # outputs follow the edited response

    plan = plan_replay(job, edited, context_for(fake_registry))
    assert [(p.task_id, p.action) for p in plan.steps] == [
        ("plan", "reuse"),
        ("write[0]", "reuse"),
        ("write[1]", "reuse"),
        ("write[2]", "reuse"),
        ("join", "run"),
    ]
    assert "edited response" in plan.steps[2].reason

    context = context_for(fake_registry, replay=ReplaySource(edited))
    again = run(context, run_job(job, context))
    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == calls + 1  # the join only
    assert struct_to_dict(_task(again, "write").outputs)["text"][1] == "edited"


def test_a_replay_plan_of_a_map_whose_list_changes_runs_its_steps(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    _planned_by_the_fake_server(fake_server, 2)
    job = _job({"items": "%sections%"}, plan=_query("Plan the sections", {"sections": ""}))
    context = context_for(fake_registry)
    first = run(context, run_job(job, context))
    edited = run_pb2.JobRun()
    edited.CopyFrom(first)
    step = _task(edited, "plan").steps[0]
    step.response_text = json.dumps(["x", "y", "z"])
    step.outputs.Clear()

    plan = plan_replay(job, edited, context_for(fake_registry))
    # The new list is known from the edited answer: three items, none recorded.
    assert [(p.task_id, p.action) for p in plan.steps] == [
        ("plan", "reuse"),
        ("write[0]", "run"),
        ("write[1]", "run"),
        ("write[2]", "run"),
        ("join", "run"),
    ]


def test_a_what_if_edit_names_an_item_by_its_task_run_id(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    _planned_by_the_fake_server(fake_server, 3)
    job = _job({"items": "%sections%"}, plan=_query("Plan the sections", {"sections": ""}))
    context = context_for(fake_registry)
    first = run(context, run_job(job, context))
    calls = fake_server.count()
    edits = edits_from_json(
        [{"kind": "step_response", "task_id": "write~000002", "step_index": 0, "value": "new"}]
    )
    edited = apply_edits(first, edits)
    assert _task(edited, "write").items[2].steps[0].response_text == "new"

    context = context_for(fake_registry, replay=ReplaySource(edited))
    again = run(context, run_job(job, context))
    assert fake_server.count() == calls + 1  # the join only
    assert struct_to_dict(_task(again, "write").outputs)["text"][2] == "new"

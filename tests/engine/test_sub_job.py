"""Sub-job steps in process (step type 3): a child job run as one step, nested."""

from __future__ import annotations

import json
from typing import Any

from llm_scheduler import ModelRegistry, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.replay_plan import plan_replay
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import context_for
from tests.conftest import run_closing as run


def _query(prompt: str, outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": "FAKE_OPENAI", "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


# draft -> final: the child's response is {"final": {"summary": ...}}.
CHILD: dict[str, Any] = {
    "job_id": "child",
    "input_config": {"payload": {"section": ""}},
    "tasks": [
        {
            "task_id": "draft",
            "next_task": "final",
            "steps": [_query("Draft %section%", {"draft": ""})],
        },
        {"task_id": "final", "steps": [_query("Polish %draft%", {"summary": ""})]},
    ],
}


def _sub_job_step(child: dict[str, Any], section: str = "%topic%") -> dict[str, Any]:
    return {
        "name": "child",
        "step_type": "STEP_TYPE_SUB_JOB",
        "sub_job_config": {"job": child, "inputs": {"section": section}},
        "output_config": {"payload": {"summary": "%response.final.summary%"}},
    }


def _load(config: dict[str, Any]) -> config_pb2.JobConfig:
    return loads(json.dumps(config), config_pb2.JobConfig, ConfigFormat.JSON)


def _parent(child: dict[str, Any] | None = None) -> config_pb2.JobConfig:
    """write: the sub-job on %topic%, then a title for its summary."""
    return _load(
        {
            "job_id": "parent",
            "input_config": {"payload": {"topic": "tides"}},
            "tasks": [
                {
                    "task_id": "write",
                    "steps": [
                        _sub_job_step(child or CHILD),
                        _query("Title for %summary%", {"title": ""}),
                    ],
                }
            ],
        }
    )


def _run(job: config_pb2.JobConfig, registry: ModelRegistry, **kwargs: Any) -> run_pb2.JobRun:
    Validator(registry).check_job(job)
    context = context_for(registry, **kwargs)
    return run(context, run_job(job, context))


def test_a_sub_job_step_routes_inputs_and_its_outputs_flow_on(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job_run = _run(_parent(), fake_registry)

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 3  # draft, polish, title: the logical calls
    sub_step, title_step = job_run.tasks[0].steps
    [child] = job_run.children
    assert child.run_id == f"{job_run.run_id}~write~0" == sub_step.child_run_id
    assert (child.caller_run_id, child.caller_task_run_id, child.caller_step_index) == (
        job_run.run_id,
        "write",
        0,
    )
    assert child.parent_run_id == ""  # kept for "replayed from"
    assert struct_to_dict(child.inputs) == {"section": "tides"}
    assert child.tasks[0].steps[0].user_prompt == "Draft tides"
    summary = struct_to_dict(child.outputs)["final"]["summary"]
    assert struct_to_dict(sub_step.outputs) == {"summary": summary}
    assert title_step.user_prompt == f"Title for {summary}"
    assert sub_step.usage == child.usage
    assert sub_step.usage.input_tokens > 0
    assert job_run.usage.input_tokens == child.usage.input_tokens + title_step.usage.input_tokens


def plan_sections(fake_server: FakeProviderServer, count: int) -> None:
    """The plan step answers a JSON list of ``count`` sections; other prompts are echoed."""

    def responder(provider: str, body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        if prompt == "Plan the sections":
            return json.dumps([f"s{i}" for i in range(count)])
        return f"wrote {prompt}"

    fake_server.responder = responder


def sub_job_map() -> config_pb2.JobConfig:
    """plan -> write (a map whose step is the sub-job draft -> final) -> join."""
    return _load(
        {
            "job_id": "mapped",
            "tasks": [
                {
                    "task_id": "plan",
                    "next_task": "write",
                    "steps": [_query("Plan the sections", {"sections": ""})],
                },
                {
                    "task_id": "write",
                    "next_task": "join",
                    "for_each": {"items": "%sections%", "item_variable": "section"},
                    "steps": [_sub_job_step(CHILD, "%section%")],
                },
                {"task_id": "join", "steps": [_query("All: %summary%", {"final": ""})]},
            ],
        }
    )


def test_a_map_over_a_sub_job_step_runs_the_sub_graph_per_item(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    count = 3
    plan_sections(fake_server, count)
    job = sub_job_map()
    job_run = _run(job, fake_registry)

    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 1 + 2 * count + 1
    ids = [f"{job_run.run_id}~write~{i:06d}~0" for i in range(count)]
    assert [child.run_id for child in job_run.children] == ids
    items = job_run.tasks[1].items
    assert [item.steps[0].child_run_id for item in items] == ids
    expected = [f"wrote Polish wrote Draft s{i}" for i in range(count)]
    assert struct_to_dict(job_run.tasks[1].outputs) == {"summary": expected}


def test_a_failed_child_fails_the_step_with_the_childs_error(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    child = {
        "job_id": "child",
        "input_config": {"payload": {"section": ""}},
        "tasks": [
            {
                "task_id": "final",
                "steps": [
                    {
                        "step_type": 1,
                        "function_call_config": {
                            "function_name": "json_parse",
                            "request": "%section%",
                        },
                        "output_config": {"payload": {"summary": "%response%"}},
                    }
                ],
            }
        ],
    }
    job_run = _run(_parent(child), fake_registry)  # "tides" is no JSON

    assert job_run.status == run_pb2.RUN_STATUS_FAILED
    step = job_run.tasks[0].steps[0]
    assert step.status == run_pb2.RUN_STATUS_FAILED
    assert step.error.type == "SubJobError"
    assert step.error.message.startswith("sub-job 'child': task 'final' failed: ")
    assert job_run.children[0].status == run_pb2.RUN_STATUS_FAILED
    assert step.child_run_id == job_run.children[0].run_id
    assert fake_server.count() == 0  # the title step never ran
    assert len(job_run.tasks[0].steps) == 1


def test_an_unchanged_replay_makes_no_calls(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = _parent()
    first = _run(job, fake_registry)
    calls = fake_server.count()

    again = _run(job, fake_registry, replay=ReplaySource(first))

    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == calls
    assert struct_to_dict(again.outputs) == struct_to_dict(first.outputs)
    [child] = again.children
    assert child.run_id == f"{again.run_id}~write~0"
    assert all(
        step.reused_from_run_id == first.children[0].run_id
        for task in child.tasks
        for step in task.steps
    )
    assert again.tasks[0].steps[1].reused_from_run_id == first.run_id


def test_an_edited_child_response_reruns_only_what_is_downstream_of_it(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = _parent()
    first = _run(job, fake_registry)
    calls = fake_server.count()
    edited = run_pb2.JobRun()
    edited.CopyFrom(first)
    draft = edited.children[0].tasks[0].steps[0]
    draft.response_text = "an edited draft"
    draft.outputs.Clear()  # outputs follow the edited response

    again = _run(job, fake_registry, replay=ReplaySource(edited))

    assert again.status == run_pb2.RUN_STATUS_SUCCEEDED, again.error.message
    assert fake_server.count() == calls + 2  # the child's polish, then the parent's title
    child = again.children[0]
    assert child.tasks[0].steps[0].reused_from_run_id == first.children[0].run_id
    assert child.tasks[1].steps[0].user_prompt == "Polish an edited draft"
    assert not child.tasks[1].steps[0].reused_from_run_id
    title = again.tasks[0].steps[1]
    assert not title.reused_from_run_id
    assert "Polish an edited draft" in title.user_prompt


def test_a_replay_plan_looks_into_the_child_and_matches_the_replay(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    job = _parent()
    first = _run(job, fake_registry)
    unchanged = plan_replay(job, first, context_for(fake_registry))
    assert (unchanged.to_run, unchanged.model_calls) == (0, 0)
    assert [(s.task_id, s.step_type, s.action) for s in unchanged.steps] == [
        ("write.0>draft", "model", "reuse"),
        ("write.0>final", "model", "reuse"),
        ("write", "sub_job", "reuse"),
        ("write", "model", "reuse"),
    ]

    edited = run_pb2.JobRun()
    edited.CopyFrom(first)
    draft = edited.children[0].tasks[0].steps[0]
    draft.response_text = "an edited draft"
    draft.outputs.Clear()
    plan = plan_replay(job, edited, context_for(fake_registry))
    assert [(s.task_id, s.action) for s in plan.steps] == [
        ("write.0>draft", "reuse"),
        ("write.0>final", "run"),
        ("write", "run"),
        ("write", "run"),
    ]
    assert plan.model_calls == 2
    calls = fake_server.count()
    _run(job, fake_registry, replay=ReplaySource(edited))
    assert fake_server.count() - calls == plan.model_calls

"""Step plans: derived once per distinct config, by validation, and never stale."""

from __future__ import annotations

import pytest

from llm_scheduler import Validator
from llm_scheduler.config.structs import to_struct
from llm_scheduler.config.working_set import WorkingSetCache
from llm_scheduler.engine import plans
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.v1 import config_pb2, run_pb2


def _step(prompt: str, defaults: dict[str, object] | None = None) -> config_pb2.StepConfig:
    step = config_pb2.StepConfig(id="s")
    step.model_query_config.model_key = "OFFLINE"
    step.model_query_config.user_prompt = prompt
    if defaults is not None:
        step.input_config.payload.CopyFrom(to_struct(defaults))
    return step


def test_validation_plans_the_steps_it_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    step = _step("Hello %name% (validated)", {"name": "world"})
    Validator(models=ModelRegistry()).check_step(step)

    def never(_: config_pb2.StepConfig) -> plans.StepPlan:
        raise AssertionError("a validated step was planned again")

    monkeypatch.setattr(plans, "_build_step_plan", never)
    plan = plans.step_plan(config_pb2.StepConfig.FromString(step.SerializeToString()))
    assert plan.used == ("name",)
    assert plan.query is not None and plan.query.user.names == {"name"}


def test_an_edited_config_gets_its_own_plan() -> None:
    step = _step("first %a%")
    first = plans.step_plan(step)
    step.model_query_config.user_prompt = "second %b%"
    second = plans.step_plan(step)
    assert first.used == ("a",) and second.used == ("b",)


def test_fresh_defaults_are_copies_a_run_may_keep() -> None:
    plan = plans.step_plan(_step("%items%", {"items": [1, 2], "flat": "x"}))
    mine = plan.fresh_defaults()
    mine["items"].append(3)
    assert plan.fresh_defaults()["items"] == [1, 2]


def test_a_full_cache_drops_its_older_half(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plans, "_plans", WorkingSetCache(8))
    steps = [_step(f"prompt {i} %x%") for i in range(20)]
    for step in steps:
        plans.step_plan(step)
    assert 4 <= len(plans._plans) <= 8
    assert plans.step_plan(steps[-1]).query is not None  # recent plans are still there


def test_a_job_larger_than_the_cache_keeps_every_plan_its_validation_derived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fixed bound made a job with more distinct steps than it holds derive every plan twice
    # (validation, then the run): per-step cost rose 1.7-1.9x above 4,096 steps.
    monkeypatch.setattr(plans, "_plans", WorkingSetCache(8))
    job = config_pb2.JobConfig(job_id="big")
    task = job.tasks.add(task_id="t")
    for i in range(50):
        task.steps.add().CopyFrom(_step(f"prompt {i} %x%"))
        task.steps[i].id = f"s{i}"
    job.input_config.payload.update({"x": "1"})
    Validator().check_job(job)
    derived = {id(plan) for plan in plans._plans._entries.values()}
    # 50 steps; what they share: the plan of the step without its prompts, id and name, its
    # (empty) output, its query parts, and the compiled (empty) system prompt
    assert plans._plans.capacity >= 100 and len(derived) == 54
    assert all(id(plans.step_plan(step)) in derived for step in task.steps)
    assert len(plans._plans) == 54  # the run derives nothing


def test_a_task_plan_holds_its_steps_plans_and_is_derived_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    task = config_pb2.TaskConfig(task_id="t")
    task.steps.add().CopyFrom(_step("one %a%"))
    task.steps.add().CopyFrom(_step("two %b%"))
    task.steps[1].output_config.payload.update({"x": "", "y": ""})
    plan = plans.task_plan(task)
    assert plan.steps == tuple(plans.step_plan(step) for step in task.steps)
    assert plan.produced == {"response", "x", "y"}

    def never(_: config_pb2.TaskConfig) -> plans.TaskPlan:
        raise AssertionError("a planned task was planned again")

    monkeypatch.setattr(plans, "_build_task_plan", never)
    assert plans.task_plan(config_pb2.TaskConfig.FromString(task.SerializeToString())) is plan


def test_a_steps_static_record_fields_are_what_setting_them_one_by_one_gives() -> None:
    step = _step("hi %a%")
    step.id, step.name = "s1", "greet"
    step.model_query_config.system_prompt = "be brief"
    step.model_query_config.parameters.update({"temperature": 0.5})
    step.model_query_config.response_format.type = config_pb2.ResponseFormat.TYPE_JSON
    plan = plans.step_plan(step)
    assert plan.query is not None
    merged = run_pb2.StepRun()
    merged.MergeFromString(plan.record_head)
    merged.MergeFromString(plan.query.resolved("offline", "OFFLINE").record_fields)

    expected = run_pb2.StepRun(step_id="s1", name="greet", step_type=step.step_type)
    expected.model_key, expected.provider, expected.provider_model = "OFFLINE", "offline", "OFFLINE"
    expected.parameters.CopyFrom(plan.query.parameters_struct)
    expected.response_format.CopyFrom(step.model_query_config.response_format)
    assert merged.SerializeToString(deterministic=True) == expected.SerializeToString(
        deterministic=True
    )
    assert plan.query.resolved("offline", "OFFLINE") is plan.query.resolved("offline", "OFFLINE")


def test_a_step_with_default_id_name_and_type_has_no_record_head() -> None:
    step = config_pb2.StepConfig()
    step.model_query_config.model_key = "OFFLINE"
    step.model_query_config.user_prompt = "hi"
    assert plans.step_plan(step).record_head == b""


def test_outputs_that_are_all_the_response_are_planned_as_such() -> None:
    assert plans.step_plan(_step("%a%")).response_outputs == ("response",)
    step = _step("%a%")
    step.output_config.payload.update({"x": "", "y": ""})
    assert plans.step_plan(step).response_outputs == ("x", "y")
    step.output_config.payload.update({"z": "%response%!"})  # a template
    assert plans.step_plan(step).response_outputs is None
    passed = _step("%a%", {"x": "default"})
    passed.output_config.payload.update({"x": ""})  # passes the variable through
    assert plans.step_plan(passed).response_outputs is None


def test_queries_differing_only_in_their_prompts_share_their_other_parts() -> None:
    first, second = _step("first %a%"), _step("second %b%")
    for step in (first, second):
        step.model_query_config.parameters.update({"temperature": 0.5})
    other = _step("third %c%")
    other.model_query_config.parameters.update({"temperature": 0.7})
    a, b, c = (plans.step_plan(step).query for step in (first, second, other))
    assert a is not None and b is not None and c is not None
    assert a.user.names == {"a"} and b.user.names == {"b"}
    assert a.user_template is not b.user_template
    assert a.parameters_struct is b.parameters_struct and a.parameters == {"temperature": 0.5}
    assert a.resolved("offline", "m") is b.resolved("offline", "m")
    assert c.parameters == {"temperature": 0.7}
    assert c.resolved("offline", "m").record_fields != a.resolved("offline", "m").record_fields


def test_tasks_producing_the_same_names_share_one_set() -> None:
    plans_of = []
    for prompt in ("one %a%", "two %a%"):
        task = config_pb2.TaskConfig(task_id="t")
        task.steps.add().CopyFrom(_step(prompt))
        plans_of.append(plans.task_plan(task))
    assert plans_of[0] is not plans_of[1]
    assert plans_of[0].produced is plans_of[1].produced == {"response"}


@pytest.mark.parametrize(
    ("system", "user", "defaults"),
    [
        ("", "Item 17: %subject%", None),
        ("You are %role%.", "", {"role": "terse"}),
        ("Be brief.", "%a.b% and %c|truncate:3%", {"a": {"b": 1}}),
    ],
)
def test_a_model_step_planned_from_its_promptless_plan_is_the_plan_derived_whole(
    system: str, user: str, defaults: dict[str, object] | None
) -> None:
    step = _step(user, defaults)
    step.name = "named"
    step.model_query_config.system_prompt = system
    step.model_query_config.parameters.update({"temperature": 0.2})
    step.output_config.payload.update({"answer": "", "echo": "%response%!"})
    shared = plans.step_plan(step)  # through the plan of the same step without its prompts
    whole = plans._build_any_step_plan(step)
    assert shared.query is not None and whole.query is not None
    for name in ("label", "defaults", "used", "outputs", "function_name", "response_outputs"):
        assert getattr(shared, name) == getattr(whole, name), name
    assert (shared.record_head, shared.fresh_defaults()) == (
        whole.record_head,
        whole.fresh_defaults(),
    )
    for name in ("model_key", "system", "user", "parameters", "response_format", "static_json"):
        assert getattr(shared.query, name) == getattr(whole.query, name), name
    scope = {"subject": "owls", "role": "terse", "a": {"b": 1}, "c": "abcdef"}
    for attribute in ("system_template", "user_template"):
        assert getattr(shared.query, attribute).render(scope) == getattr(
            whole.query, attribute
        ).render(scope)
    assert shared.query.resolved("offline", "m") == whole.query.resolved("offline", "m")

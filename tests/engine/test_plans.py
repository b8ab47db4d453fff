"""Step plans: derived once per distinct config, by validation, and never stale."""

from __future__ import annotations

import pytest

from llm_scheduler import Validator
from llm_scheduler.config.structs import to_struct
from llm_scheduler.config.working_set import WorkingSetCache
from llm_scheduler.engine import plans
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.v1 import config_pb2


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
    assert plans._plans.capacity >= 100 and len(derived) == 51  # 50 steps, 1 (empty) output
    assert all(id(plans.step_plan(step)) in derived for step in task.steps)
    assert len(plans._plans) == 51  # the run derives nothing

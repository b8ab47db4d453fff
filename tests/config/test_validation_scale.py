"""Validation of large jobs: the checks must take time linear in the job, not quadratic.

Wall time is not asserted (CI machines vary); `python -m bench.validation` measures it. These
tests validate jobs of 10,000 tasks, which took 30 s to 2 min when validation looked at every
task once per task, and check the work was done.
"""

from __future__ import annotations

import pytest

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.validation import Validator
from llm_scheduler.errors import ConfigError
from llm_scheduler.testing.sized_jobs import chain_job, fan_out_job

SIZE = 10_000


def test_a_wide_fan_out_and_join_validates() -> None:
    job = fan_out_job(SIZE)
    Validator().check_job(job)
    graph = TaskGraph.from_job(job)
    assert len(graph.predecessors["end"]) == SIZE - 2
    assert [len(level) for level in graph.levels()] == [1, SIZE - 2, 1]


def test_a_long_chain_validates() -> None:
    job = chain_job(SIZE)
    Validator().check_job(job)
    assert len(TaskGraph.from_job(job).levels()) == SIZE


def test_a_long_chain_still_reports_a_name_only_a_far_ancestor_produces() -> None:
    job = chain_job(SIZE)
    job.tasks[0].output_config.payload.update({"facts": "%response%", "response": "%response%"})
    job.tasks[-1].steps[0].model_query_config.user_prompt = "%facts%"
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    [problem] = info.value.problems
    assert problem.path == f"tasks[{SIZE - 1}].steps[0].model_query_config.user_prompt"
    assert "task 't0' produces it" in problem.message


def test_many_problems_in_a_large_job_are_all_reported_with_short_hints() -> None:
    job = chain_job(SIZE)
    job.input_config.payload.update({f"input{i}": i for i in range(SIZE)})
    for index, task in enumerate(job.tasks):
        task.next_tasks.append(f"missing{index}")
        task.steps[0].model_query_config.user_prompt += " %unknown%"
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    problems = info.value.problems
    assert len(problems) == 2 * SIZE
    links = [p for p in problems if p.path.endswith("next_tasks[0]")]
    assert len(links) == SIZE
    assert links[0].hint == (
        f"use one of: {', '.join(f't{i}' for i in range(20))} and {SIZE - 20} more"
    )
    names = [p for p in problems if "%unknown%" in p.message]
    assert len(names) == SIZE
    # The hint lists the first names in scope (payload keys sorted), not all 10,000 job inputs.
    first = sorted(f"input{i}" for i in range(SIZE))[:20]
    assert names[0].hint.endswith(f"(available here: {', '.join(first)}, ...)")


def test_a_step_config_repeated_in_many_tasks_is_reported_wherever_it_is_wrong() -> None:
    # Validation checks a distinct step config once, and its reads in every place it occurs.
    job = chain_job(50)
    for task in job.tasks:
        task.steps[0].model_query_config.model_key = "NO_SUCH_MODEL"
    job.tasks[0].steps[0].model_query_config.user_prompt = "%topic%"
    job.tasks[7].steps[0].model_query_config.user_prompt = "%topic%"  # no 'topic' in t7
    job.input_config.payload.update({"topic": "x"})
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    paths = [problem.path for problem in info.value.problems]
    model_keys = [p for p in paths if p.endswith("model_key")]
    assert model_keys == [f"tasks[{i}].steps[0].model_query_config.model_key" for i in range(50)]
    assert "tasks[7].steps[0].model_query_config.user_prompt" not in paths  # the job input
    job.input_config.Clear()
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    prompts = [p.path for p in info.value.problems if p.path.endswith("user_prompt")]
    assert prompts == [
        "tasks[0].steps[0].model_query_config.user_prompt",
        "tasks[7].steps[0].model_query_config.user_prompt",
    ]


def test_steps_differing_only_in_their_prompts_are_each_checked() -> None:
    # Steps differing in their texts share the checks of the rest, not those of the texts.
    job = fan_out_job(SIZE)
    for index, task in enumerate(job.tasks):
        task.steps[0].model_query_config.user_prompt = f"Item {index}: %response%"
    job.tasks[0].steps[0].model_query_config.user_prompt = "Start"
    Validator().check_job(job)
    prompts = {
        3: "Item 3: %nothing%",
        5: "Item 5: %response|nofilter%",
        8: "Item 8: %response | json%",
        9: "Item 9: %response|default:'x'% %topic%",
    }
    for index, prompt in prompts.items():
        job.tasks[index].steps[0].model_query_config.user_prompt = prompt
    job.tasks[6].steps[0].model_query_config.model_key = "NO_SUCH_MODEL"
    job.tasks[7].steps.add().CopyFrom(job.tasks[7].steps[0])
    job.tasks[7].steps[1].model_query_config.user_prompt = ""
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    found = [(p.path.split(".", 2)[0], p.message[:24]) for p in info.value.problems]
    assert found == [
        ("tasks[3]", "%nothing% has no value: "),
        ("tasks[5]", "%response|nofilter%: unk"),
        ("tasks[6]", "unknown model key 'NO_SU"),
        ("tasks[7]", "no prompt"),
        ("tasks[8]", "'%response | json%' look"),
        ("tasks[9]", "%topic% has no value: no"),
    ]


def test_the_message_says_a_problem_repeated_at_many_places_once() -> None:
    job = chain_job(200)
    for task in job.tasks:
        task.steps[0].model_query_config.model_key = "NO_SUCH_MODEL"
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    assert len(info.value.problems) == 200  # every one is kept
    hint = info.value.problems[0].hint
    assert str(info.value).splitlines() == [
        "invalid config, 200 problems:",
        "  - tasks[0].steps[0].model_query_config.model_key (also at "
        "tasks[1].steps[0].model_query_config.model_key, "
        "tasks[2].steps[0].model_query_config.model_key, "
        "tasks[3].steps[0].model_query_config.model_key and 196 more): "
        f"unknown model key 'NO_SUCH_MODEL' (hint: {hint})",
    ]


def test_the_message_lists_at_most_50_problems() -> None:
    job = chain_job(200)
    for task in job.tasks:
        task.next_tasks.append(f"missing-{task.task_id}")  # a distinct problem per task
    with pytest.raises(ConfigError) as info:
        Validator().check_job(job)
    assert len(info.value.problems) == 200
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + 50 + 1
    assert lines[1].startswith("  - tasks[0].next_tasks[0]: no task 'missing-t0' in this job")
    assert lines[-1] == "  - ... and 150 more (ConfigError.problems lists every one)"

"""The id rule: ids become parts of store paths (jobs/{job_id}, job_runs/{run_id}/...)."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import strategies as st

from llm_scheduler.config import formats
from llm_scheduler.config.ids import (
    IDENTIFIER_PATTERN,
    MAX_ID_LENGTH,
    MAX_JOB_ID_LENGTH,
    PLAIN_ID,
    all_plain,
    check_id,
)
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.job import new_run_id
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2


@pytest.mark.parametrize(
    "value", ["a", "write-report", "step_2", "v1.2", "A" * MAX_ID_LENGTH, "_x", "x__", "..a", "-"]
)
def test_valid_ids(value: str) -> None:
    assert check_id("task id", value) is None
    assert IDENTIFIER_PATTERN.fullmatch(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "task id is empty"),
        ("a/b", "task id 'a/b' holds '/', which ids cannot hold"),
        ("a b", "task id 'a b' holds a space, which ids cannot hold"),
        ("x\n\ud800y", r"task id 'x\n\ud800y' holds '\n', '\ud800', which ids cannot hold"),
        ("café", r"task id 'caf\xe9' holds '\xe9', which ids cannot hold"),
        ("a/b c:d*e?f!", "holds '/', a space, ':', '*', '?', ..., which ids cannot hold"),
        (".", "task id '.' is not a valid id ('.' and '..' name directories)"),
        ("..", "task id '..' is not a valid id ('.' and '..' name directories)"),
        ("__name__", "task id '__name__' starts and ends with '__', which Firestore reserves"),
        ("____", "starts and ends with '__', which Firestore reserves"),
        ("a" * 129, "task id is 129 characters long, more than the 128 allowed"),
    ],
)
def test_invalid_ids(value: str, message: str) -> None:
    problem = check_id("task id", value)
    assert problem is not None
    assert problem.endswith(message)


def test_a_run_id_made_from_the_longest_job_id_is_a_valid_id() -> None:
    job_id = "j" * MAX_JOB_ID_LENGTH
    assert check_id("job id", job_id, max_length=MAX_JOB_ID_LENGTH) is None
    assert check_id("job id", job_id + "j", max_length=MAX_JOB_ID_LENGTH) == (
        f"job id is {MAX_JOB_ID_LENGTH + 1} characters long, more than the "
        f"{MAX_JOB_ID_LENGTH} allowed"
    )
    assert check_id("run id", new_run_id(job_id)) is None


def _problems(text: str) -> list[ConfigProblem]:
    job = formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file="job.json")
    with pytest.raises(ConfigError) as info:
        Validator(file="job.json").check_job(job)
    return info.value.problems


_STEPS = '"steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}}]'


def test_a_task_id_with_a_slash_is_reported_at_its_path() -> None:
    [problem] = _problems(
        f'{{"tasks": [{{"task_id": "a", "next_task": "b/c", {_STEPS}}},'
        f' {{"task_id": "b/c", {_STEPS}}}]}}'
    )
    assert problem.path == "tasks[1].task_id"
    assert problem.file == "job.json"
    assert problem.message == "task id 'b/c' holds '/', which ids cannot hold"
    assert problem.hint == (
        "use only letters, digits, '_', '-' and '.' (not '.' or '..' alone, and not __name__)"
    )


def test_a_job_id_is_checked_with_its_shorter_limit() -> None:
    long_id = "j" * (MAX_JOB_ID_LENGTH + 1)
    [problem] = _problems(f'{{"job_id": "{long_id}", "tasks": [{{"task_id": "a", {_STEPS}}}]}}')
    assert problem.path == "job_id"
    assert "more than the 100 allowed" in problem.message
    [problem] = _problems(f'{{"job_id": "__j__", "tasks": [{{"task_id": "a", {_STEPS}}}]}}')
    assert problem.path == "job_id"


def test_every_bad_task_id_is_reported() -> None:
    problems = _problems(
        f'{{"tasks": [{{"task_id": "..", "next_tasks": ["x y"], {_STEPS}}},'
        f' {{"task_id": "x y", {_STEPS}}}]}}'
    )
    assert [p.path for p in problems] == ["tasks[0].task_id", "tasks[1].task_id"]


def test_a_task_run_alone_has_its_id_checked() -> None:
    task = config_pb2.TaskConfig(task_id="a/b")
    task.steps.add(
        model_query_config=config_pb2.ModelQueryConfig(model_key="OFFLINE", user_prompt="hi")
    )
    with pytest.raises(ConfigError) as info:
        Validator().check_tasks([task])
    [problem] = info.value.problems
    assert problem.path == "task_id"
    with pytest.raises(ConfigError) as info:
        Validator().check_tasks([task, task])
    assert [p.path for p in info.value.problems] == ["[0].task_id", "[1].task_id"]


@hypothesis.given(st.text(alphabet="ab_.-/ _A9\u00e9", max_size=8) | st.text(max_size=140))
def test_the_validators_fast_path_only_accepts_ids_the_rule_accepts(value: str) -> None:
    # `Validator` skips `check_id` for ids its own pattern accepts: it must never let through
    # an id the rule refuses.
    if PLAIN_ID.fullmatch(value):
        assert check_id("task id", value) is None


_ID_TEXT = st.text(alphabet="ab_.-/ _A9\u00e9\n", max_size=8) | st.text(max_size=140)


@hypothesis.given(st.lists(_ID_TEXT, max_size=6))
def test_the_validators_one_match_for_all_ids_is_one_match_per_id(ids: list[str]) -> None:
    # `Validator` matches a job's task ids in one go: a newline in an id must not split it.
    assert all_plain(ids) == (bool(ids) and all(PLAIN_ID.fullmatch(value) for value in ids))


def test_one_match_for_all_ids_refuses_an_id_holding_a_newline() -> None:
    assert all_plain(["a", "b"])
    assert not all_plain(["a\nb"])
    assert not all_plain(["a", "b\n"])
    assert not all_plain([])

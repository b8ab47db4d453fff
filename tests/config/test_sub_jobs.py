"""Sub-job steps in configs: children read from files and inlined, and every validation error."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, model_keys_of
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2


def _query(prompt: str, outputs: dict[str, Any], key: str = "OFFLINE") -> dict[str, Any]:
    return {
        "model_query_config": {"model_key": key, "user_prompt": prompt},
        "output_config": {"payload": outputs},
    }


CHILD: dict[str, Any] = {
    "job_id": "child",
    "input_config": {"payload": {"section": ""}},
    "tasks": [
        {"task_id": "draft", "next_task": "final", "steps": [_query("Draft %section%", {"d": ""})]},
        {"task_id": "final", "steps": [_query("Polish %d%", {"summary": ""})]},
    ],
}


def _parent(
    sub_job_config: dict[str, Any], outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "job_id": "parent",
        "input_config": {"payload": {"topic": "tides"}},
        "tasks": [
            {
                "task_id": "write",
                "steps": [
                    {
                        "step_type": 3,
                        "sub_job_config": sub_job_config,
                        "output_config": {
                            "payload": outputs or {"summary": "%response.final.summary%"}
                        },
                    },
                    _query("Title for %summary%", {"title": ""}),
                ],
            }
        ],
    }


def _write(path: pathlib.Path, config: dict[str, Any]) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


def _problems(config: dict[str, Any]) -> list[ConfigProblem]:
    job = formats.loads(json.dumps(config), config_pb2.JobConfig, formats.ConfigFormat.JSON)
    with pytest.raises(ConfigError) as info:
        Validator(file="job.json").check_job(job)
    assert all(problem.hint for problem in info.value.problems)
    return info.value.problems


def _valid(config: dict[str, Any]) -> None:
    job = formats.loads(json.dumps(config), config_pb2.JobConfig, formats.ConfigFormat.JSON)
    Validator().check_job(job)


# Loading


def test_a_child_file_is_read_relative_to_the_config_and_inlined(tmp_path: pathlib.Path) -> None:
    _write(tmp_path / "parts" / "child.json", CHILD)
    parent = _write(
        tmp_path / "parent.json",
        _parent({"job_path": "parts/child.json", "inputs": {"section": "%topic%"}}),
    )

    job = formats.load(parent, config_pb2.JobConfig)

    sub = job.tasks[0].steps[0].sub_job_config
    assert sub.job_path == "parts/child.json"  # kept for display
    assert sub.job.job_id == "child"
    assert [task.task_id for task in sub.job.tasks] == ["draft", "final"]
    Validator().check_job(job)


def test_children_of_children_are_read_relative_to_their_own_file(tmp_path: pathlib.Path) -> None:
    _write(tmp_path / "a" / "b" / "child.json", CHILD)
    middle = _parent({"job_path": "b/child.json", "inputs": {"section": "%topic%"}})
    _write(tmp_path / "a" / "middle.json", middle)
    top = _write(
        tmp_path / "top.json",
        _parent(
            {"job_path": "a/middle.json", "inputs": {"topic": "%topic%"}},
            {"summary": "%response.write.title%"},
        ),
    )

    job = formats.load(top, config_pb2.JobConfig)

    middle_job = job.tasks[0].steps[0].sub_job_config.job
    assert middle_job.tasks[0].steps[0].sub_job_config.job.job_id == "child"
    Validator().check_job(job)
    assert model_keys_of(job.tasks[0].steps) == {"OFFLINE"}


def test_an_inline_child_needs_no_file() -> None:
    _valid(_parent({"job": CHILD, "inputs": {"section": "%topic%"}}))


def test_a_missing_child_file_names_it(tmp_path: pathlib.Path) -> None:
    parent = _write(tmp_path / "parent.json", _parent({"job_path": "nope.json"}))

    with pytest.raises(ConfigError) as info:
        formats.load(parent, config_pb2.JobConfig)

    [problem] = info.value.problems
    assert problem.file == str(parent)
    assert problem.path == "tasks[0].steps[0].sub_job_config.job_path"
    assert str(tmp_path / "nope.json") in problem.message
    assert problem.message.startswith("cannot load the sub-job")


def test_an_unparsable_child_file_names_it(tmp_path: pathlib.Path) -> None:
    (tmp_path / "child.json").write_text('{"tasks": [')
    parent = _write(tmp_path / "parent.json", _parent({"job_path": "child.json"}))

    with pytest.raises(ConfigError) as info:
        formats.load(parent, config_pb2.JobConfig)

    problem = info.value.problems[0]
    assert problem.path == "tasks[0].steps[0].sub_job_config.job_path"
    assert str(tmp_path / "child.json") in problem.message


def test_a_job_that_includes_itself_is_refused_naming_the_files(tmp_path: pathlib.Path) -> None:
    itself = _write(tmp_path / "self.json", _parent({"job_path": "self.json"}))

    with pytest.raises(ConfigError) as info:
        formats.load(itself, config_pb2.JobConfig)

    [problem] = info.value.problems
    assert problem.message == f"the sub-jobs form a cycle: {itself} -> {itself}"
    assert "cannot include itself" in problem.hint


def test_a_cycle_through_other_files_is_refused_naming_them(tmp_path: pathlib.Path) -> None:
    a = _write(tmp_path / "a.json", _parent({"job_path": "sub/b.json"}))
    b = _write(tmp_path / "sub" / "b.json", _parent({"job_path": "../a.json"}))

    with pytest.raises(ConfigError) as info:
        formats.load(a, config_pb2.JobConfig)

    [problem] = info.value.problems
    assert problem.file == str(b)  # the step that closes the cycle
    assert problem.path == "tasks[0].steps[0].sub_job_config.job_path"
    assert problem.message == f"the sub-jobs form a cycle: {a} -> {b} -> {a}"


def test_a_child_used_twice_is_no_cycle(tmp_path: pathlib.Path) -> None:
    _write(tmp_path / "child.json", CHILD)
    config = _parent({"job_path": "child.json", "inputs": {"section": "%topic%"}})
    config["tasks"][0]["steps"].insert(1, dict(config["tasks"][0]["steps"][0]))
    parent = _write(tmp_path / "parent.json", config)

    job = formats.load(parent, config_pb2.JobConfig)

    assert job.tasks[0].steps[1].sub_job_config.job.job_id == "child"


def test_both_a_path_and_an_inline_job_in_a_file_is_refused(tmp_path: pathlib.Path) -> None:
    _write(tmp_path / "child.json", CHILD)
    parent = _write(tmp_path / "parent.json", _parent({"job_path": "child.json", "job": CHILD}))

    with pytest.raises(ConfigError) as info:
        formats.load(parent, config_pb2.JobConfig)

    [problem] = info.value.problems
    assert (problem.path, problem.message) == (
        "tasks[0].steps[0].sub_job_config",
        "both job_path and job are set",
    )


# Validation


def test_a_sub_job_step_needs_its_config() -> None:
    config = _parent({"job": CHILD})
    del config["tasks"][0]["steps"][0]["sub_job_config"]
    problems = _problems(config)
    assert [(p.path, p.message) for p in problems] == [
        ("tasks[0].steps[0].sub_job_config", "missing")
    ]


def test_a_sub_job_config_needs_a_job() -> None:
    problems = _problems(_parent({"inputs": {"section": "%topic%"}}))
    assert [(p.path, p.message) for p in problems] == [
        ("tasks[0].steps[0].sub_job_config", "no job")
    ]


def test_a_job_path_that_was_not_loaded_says_how_to_load_it() -> None:
    [problem] = _problems(_parent({"job_path": "child.json"}))
    assert problem.path == "tasks[0].steps[0].sub_job_config.job_path"
    assert problem.message == "the sub-job 'child.json' was not loaded"


def test_a_sub_job_config_on_another_step_type_is_reported() -> None:
    config = _parent({"job": CHILD, "inputs": {"section": "%topic%"}})
    config["tasks"][0]["steps"][1]["sub_job_config"] = {"job": CHILD}
    problems = _problems(config)
    assert [(p.path, p.message) for p in problems] == [
        ("tasks[0].steps[1].sub_job_config", "set on a model query step")
    ]


def test_the_childs_problems_are_reported_with_the_path_prefixed() -> None:
    child = json.loads(json.dumps(CHILD))
    child["tasks"][1]["steps"][0]["model_query_config"]["model_key"] = "NOPE"
    problems = _problems(_parent({"job": child, "inputs": {"section": "%topic%"}}))
    assert [(p.path, p.file) for p in problems] == [
        (
            "tasks[0].steps[0].sub_job_config.job.tasks[1].steps[0].model_query_config.model_key",
            "job.json",
        )
    ]
    assert problems[0].message == "unknown model key 'NOPE'"


def test_an_input_the_child_needs_must_be_routed() -> None:
    child = json.loads(json.dumps(CHILD))
    del child["input_config"]
    [problem] = _problems(_parent({"job": child}))
    assert problem.path == (
        "tasks[0].steps[0].sub_job_config.job.tasks[0].steps[0].model_query_config.user_prompt"
    )
    assert problem.message == "%section% has no value: nothing upstream provides 'section'"
    assert 'add "section": "%...%" to its sub_job_config.inputs' in problem.hint


def test_a_routed_input_the_child_does_not_have_is_refused() -> None:
    [problem] = _problems(
        _parent({"job": CHILD, "inputs": {"section": "%topic%", "sectoin": "%topic%"}})
    )
    assert problem.path == "tasks[0].steps[0].sub_job_config.inputs.sectoin"
    assert problem.message == "the sub-job has no input 'sectoin'"
    assert "section" in problem.hint


def test_a_routed_input_reads_the_steps_variables() -> None:
    [problem] = _problems(_parent({"job": CHILD, "inputs": {"section": "%topik%"}}))
    assert problem.path == "tasks[0].steps[0].sub_job_config.inputs.section"
    assert problem.message == "%topik% has no value: nothing upstream provides 'topik'"


def test_an_output_must_name_a_final_task_of_the_child() -> None:
    [problem] = _problems(
        _parent(
            {"job": CHILD, "inputs": {"section": "%topic%"}},
            {"summary": "%response.draft.d%"},
        )
    )
    assert problem.path == "tasks[0].steps[0].output_config.payload.summary"
    assert problem.message == "%response.draft.d%: the sub-job has no final task 'draft'"
    assert problem.hint.endswith("by task id: final")


def test_an_output_must_name_an_output_of_the_final_task() -> None:
    [problem] = _problems(
        _parent(
            {"job": CHILD, "inputs": {"section": "%topic%"}},
            {"summary": "%response.final.sumary%"},
        )
    )
    assert problem.message == (
        "%response.final.sumary%: the sub-job's task 'final' has no output 'sumary'"
    )
    assert problem.hint == "use one of its outputs: summary"


def test_the_whole_response_and_no_output_config_are_valid() -> None:
    config = _parent({"job": CHILD, "inputs": {"section": "%topic%"}}, {"all": "%response%"})
    config["tasks"][0]["steps"][1] = _query("Title for %all%", {"title": ""})
    _valid(config)
    del config["tasks"][0]["steps"][0]["output_config"]
    config["tasks"][0]["steps"][1] = _query("Title for %response.final.summary%", {"t": ""})
    _valid(config)

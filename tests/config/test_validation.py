"""Every validation error names the file, the exact field path and a fix."""

from __future__ import annotations

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.parameters import KNOWN_PARAMETERS
from llm_scheduler.config.validation import Validator
from llm_scheduler.config_tools.samples import SEED_STEP_JSON
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.models.providers import adapter_class
from llm_scheduler.v1 import config_pb2

FILE = "job.json"


def load_job(text: str) -> config_pb2.JobConfig:
    return formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file=FILE)


def problems_of(text: str) -> list[ConfigProblem]:
    job = load_job(text)
    with pytest.raises(ConfigError) as info:
        Validator(file=FILE).check_job(job)
    for problem in info.value.problems:
        assert problem.file == FILE
        assert problem.hint
    return info.value.problems


def only_problem(text: str) -> ConfigProblem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def problem_at(problems: list[ConfigProblem], path: str) -> ConfigProblem:
    found = [problem for problem in problems if problem.path == path]
    assert len(found) == 1, f"no single problem at {path!r} in {problems}"
    return found[0]


def assert_valid(text: str) -> None:
    Validator(file=FILE).check_job(load_job(text))


# --- unknown fields (formats.loads) -------------------------------------------------------------


def test_unknown_field_is_reported_with_path_and_suggestion() -> None:
    text = """{
      "tasks": [
        {"task_id": "a", "steps": [{"model_query_config": {"modle_key": "OFFLINE"}}]}
      ]
    }"""
    with pytest.raises(ConfigError) as info:
        load_job(text)
    [problem] = info.value.problems
    assert problem.path == "tasks[0].steps[0].model_query_config.modle_key"
    assert problem.file == FILE
    assert "unknown field 'modle_key' in ModelQueryConfig" in problem.message
    assert problem.hint == "did you mean 'model_key'?"


def test_several_unknown_fields_are_reported_at_once() -> None:
    text = """{
      "taks": [],
      "tasks": [
        {"task_id": "a", "stpes": [], "steps": [{"user_prompt": "hi"}]},
        {"task_id": "b", "next": "a"}
      ]
    }"""
    with pytest.raises(ConfigError) as info:
        load_job(text)
    problems = info.value.problems
    assert [p.path for p in problems] == [
        "taks",
        "tasks[0].stpes",
        "tasks[0].steps[0].user_prompt",
        "tasks[1].next",
    ]
    assert all(p.file == FILE for p in problems)
    assert problems[0].hint == "did you mean 'tasks'?"
    assert problems[1].hint == "did you mean 'steps'?"
    assert "known fields:" in problems[2].message
    assert "4 problems" in str(info.value)


# --- models and parameters ----------------------------------------------------------------------


def test_unknown_model_key_suggests_the_closest() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [
        {"model_query_config": {"model_key": "GEMINI_FLSH", "user_prompt": "hi"}}
      ]}]
    }""")
    assert problem.path == "tasks[0].steps[0].model_query_config.model_key"
    assert problem.message == "unknown model key 'GEMINI_FLSH'"
    assert problem.hint.startswith("did you mean 'GEMINI_FLASH'?")
    assert "provider:model" in problem.hint


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("temperature", '"hot"', "a number from 0 to 2"),
        ("temperature", "3", "a number from 0 to 2"),
        ("max_tokens", "0", "an integer of at least 1"),
        ("top_p", '"1.5"', "a number from 0 to 1"),
        ("stop", "5", "a string or a list of strings"),
    ],
)
def test_bad_parameter_value(name: str, value: str, allowed: str) -> None:
    problem = only_problem(
        '{"tasks": [{"task_id": "a", "steps": [{"model_query_config": {'
        '"model_key": "OFFLINE", "user_prompt": "hi", '
        f'"parameters": {{"{name}": {value}}}'
        "}}]}]}"
    )
    assert problem.path == f"tasks[0].steps[0].model_query_config.parameters.{name}"
    assert problem.message.startswith("bad value")
    assert problem.hint == f"{name} takes {allowed}"


_VALID_VALUES = {
    "temperature": "0.5",
    "top_p": "0.5",
    "top_k": "5",
    "max_tokens": "10",
    "stop": '["x"]',
    "seed": "7",
    "presence_penalty": "0.5",
    "frequency_penalty": "0.5",
}


def _unsupported_parameter() -> tuple[str, str] | None:
    """A (provider, parameter) pair where the provider's adapter lacks a known parameter."""
    for provider in ("openai", "google", "anthropic"):
        try:
            supported = adapter_class(provider).supported_parameters
        except ImportError:
            continue
        for spec in KNOWN_PARAMETERS:
            if spec.name not in supported:
                return provider, spec.name
    return None


def test_parameter_the_provider_does_not_take() -> None:
    found = _unsupported_parameter()
    if found is None:
        pytest.skip("every provider adapter takes every known parameter")
    provider, name = found
    assert set(_VALID_VALUES) == {spec.name for spec in KNOWN_PARAMETERS}
    problem = only_problem(
        '{"tasks": [{"task_id": "a", "steps": [{"model_query_config": {'
        f'"model_key": "{provider}:some-model", "user_prompt": "hi", '
        f'"parameters": {{"{name}": {_VALID_VALUES[name]}}}'
        "}}]}]}"
    )
    assert problem.path == f"tasks[0].steps[0].model_query_config.parameters.{name}"
    assert problem.message == f"{provider} models do not take {name!r}"
    assert problem.hint == "remove it or choose another model"


def test_json_schema_format_needs_a_schema() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [{"model_query_config": {
        "model_key": "OFFLINE",
        "user_prompt": "hi",
        "response_format": {"type": "TYPE_JSON_SCHEMA"}
      }}]}]
    }""")
    assert problem.path == "tasks[0].steps[0].model_query_config.response_format.json_schema"
    assert problem.message == "missing"
    assert "JSON Schema" in problem.hint


def test_json_schema_format_with_a_schema_is_valid() -> None:
    assert_valid("""{
      "tasks": [{"task_id": "a", "steps": [{"model_query_config": {
        "model_key": "OFFLINE",
        "user_prompt": "hi",
        "response_format": {"type": "TYPE_JSON_SCHEMA", "json_schema": {"type": "object"}}
      }}]}]
    }""")


# --- step shape ---------------------------------------------------------------------------------


def test_model_query_config_missing() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [{"id": "s", "step_type": 0}]}]
    }""")
    assert problem.path == "tasks[0].steps[0].model_query_config"
    assert problem.message == "missing"
    assert "model_query_config" in problem.hint


def test_both_configs_set_on_a_model_query_step() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [{
        "step_type": 0,
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"},
        "function_call_config": {"function_name": "json_parse"}
      }]}]
    }""")
    assert problem.path == "tasks[0].steps[0].function_call_config"
    assert problem.message == "set on a model query step"
    assert "step_type" in problem.hint


def test_both_configs_set_on_a_function_call_step() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [{
        "step_type": 1,
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"},
        "function_call_config": {"function_name": "json_parse", "request": "{}"}
      }]}]
    }""")
    assert problem.path == "tasks[0].steps[0].model_query_config"
    assert problem.message == "set on a function call step"
    assert "step_type" in problem.hint


def test_unknown_function_name_suggests_the_closest() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [{
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "json_prase", "request": "{}"}
      }]}]
    }""")
    assert problem.path == "tasks[0].steps[0].function_call_config.function_name"
    assert problem.message == "unknown function 'json_prase'"
    assert problem.hint.startswith("did you mean 'json_parse'?")
    assert "@register_function" in problem.hint


def test_empty_step_list() -> None:
    problem = only_problem('{"tasks": [{"task_id": "a", "steps": []}]}')
    assert problem.path == "tasks[0].steps"
    assert problem.message == "the task has no steps"
    assert problem.hint == "add at least one step"


def test_duplicate_step_ids() -> None:
    problem = only_problem("""{
      "tasks": [{"task_id": "a", "steps": [
        {"id": "ask", "model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}},
        {"id": "ask", "model_query_config": {"model_key": "OFFLINE", "user_prompt": "again"}}
      ]}]
    }""")
    assert problem.path == "tasks[0].steps[1].id"
    assert problem.message == "duplicate step id 'ask'"
    assert problem.hint == "rename one"


# --- variables ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "path"),
    [
        (
            '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "Sum up %topic%"}}',
            "tasks[0].steps[0].model_query_config.user_prompt",
        ),
        (
            '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi",'
            ' "system_prompt": "You know %topic%"}}',
            "tasks[0].steps[0].model_query_config.system_prompt",
        ),
        (
            '{"step_type": 1, "function_call_config": {"function_name": "json_extract",'
            ' "request": {"data": "%response%", "path": "%topic%"}}}',
            "tasks[0].steps[0].function_call_config.request.path",
        ),
        (
            '{"step_type": 1, "function_call_config": {"function_name": "json_parse",'
            ' "request": ["%topic%"]}}',
            "tasks[0].steps[0].function_call_config.request[0]",
        ),
        (
            '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"},'
            ' "output_config": {"payload": {"answer": "%response% on %topic%"}}}',
            "tasks[0].steps[0].output_config.payload.answer",
        ),
    ],
)
def test_variable_nothing_upstream_provides(step: str, path: str) -> None:
    problem = only_problem(
        '{"input_config": {"payload": {"response": "seed"}},'
        f' "tasks": [{{"task_id": "a", "steps": [{step}]}}]}}'
    )
    assert problem.path == path
    assert problem.message == "%topic% has no value: nothing upstream provides 'topic'"
    assert "add 'topic' to an input_config" in problem.hint
    assert "available here: response" in problem.hint


def test_variable_in_a_task_output_template() -> None:
    problem = only_problem("""{
      "tasks": [{
        "task_id": "a",
        "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}}],
        "output_config": {"payload": {"summary": "%response% %missing%"}}
      }]
    }""")
    assert problem.path == "tasks[0].output_config.payload.summary"
    assert "'missing'" in problem.message
    assert "available here: response" in problem.hint


def test_variables_from_inputs_and_earlier_steps_are_in_scope() -> None:
    assert_valid("""{
      "input_config": {"payload": {"language": "French"}},
      "tasks": [{
        "task_id": "a",
        "input_config": {"payload": {"topic": "cats"}},
        "steps": [
          {"id": "draft",
           "input_config": {"payload": {"style": "short"}},
           "model_query_config": {"model_key": "OFFLINE",
             "user_prompt": "A %style% text on %topic% in %language%"},
           "output_config": {"payload": {"draft": "%response%"}}},
          {"id": "parse", "step_type": 1,
           "function_call_config": {"function_name": "json_parse", "request": "%draft%"}}
        ]
      }]
    }""")


def test_variable_produced_only_by_a_non_direct_ancestor() -> None:
    problem = only_problem("""{
      "tasks": [
        {"task_id": "research", "next_task": "outline",
         "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "facts"},
                    "output_config": {"payload": {"facts": "%response%"}}}]},
        {"task_id": "outline", "next_task": "write",
         "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%facts%"}}]},
        {"task_id": "write",
         "steps": [{"model_query_config": {"model_key": "OFFLINE",
                                           "user_prompt": "%response% with %facts%"}}]}
      ]
    }""")
    assert problem.path == "tasks[2].steps[0].model_query_config.user_prompt"
    assert "task 'research' produces it" in problem.message
    assert "direct predecessors" in problem.message
    assert 'add "facts": "" to their output_config' in problem.hint


# --- the task graph -----------------------------------------------------------------------------

_STEP = '"steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"}}]'


def _job(*tasks: str, extra: str = "") -> str:
    """A job whose tasks each get one valid step; ``tasks`` are the other task fields."""
    body = ", ".join(f"{{{task}, {_STEP}}}" for task in tasks)
    return f'{{{extra}"tasks": [{body}]}}'


def test_empty_job() -> None:
    problem = only_problem("{}")
    assert problem.path == "tasks"
    assert problem.message == "the job has no tasks"
    assert problem.hint == "add at least one task"


def test_next_task_to_a_missing_task() -> None:
    problems = problems_of(
        _job('"task_id": "a", "next_task": "b", "next_tasks": ["c", "d"]', '"task_id": "b"')
    )
    assert [p.path for p in problems] == ["tasks[0].next_tasks[0]", "tasks[0].next_tasks[1]"]
    assert problems[0].message == "no task 'c' in this job"
    assert problems[0].hint == "use one of: a, b"


def test_next_task_to_itself() -> None:
    problem = only_problem(_job('"task_id": "a", "next_task": "a"'))
    assert problem.path == "tasks[0].next_task"
    assert problem.message == "task 'a' names itself"
    assert "cannot loop" in problem.hint


def test_two_task_cycle() -> None:
    problem = only_problem(
        _job('"task_id": "a", "next_task": "b"', '"task_id": "b", "next_task": "a"')
    )
    assert problem.path == "tasks"
    assert problem.message == "the tasks form a cycle: a -> b -> a"
    assert "acyclic" in problem.hint


def test_three_task_cycle() -> None:
    problem = only_problem(
        _job(
            '"task_id": "a", "next_task": "b"',
            '"task_id": "b", "next_task": "c"',
            '"task_id": "c", "next_tasks": ["a"]',
        )
    )
    assert problem.path == "tasks"
    assert problem.message == "the tasks form a cycle: a -> b -> c -> a"
    assert "acyclic" in problem.hint


def test_cycle_behind_a_root() -> None:
    problems = problems_of(
        _job(
            '"task_id": "start", "next_task": "a"',
            '"task_id": "a", "next_task": "b"',
            '"task_id": "b", "next_task": "c"',
            '"task_id": "c", "next_tasks": ["a"]',
        )
    )
    assert problem_at(problems, "tasks").message == "the tasks form a cycle: a -> b -> c -> a"


def test_duplicate_task_ids() -> None:
    problem = only_problem(
        _job('"task_id": "a", "next_task": "b"', '"task_id": "b"', '"task_id": "b"')
    )
    assert problem.path == "tasks[2].task_id"
    assert problem.message == "duplicate task id 'b'"
    assert problem.hint == "rename one"


def test_missing_task_id() -> None:
    problems = problems_of(_job('"task_id": "a"', '"name": "no id"'))
    assert problem_at(problems, "tasks[1].task_id").message == "missing"


def test_several_roots_without_start_task() -> None:
    problem = only_problem(_job('"task_id": "a"', '"task_id": "b"'))
    assert problem.path == "start_task"
    assert problem.message == "several tasks have no predecessor (a, b)"
    assert "set start_task" in problem.hint


def test_start_task_with_predecessors() -> None:
    problems = problems_of(
        _job('"task_id": "a", "next_task": "b"', '"task_id": "b"', extra='"start_task": "b", ')
    )
    problem = problem_at(problems, "start_task")
    assert problem.message == "task 'b' runs after a, so it cannot start the job"
    assert "no other task names as next" in problem.hint


def test_start_task_that_does_not_exist() -> None:
    problem = only_problem(_job('"task_id": "a"', extra='"start_task": "z", '))
    assert problem.path == "start_task"
    assert problem.message == "no task 'z'"


def test_unreachable_task() -> None:
    problem = only_problem(
        _job(
            '"task_id": "a", "next_task": "b"',
            '"task_id": "b"',
            '"task_id": "orphan"',
            extra='"start_task": "a", ',
        )
    )
    assert problem.path == "tasks[2]"
    assert problem.message == "task 'orphan' can never run: nothing leads to it from 'a'"
    assert "next_task" in problem.hint


# --- joins --------------------------------------------------------------------------------------

_DIAMOND = """{
  "tasks": [
    {"task_id": "split", "next_tasks": ["pros", "cons"],
     "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "topic"}}]},
    {"task_id": "pros", "next_task": "merge",
     "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "pros"},
                "output_config": {"payload": {"points": "%response%"}}}]},
    {"task_id": "cons", "next_task": "merge",
     "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "cons"},
                "output_config": {"payload": {"points": "%response%"}}}]},
    {"task_id": "merge", INPUT
     "steps": [{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%points%"}}]}
  ]
}"""


def test_join_conflict() -> None:
    problem = only_problem(_DIAMOND.replace("INPUT", ""))
    assert problem.path == "tasks[3].input_config.payload.points"
    assert problem.message == "'points' is produced by several predecessors (pros, cons)"
    assert '"points": {"$combine": "list"}' in problem.hint


def test_join_conflict_fixed_with_combine() -> None:
    assert_valid(
        _DIAMOND.replace("INPUT", '"input_config": {"payload": {"points": {"$combine": "list"}}},')
    )


def test_unknown_combine_mode() -> None:
    problem = only_problem(
        _DIAMOND.replace("INPUT", '"input_config": {"payload": {"points": {"$combine": "zip"}}},')
    )
    assert problem.path == "tasks[3].input_config.payload.points"
    assert problem.message == "unknown combine mode 'zip'"
    assert problem.hint == "use one of list, by_task, concat, first"


# --- whole configs ------------------------------------------------------------------------------


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of("""{
      "tasks": [
        {"task_id": "a", "next_task": "nowhere", "steps": [
          {"model_query_config": {"model_key": "GPT4", "user_prompt": "%who%",
                                  "parameters": {"temperature": "hot"}}},
          {"step_type": 1, "function_call_config": {"function_name": "nope"}}
        ]},
        {"task_id": "a", "steps": []}
      ]
    }""")
    assert len(problems) > 3
    paths = {p.path for p in problems}
    assert {
        "tasks[1].task_id",
        "tasks[0].next_task",
        "tasks[0].steps[0].model_query_config.model_key",
        "tasks[0].steps[0].model_query_config.parameters.temperature",
        "tasks[0].steps[0].model_query_config.user_prompt",
        "tasks[0].steps[1].function_call_config.function_name",
        "tasks[1].steps",
    } <= paths


def test_a_valid_job() -> None:
    assert_valid(
        _job(
            '"task_id": "a", "next_tasks": ["b", "c"]',
            '"task_id": "b", "next_task": "d"',
            '"task_id": "c", "next_task": "d", "output_config": {"payload": {"other": "x"}}',
            '"task_id": "d"',
        )
    )


def test_the_seed_sample_step_validates() -> None:
    file = "seed_step_config.json"
    step = formats.loads(
        SEED_STEP_JSON, config_pb2.StepConfig, formats.ConfigFormat.JSON, file=file
    )
    Validator(file=file).check_step(step)


def test_check_step_reports_the_file_and_path() -> None:
    step = formats.loads(
        '{"model_query_config": {"model_key": "OFFLINE", "user_prompt": "%x%"}}',
        config_pb2.StepConfig,
        formats.ConfigFormat.JSON,
        file="step.json",
    )
    with pytest.raises(ConfigError) as info:
        Validator(file="step.json").check_step(step)
    [problem] = info.value.problems
    assert problem.path == "model_query_config.user_prompt"
    assert problem.file == "step.json"
    Validator(file="step.json").check_step(step, variables=["x"])

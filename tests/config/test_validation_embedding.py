"""Validation of embedding steps: every field is checked before any call, with a path and a hint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.validation import MAX_EMBEDDING_DIMENSIONS, Validator, model_keys_of
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

FILE = "job.json"
EMBEDDING_KEYS = (
    "GEMINI_EMBEDDING, OFFLINE_EMBEDDING, OPENAI_EMBEDDING_LARGE, OPENAI_EMBEDDING_SMALL"
)


def job_with(step: dict[str, Any]) -> config_pb2.JobConfig:
    text = json.dumps(
        {
            "tasks": [{"task_id": "a", "steps": [step]}],
            "input_config": {"payload": {"text": "tides"}},
        }
    )
    return formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file=FILE)


def embedding(**config: Any) -> dict[str, Any]:
    return {"id": "e", "step_type": "STEP_TYPE_EMBEDDING", "embedding_config": config}


def problems(step: dict[str, Any]) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        Validator(file=FILE).check_job(job_with(step))
    for problem in info.value.problems:
        assert problem.file == FILE
        assert problem.hint
    return info.value.problems


def only_problem(step: dict[str, Any]) -> ConfigProblem:
    [problem] = problems(step)
    return problem


@pytest.mark.parametrize(
    "key",
    [
        "OPENAI_EMBEDDING_SMALL",
        "GEMINI_EMBEDDING",
        "OFFLINE_EMBEDDING",
        "openai:text-embedding-3-small",
        "google:gemini-embedding-001",
        "offline:embed",
    ],
)
def test_embedding_keys_and_direct_keys_are_valid(key: str) -> None:
    job = job_with(embedding(model_key=key, input="%text%", dimensions=256))

    Validator(file=FILE).check_job(job)

    assert model_keys_of(job.tasks[0].steps) == {key}


def test_a_chat_key_in_an_embedding_step_lists_the_embedding_keys() -> None:
    problem = only_problem(embedding(model_key="GPT_4O_MINI", input="%text%"))

    assert problem.path == "tasks[0].steps[0].embedding_config.model_key"
    assert problem.message == (
        "'GPT_4O_MINI' is a chat model; an embedding step needs an embedding model"
    )
    assert EMBEDDING_KEYS in problem.hint
    assert "GPT_4O_MINI" not in problem.hint
    assert "set step_type to 0 for a model query" in problem.hint


def test_an_embedding_key_in_a_model_query_lists_the_chat_keys() -> None:
    step = {"model_query_config": {"model_key": "OPENAI_EMBEDDING_SMALL", "user_prompt": "hi"}}

    problem = only_problem(step)

    assert problem.path == "tasks[0].steps[0].model_query_config.model_key"
    assert problem.message == (
        "'OPENAI_EMBEDDING_SMALL' is an embedding model; a model query needs a chat model"
    )
    assert "GEMINI_FLASH" in problem.hint and "GPT_4O_MINI" in problem.hint
    assert "OPENAI_EMBEDDING_SMALL" not in problem.hint.split(";")[0]
    assert "set step_type to 2 for an embedding step" in problem.hint


def test_an_unknown_key_suggests_the_closest_embedding_key() -> None:
    problem = only_problem(embedding(model_key="OPENAI_EMBEDING_SMALL", input="%text%"))

    assert problem.message == "unknown model key 'OPENAI_EMBEDING_SMALL'"
    assert problem.hint.startswith("did you mean 'OPENAI_EMBEDDING_SMALL'?")
    assert f"({EMBEDDING_KEYS})" in problem.hint
    assert "provider one of openai, google, offline" in problem.hint


def test_a_provider_without_embeddings_is_refused() -> None:
    problem = only_problem(embedding(model_key="anthropic:claude-x", input="%text%"))

    assert problem.message == "anthropic has no embeddings API"
    assert problem.hint == "use an embedding model of openai, google, offline"


def test_missing_fields_are_each_reported() -> None:
    found = problems(embedding(dimensions=-1))

    assert [(p.path, p.message) for p in found] == [
        ("tasks[0].steps[0].embedding_config.model_key", "missing"),
        ("tasks[0].steps[0].embedding_config.input", "missing"),
        ("tasks[0].steps[0].embedding_config.dimensions", "-1 is not a vector length"),
    ]
    assert "OPENAI_EMBEDDING_SMALL" in found[0].hint
    assert found[2].hint == "use 1 to 16,384, or 0 (leave it out) for the model's own"


def test_too_many_dimensions() -> None:
    step = embedding(model_key="OFFLINE_EMBEDDING", input="x", dimensions=MAX_EMBEDDING_DIMENSIONS)
    Validator(file=FILE).check_job(job_with(step))

    step["embedding_config"]["dimensions"] = MAX_EMBEDDING_DIMENSIONS + 1
    problem = only_problem(step)

    assert problem.path == "tasks[0].steps[0].embedding_config.dimensions"


def test_an_embedding_step_needs_its_config() -> None:
    problem = only_problem({"step_type": 2})

    assert problem.path == "tasks[0].steps[0].embedding_config"
    assert problem.message == "missing"


def test_sub_configs_of_other_step_types_are_refused() -> None:
    step = embedding(model_key="OFFLINE_EMBEDDING", input="x")
    step["model_query_config"] = {"model_key": "OFFLINE", "user_prompt": "hi"}
    query = {
        "model_query_config": {"model_key": "OFFLINE", "user_prompt": "hi"},
        "embedding_config": {"model_key": "OFFLINE_EMBEDDING", "input": "x"},
    }

    on_embedding = only_problem(step)
    on_query = only_problem(query)

    assert on_embedding.path == "tasks[0].steps[0].model_query_config"
    assert on_embedding.message == "set on an embedding step"
    assert on_embedding.hint == "remove it, or set step_type to 0 for a model query"
    assert on_query.path == "tasks[0].steps[0].embedding_config"
    assert on_query.message == "set on a model query step"
    assert on_query.hint == "remove it, or set step_type to 2 for an embedding"


def test_the_input_template_is_checked_like_a_prompt() -> None:
    problem = only_problem(embedding(model_key="OFFLINE_EMBEDDING", input="%summary%"))

    assert problem.path == "tasks[0].steps[0].embedding_config.input"
    assert problem.message == "%summary% has no value: nothing upstream provides 'summary'"


def test_an_unknown_step_type_is_reported() -> None:
    text = '{"tasks": [{"task_id": "a", "steps": [{"step_type": 4}]}]}'

    with pytest.raises(ConfigError) as info:
        formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file=FILE)

    assert "STEP_TYPE_EMBEDDING (2)" in info.value.problems[0].message

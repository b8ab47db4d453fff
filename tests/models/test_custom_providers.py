"""Custom model providers registered with `register_provider`: in process and in a store.

The providers come from `tests.models.echo_provider`, written against the public API only, as a
user's module would be. The tools' and the cloud function's way of loading it is tested in
tests/runner/test_custom_provider_cli.py and tests/execution/test_custom_provider_function.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from llm_scheduler import (
    ConfigError,
    EmbeddingRequest,
    EmbeddingResponse,
    MissingApiKeyError,
    ModelAdapter,
    ModelClient,
    ModelRegistry,
    ModelRequest,
    ModelResponse,
    ModelSpec,
    RunContext,
    Usage,
    Validator,
    loads,
    register_provider,
    run_job,
    struct_to_dict,
    unregister_provider,
)
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.providers import provider_names
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import REPO_ROOT
from tests.models.echo_provider import ECHO_KEY_ENV, EchoAdapter, KeyedEchoAdapter, echo_text

# Prices of the models-file entry, US dollars per million tokens.
INPUT_PRICE, OUTPUT_PRICE = 2.0, 10.0


def write_echo_models(folder: pathlib.Path, **extra: Any) -> pathlib.Path:
    """A models file with ``ECHO`` (priced) and ``ECHO_KEYED`` entries on the echo providers."""
    entries = [
        {
            "key": "ECHO",
            "provider": "echo",
            "model": "parrot",
            "input_price_per_million_tokens": INPUT_PRICE,
            "output_price_per_million_tokens": OUTPUT_PRICE,
        },
        {"key": "ECHO_KEYED", "provider": "echo-keyed", "model": "parrot", **extra},
    ]
    path = folder / "echo_models.json"
    path.write_text(json.dumps({"models": entries}))
    return path


def chain_job(first_key: str = "ECHO", second_key: str = "echo:mynah") -> config_pb2.JobConfig:
    """Two tasks in a chain; the second's prompt holds the first's answer."""
    tasks = [
        {
            "task_id": "first",
            "steps": [
                {
                    "model_query_config": {"model_key": first_key, "user_prompt": "hello %who%"},
                    "output_config": {"payload": {"greeting": ""}},
                }
            ],
            "next_task": "second",
        },
        {
            "task_id": "second",
            "steps": [
                {
                    "model_query_config": {
                        "model_key": second_key,
                        "user_prompt": "repeat %greeting%",
                        "parameters": {"temperature": 0.2},
                    },
                    "output_config": {"payload": {"final": ""}},
                }
            ],
        },
    ]
    text = json.dumps(
        {"job_id": "echo", "tasks": tasks, "input_config": {"payload": {"who": "owls"}}}
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def single_step_job(step: dict[str, Any]) -> config_pb2.JobConfig:
    text = json.dumps({"job_id": "one", "tasks": [{"task_id": "only", "steps": [step]}]})
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def query_step(model_key: str, **config: Any) -> dict[str, Any]:
    return {"model_query_config": {"model_key": model_key, "user_prompt": "hi", **config}}


def problems_of(job: config_pb2.JobConfig, registry: ModelRegistry) -> list[Any]:
    with pytest.raises(ConfigError) as caught:
        Validator(registry).check_job(job)
    return list(caught.value.problems)


def run_in_process(job: config_pb2.JobConfig, client: ModelClient) -> run_pb2.JobRun:
    async def body() -> run_pb2.JobRun:
        try:
            return await run_job(job, RunContext(models=client))
        finally:
            await client.aclose()

    return asyncio.run(body())


def assert_echo_chain_recorded(record: run_pb2.JobRun) -> None:
    """The chain's answers, providers, usage and cost are those of the echo adapter."""
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    first_answer = echo_text("parrot", "hello owls")
    second_answer = echo_text("mynah", f"repeat {first_answer}")
    assert struct_to_dict(record.outputs) == {"second": {"final": second_answer}}
    first, second = (task.steps[0] for task in record.tasks)
    assert (first.model_key, first.provider, first.provider_model) == ("ECHO", "echo", "parrot-v1")
    assert (second.provider, second.provider_model) == ("echo", "mynah-v1")
    # Words count as tokens: "hello owls" in, "echo parrot: hello owls" out.
    assert (first.usage.input_tokens, first.usage.output_tokens) == (2, 4)
    assert first.cost_usd == pytest.approx((2 * INPUT_PRICE + 4 * OUTPUT_PRICE) / 1e6)
    assert second.usage.input_tokens == 5 and second.cost_usd == 0  # provider:model: no prices
    assert record.usage.input_tokens == 7
    assert record.cost_usd == pytest.approx(first.cost_usd)


@pytest.fixture
def echo_registry(tmp_path: pathlib.Path) -> ModelRegistry:
    return ModelRegistry.with_models_file(write_echo_models(tmp_path))


# Registration.


def test_the_echo_providers_are_registered_after_their_module_is_imported() -> None:
    assert {"echo", "echo-keyed"} <= set(provider_names())
    assert provider_names()[:4] == ("openai", "google", "anthropic", "offline")
    assert register_provider(EchoAdapter) is EchoAdapter  # again: a no-op


@pytest.mark.parametrize("name", ["openai", "google", "anthropic", "offline", "gemini"])
def test_a_built_in_provider_name_cannot_be_registered(name: str) -> None:
    adapter = type("Clash", (EchoAdapter,), {"provider": name})

    with pytest.raises(ValueError, match=f"provider name '{name}' is built in"):
        register_provider(adapter)
    with pytest.raises(ValueError, match="built in and cannot be unregistered"):
        unregister_provider(name)


def test_a_taken_name_cannot_be_registered_by_another_class() -> None:
    impostor = type("Impostor", (EchoAdapter,), {"provider": "echo"})

    with pytest.raises(ValueError, match=r"'echo' is already registered to .*\.EchoAdapter"):
        register_provider(impostor)


@pytest.mark.parametrize(
    ("adapter", "error", "message"),
    [
        (str, TypeError, "takes a ModelAdapter subclass"),
        (ModelAdapter, TypeError, "does not implement generate"),
        (type("NoName", (EchoAdapter,), {"provider": ""}), ValueError, "lower-case letters"),
        (type("Colon", (EchoAdapter,), {"provider": "a:b"}), ValueError, "got 'a:b'"),
        (type("Upper", (EchoAdapter,), {"provider": "Echo2"}), ValueError, "got 'Echo2'"),
        (
            type("NoEmbed", (EchoAdapter,), {"provider": "no-embed", "embeds": True}),
            TypeError,
            "sets embeds = True but does not implement embed",
        ),
    ],
)
def test_an_invalid_adapter_is_refused(adapter: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        register_provider(adapter)
    assert "no-embed" not in provider_names()


# In process.


def test_a_custom_provider_runs_a_job_in_process_with_usage_and_cost(
    echo_registry: ModelRegistry,
) -> None:
    job = chain_job()
    Validator(echo_registry).check_job(job)
    client = ModelClient(echo_registry, offline=False, credentials={})
    client.check_credentials(["ECHO", "echo:mynah"])  # keyless: nothing to set

    assert_echo_chain_recorded(run_in_process(job, client))


def test_a_models_file_may_point_a_built_in_key_at_a_custom_provider(
    tmp_path: pathlib.Path,
) -> None:
    # The way to run existing configs against a gateway or a test double.
    path = tmp_path / "models.textproto"
    path.write_text('models { key: "GEMINI_FLASH" provider: "echo" model: "gemini-via-echo" }\n')
    registry = ModelRegistry.with_models_file(path)

    record = run_in_process(
        chain_job("GEMINI_FLASH", "GEMINI_FLASH"), ModelClient(registry, offline=False)
    )

    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert {task.steps[0].provider for task in record.tasks} == {"echo"}


def test_offline_mode_answers_custom_keys_with_the_offline_model(
    echo_registry: ModelRegistry,
) -> None:
    record = run_in_process(chain_job(), ModelClient(echo_registry, offline=True))

    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert {task.steps[0].provider for task in record.tasks} == {"offline"}


def test_a_keyed_custom_provider_needs_its_key_and_gets_it(echo_registry: ModelRegistry) -> None:
    job = single_step_job(query_step("ECHO_KEYED"))
    Validator(echo_registry).check_job(job)

    with pytest.raises(MissingApiKeyError) as missing:
        ModelClient(echo_registry, offline=False, credentials={}).check_credentials(["ECHO_KEYED"])
    assert ECHO_KEY_ENV in str(missing.value) and "echo-keyed" in str(missing.value)

    client = ModelClient(echo_registry, offline=False, credentials={ECHO_KEY_ENV: "secret"})
    record = run_in_process(job, client)
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert record.tasks[0].steps[0].response_text == "[with key] echo parrot: hi"


def test_a_keyless_entry_of_a_keyed_custom_provider_sends_no_key(tmp_path: pathlib.Path) -> None:
    registry = ModelRegistry.with_models_file(write_echo_models(tmp_path, no_api_key=True))
    client = ModelClient(registry, offline=False, credentials={ECHO_KEY_ENV: "secret"})
    client.check_credentials(["ECHO_KEYED"])

    record = run_in_process(single_step_job(query_step("ECHO_KEYED")), client)

    # The adapter gets an empty key, not a placeholder.
    assert record.tasks[0].steps[0].response_text == "[without key] echo parrot: hi"
    assert KeyedEchoAdapter.default_api_key_env == ECHO_KEY_ENV


class _EchoEmbeddingAdapter(EchoAdapter):
    """An echo provider with embeddings: the vector holds the text's length and word count."""

    provider: ClassVar[str] = "echo-embed-test"
    embeds: ClassVar[bool] = True

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        words = len(request.input.split())
        return EmbeddingResponse(
            vector=(float(len(request.input)), float(words)),
            usage=Usage(input_tokens=words),
            model=request.model,
        )


@pytest.fixture
def embedding_provider() -> Iterator[str]:
    register_provider(_EchoEmbeddingAdapter)
    yield _EchoEmbeddingAdapter.provider
    unregister_provider(_EchoEmbeddingAdapter.provider)


def test_a_custom_provider_with_embeddings_serves_embedding_steps(
    tmp_path: pathlib.Path, embedding_provider: str
) -> None:
    path = tmp_path / "models.json"
    entry = {"key": "EMBED", "provider": embedding_provider, "model": "m", "kind": "embedding"}
    path.write_text(json.dumps({"models": [{**entry, "input_price_per_million_tokens": 1e6}]}))
    registry = ModelRegistry.with_models_file(path)
    job = single_step_job(
        {"step_type": 2, "embedding_config": {"model_key": "EMBED", "input": "three small words"}}
    )
    Validator(registry).check_job(job)

    step = run_in_process(job, ModelClient(registry, offline=False)).tasks[0].steps[0]

    assert step.status == run_pb2.RUN_STATUS_SUCCEEDED, step.error.message
    assert list(step.embedding) == [17.0, 3.0]
    assert step.usage.input_tokens == 3 and step.cost_usd == pytest.approx(3.0)


def test_an_unregistered_provider_is_gone_from_keys_and_models_files(
    tmp_path: pathlib.Path, embedding_provider: str
) -> None:
    unregister_provider(embedding_provider)
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps({"models": [{"key": "K", "provider": embedding_provider, "model": "m"}]})
    )

    with pytest.raises(ConfigError, match=f"unknown provider '{embedding_provider}'"):
        ModelRegistry.with_models_file(path)
    unregister_provider(embedding_provider)  # unknown names are ignored


# Validation.


def test_validation_accepts_custom_keys_and_checks_their_parameters(
    echo_registry: ModelRegistry,
) -> None:
    Validator(echo_registry).check_job(chain_job())

    (problem,) = problems_of(
        single_step_job(query_step("ECHO", parameters={"top_k": 3})), echo_registry
    )
    assert problem.path.endswith("parameters.top_k")
    assert problem.message == "echo models do not take 'top_k'"


def test_validation_refuses_an_embedding_step_on_a_provider_without_embeddings(
    echo_registry: ModelRegistry,
) -> None:
    job = single_step_job(
        {"step_type": 2, "embedding_config": {"model_key": "echo:parrot", "input": "text"}}
    )

    (problem,) = problems_of(job, echo_registry)
    assert problem.message == "echo has no embeddings API"


def test_validation_refuses_an_unknown_provider_listing_the_registered_ones(
    echo_registry: ModelRegistry,
) -> None:
    (problem,) = problems_of(single_step_job(query_step("ecko:parrot")), echo_registry)

    assert problem.message == "unknown model key 'ecko:parrot'"
    assert problem.hint.startswith("did you mean 'echo'? 'ecko' is not a provider: use one of ")
    assert "openai, google, anthropic, offline, " in problem.hint
    assert "echo, echo-keyed" in problem.hint
    assert "register_provider" in problem.hint and "--function_modules" in problem.hint


def test_a_models_file_with_an_unknown_provider_lists_the_registered_ones(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [{"key": "GW", "provider": "gateway", "model": "m"}]}))

    with pytest.raises(ConfigError) as caught:
        ModelRegistry.with_models_file(path)

    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == ("models[0].provider", "unknown provider 'gateway'")
    assert "echo" in problem.hint and "register_provider" in problem.hint


def test_validation_refuses_an_entry_whose_provider_is_not_registered() -> None:
    # A registry built in Python, in a process that did not import the provider's module.
    registry = ModelRegistry([ModelSpec(key="GW", provider="gateway", model="m")])

    (problem,) = problems_of(single_step_job(query_step("GW")), registry)
    assert problem.message == "model key 'GW' uses provider 'gateway', which is not registered"
    assert "register_provider" in problem.hint


# In a store, with a dispatcher (the mechanism is the store's; SQLite is enough here).


def test_a_custom_provider_runs_a_job_through_a_store_and_dispatcher(
    tmp_path: pathlib.Path, echo_registry: ModelRegistry
) -> None:
    job = chain_job()
    Validator(echo_registry).check_job(job)
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run_id = submit_job(store, job)
        client = ModelClient(echo_registry, offline=False, credentials={})

        async def dispatch() -> None:
            try:
                await Dispatcher(store, RunContext(models=client), workers=2).run(until_idle=True)
            finally:
                await client.aclose()

        asyncio.run(dispatch())
        record = read_job_run(store, run_id)

    assert record is not None
    assert_echo_chain_recorded(record)


def test_a_response_from_a_custom_adapter_is_a_model_response() -> None:
    # The double answers like any adapter: the client sees a ModelResponse with usage.
    async def ask() -> ModelResponse:
        return await EchoAdapter(api_key="").generate(ModelRequest("m", "", "a b c"))

    response = asyncio.run(ask())
    assert response == ModelResponse("echo m: a b c", Usage(3, 5), "m-v1", "stop")


def test_the_documented_example_runs(tmp_path: pathlib.Path) -> None:
    # docs/custom_models.md: the first Python block is my_pkg/echo.py, the second uses it.
    text = (REPO_ROOT / "docs" / "custom_models.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    package = tmp_path / "my_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "echo.py").write_text(blocks[0])
    completed = subprocess.run(
        [sys.executable, "-c", blocks[1]],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "LLM_SCHEDULER_OFFLINE": ""},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "{'greet': {'response': 'echo: hello owls'}}\n"

"""ModelClient: credentials, the per-attempt deadline, and errors, through the real SDKs."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time

import pytest

from llm_scheduler import (
    MissingApiKey,
    MissingApiKeyError,
    ModelClient,
    UserError,
    loads,
    run_step,
)
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.models.openai_provider import OpenAIAdapter
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_MODEL_KEYS, context_for, run_closing, write_models_file

# -- credentials -------------------------------------------------------------------------------


def test_every_missing_api_key_is_reported_at_once(fake_registry: ModelRegistry) -> None:
    client = ModelClient(fake_registry, offline=False, credentials={})
    keys = ["FAKE_OPENAI", "GPT_4O_MINI", "FAKE_GEMINI", "FAKE_ANTHROPIC", "OFFLINE"]

    with pytest.raises(MissingApiKeyError) as caught:
        client.check_credentials(keys)

    error = caught.value
    assert isinstance(error, UserError)  # so the CLIs exit with 2
    assert error.missing == [
        MissingApiKey("ANTHROPIC_API_KEY", "anthropic", ("FAKE_ANTHROPIC",)),
        MissingApiKey("GEMINI_API_KEY", "google", ("FAKE_GEMINI",), ("GOOGLE_API_KEY",)),
        MissingApiKey("OPENAI_API_KEY", "openai", ("FAKE_OPENAI", "GPT_4O_MINI")),
    ]
    message = str(error)
    assert message.startswith("3 API keys are not set:\n")
    assert (
        "  - OPENAI_API_KEY for provider 'openai', needed by model keys FAKE_OPENAI, GPT_4O_MINI"
    ) in message
    assert "GEMINI_API_KEY (or GOOGLE_API_KEY)" in message
    assert "export ANTHROPIC_API_KEY=..." in message and "--offline" in message


def test_only_the_keys_not_set_are_reported(fake_registry: ModelRegistry) -> None:
    client = ModelClient(
        fake_registry, offline=False, credentials={"OPENAI_API_KEY": "k", "GOOGLE_API_KEY": "k"}
    )

    with pytest.raises(MissingApiKeyError) as caught:
        client.check_credentials(["FAKE_OPENAI", "FAKE_GEMINI", "FAKE_ANTHROPIC"])

    assert [key.env_var for key in caught.value.missing] == ["ANTHROPIC_API_KEY"]
    assert str(caught.value).startswith(
        "1 API key is not set:\n"
        "  - ANTHROPIC_API_KEY for provider 'anthropic', needed by model key FAKE_ANTHROPIC\n"
        "set it in the environment"
    )
    client.check_credentials(["FAKE_OPENAI", "FAKE_GEMINI"])  # all set: no error


# -- every failure is a ProviderError ---------------------------------------------------------

PROVIDER_MODEL = {
    "FAKE_OPENAI": "gpt-fake",
    "FAKE_GEMINI": "gemini-fake",
    "FAKE_ANTHROPIC": "claude-fake",
}


def run_one_step(registry: ModelRegistry, model_key: str) -> run_pb2.StepRun:
    """Runs a one-step model query through the engine (3 attempts, fast backoff)."""
    step = loads(
        json.dumps(
            {"id": "ask", "model_query_config": {"model_key": model_key, "user_prompt": "hi"}}
        ),
        config_pb2.StepConfig,
        ConfigFormat.JSON,
    )
    context = context_for(registry)
    return run_closing(context, run_step(step, {}, context)).record


@pytest.mark.parametrize("model_key", FAKE_MODEL_KEYS)
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (None, "malformed response: the body is not JSON"),
        ('{"unexpected": true}', "malformed response: "),
    ],
    ids=["not-json", "wrong-shape"],
)
def test_a_malformed_200_body_is_a_retried_provider_error(
    model_key: str,
    body: str | None,
    detail: str,
    fake_server: FakeProviderServer,
    fake_registry: ModelRegistry,
) -> None:
    if body is None:
        fake_server.malformed_next(3)
    else:
        fake_server.malformed_next(3, body=body)

    record = run_one_step(fake_registry, model_key)

    assert record.status == run_pb2.RUN_STATUS_FAILED
    assert (record.error.type, record.error.retryable) == ("ProviderError", True)
    assert record.attempts == 3 and fake_server.count() == 3
    assert (
        f"request to model {PROVIDER_MODEL[model_key]!r} failed: {detail}" in record.error.message
    )


@pytest.mark.parametrize("model_key", FAKE_MODEL_KEYS)
def test_a_malformed_body_then_a_good_one_succeeds_on_the_retry(
    model_key: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    fake_server.malformed_next(1)

    record = run_one_step(fake_registry, model_key)

    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert record.attempts == 2
    assert record.response_text.endswith("reply to: hi")


def test_any_exception_an_adapter_lets_through_is_masked_and_not_retried() -> None:
    adapter = OpenAIAdapter(api_key="sk-secret", base_url="http://127.0.0.1:9/v1")

    error = adapter.unexpected_error(RuntimeError("boom, key sk-secret"), model="gpt-x")

    assert str(error) == "openai request to model 'gpt-x' failed: RuntimeError: boom, key ***"
    assert (error.provider, error.model, error.retryable, error.status) == (
        "openai",
        "gpt-x",
        False,
        None,
    )
    assert adapter.unexpected_error(ConnectionResetError(), model="gpt-x").retryable
    asyncio.run(adapter.aclose())


# -- timeout_seconds is a deadline ------------------------------------------------------------


def registry_with_timeout(
    tmp_path: pathlib.Path, server: FakeProviderServer, seconds: float
) -> ModelRegistry:
    path = write_models_file(tmp_path / "models.json", server)
    comment, text = path.read_text().split("\n", 1)
    models = json.loads(text)
    for entry in models["models"]:
        entry["timeout_seconds"] = seconds
    path.write_text(f"{comment}\n{json.dumps(models)}")
    return ModelRegistry.with_models_file(path)


@pytest.mark.parametrize("model_key", FAKE_MODEL_KEYS)
def test_timeout_is_a_deadline_for_the_whole_attempt(
    model_key: str, fake_server: FakeProviderServer, tmp_path: pathlib.Path
) -> None:
    registry = registry_with_timeout(tmp_path, fake_server, 0.5)
    # A byte every 50 ms: no read waits long enough for a per-read timeout, the whole reply
    # takes half a minute.
    fake_server.trickle_next(3, seconds_per_byte=0.05)
    started = time.monotonic()

    record = run_one_step(registry, model_key)

    elapsed = time.monotonic() - started
    assert record.status == run_pb2.RUN_STATUS_FAILED
    assert (record.error.type, record.error.retryable) == ("ProviderError", True)
    assert record.error.message.endswith(
        f"request to model {PROVIDER_MODEL[model_key]!r} failed: timed out after 0.5 s"
    )
    assert record.attempts == 3 and fake_server.count() == 3
    assert elapsed < 8  # three deadlines of 0.5 s and backoff, not three trickled replies


@pytest.mark.parametrize("model_key", FAKE_MODEL_KEYS)
def test_an_attempt_past_its_deadline_is_retried(
    model_key: str, fake_server: FakeProviderServer, tmp_path: pathlib.Path
) -> None:
    registry = registry_with_timeout(tmp_path, fake_server, 0.5)
    fake_server.trickle_next(1, seconds_per_byte=0.05)

    record = run_one_step(registry, model_key)

    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED, record.error.message
    assert record.attempts == 2
    assert record.response_text.endswith("reply to: hi")

"""ModelClient: credentials, the per-attempt deadline, and errors, through the real SDKs."""

from __future__ import annotations

import pytest

from llm_scheduler import MissingApiKey, MissingApiKeyError, ModelClient, UserError
from llm_scheduler.models.registry import ModelRegistry

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

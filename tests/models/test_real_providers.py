"""Opt-in calls to the real providers: each runs only when its API key is set.

OPENAI_API_KEY=... GEMINI_API_KEY=... ANTHROPIC_API_KEY=... .venv/bin/pytest -m real_provider
"""

from __future__ import annotations

import asyncio
import os

import pytest

from llm_scheduler import EmbeddingCall, EmbeddingRequest, ModelClient, ModelRequest

CASES = [
    ("GPT_4O_MINI", "OPENAI_API_KEY"),
    ("GEMINI_FLASH", "GEMINI_API_KEY"),
    ("CLAUDE_3_5_HAIKU", "ANTHROPIC_API_KEY"),
]


@pytest.mark.real_provider
@pytest.mark.parametrize(("model_key", "env_var"), CASES)
def test_real_provider_answers(model_key: str, env_var: str) -> None:
    if os.environ.get("LLM_SCHEDULER_REAL_PROVIDER_TESTS") != "1":
        pytest.skip("set LLM_SCHEDULER_REAL_PROVIDER_TESTS=1 to call real providers")
    if not os.environ.get(env_var):
        pytest.skip(f"set {env_var} to call the real provider")

    async def call() -> str:
        client = ModelClient(offline=False)
        try:
            result = await client.generate(
                model_key,
                ModelRequest(
                    model="", system_prompt="", user_prompt="Say OK.", parameters={"max_tokens": 5}
                ),
            )
            return result.response.text
        finally:
            await client.aclose()

    assert asyncio.run(call()).strip()


EMBEDDING_CASES = [
    ("OPENAI_EMBEDDING_SMALL", "OPENAI_API_KEY"),
    ("GEMINI_EMBEDDING", "GEMINI_API_KEY"),
]


@pytest.mark.real_provider
@pytest.mark.parametrize(("model_key", "env_var"), EMBEDDING_CASES)
def test_real_provider_embeds(model_key: str, env_var: str) -> None:
    if os.environ.get("LLM_SCHEDULER_REAL_PROVIDER_TESTS") != "1":
        pytest.skip("set LLM_SCHEDULER_REAL_PROVIDER_TESTS=1 to call real providers")
    if not os.environ.get(env_var):
        pytest.skip(f"set {env_var} to call the real provider")

    async def call() -> EmbeddingCall:
        client = ModelClient(offline=False)
        try:
            return await client.embed(
                model_key,
                EmbeddingRequest(model="", input="The tides follow the moon.", dimensions=8),
            )
        finally:
            await client.aclose()

    result = asyncio.run(call())
    assert len(result.response.vector) == 8
    # Gemini may send no token counts for embeddings (docs/config_reference.md, Embedding steps).
    assert result.response.usage.input_tokens > 0 or model_key == "GEMINI_EMBEDDING"

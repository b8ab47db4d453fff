"""Embeddings: adapters through their SDKs over HTTP, the client, the offline model, the keys."""

from __future__ import annotations

import asyncio
import math
import pathlib
from collections.abc import Callable

import pytest

from llm_scheduler.errors import ConfigError, ProviderError
from llm_scheduler.models.anthropic_provider import AnthropicAdapter
from llm_scheduler.models.base import EmbeddingRequest, EmbeddingResponse, ModelAdapter
from llm_scheduler.models.client import EmbeddingCall, ModelClient
from llm_scheduler.models.gemini_provider import GeminiAdapter
from llm_scheduler.models.offline import OfflineAdapter, offline_vector
from llm_scheduler.models.openai_provider import OpenAIAdapter
from llm_scheduler.models.registry import (
    BUILTIN_MODELS,
    CHAT,
    EMBEDDING,
    ModelRegistry,
    load_models_file,
)
from llm_scheduler.testing import FakeProviderServer
from tests.conftest import FAKE_CREDENTIALS, FAST_RETRIES

API_KEY = "test-key"

ADAPTERS: dict[str, Callable[[FakeProviderServer], ModelAdapter]] = {
    "openai": lambda server: OpenAIAdapter(api_key=API_KEY, base_url=server.openai_base_url),
    "google": lambda server: GeminiAdapter(api_key=API_KEY, base_url=server.gemini_base_url),
}


def embed(adapter: ModelAdapter, request: EmbeddingRequest) -> EmbeddingResponse:
    async def body() -> EmbeddingResponse:
        try:
            return await adapter.embed(request)
        finally:
            await adapter.aclose()

    return asyncio.run(body())


@pytest.mark.parametrize("provider", ADAPTERS)
def test_adapters_embed_through_their_sdk_with_usage(
    provider: str, fake_server: FakeProviderServer
) -> None:
    adapter = ADAPTERS[provider](fake_server)

    response = embed(adapter, EmbeddingRequest(model="embed-test", input="tides and the moon"))

    assert response.vector == offline_vector("embed-test", "tides and the moon", 8)
    assert response.usage.input_tokens == 4
    assert response.usage.output_tokens == 0
    assert response.model == "embed-test"
    [request] = fake_server.requests
    assert request.provider == provider


def test_openai_wire_shape_asks_for_floats_and_dimensions(fake_server: FakeProviderServer) -> None:
    adapter = ADAPTERS["openai"](fake_server)

    response = embed(adapter, EmbeddingRequest(model="m", input="hello", dimensions=5))

    assert len(response.vector) == 5
    [request] = fake_server.requests
    assert request.path == "/v1/embeddings"
    assert request.body == {
        "model": "m",
        "input": "hello",
        "dimensions": 5,
        "encoding_format": "float",
    }


def test_openai_without_dimensions_sends_none(fake_server: FakeProviderServer) -> None:
    embed(ADAPTERS["openai"](fake_server), EmbeddingRequest(model="m", input="hello"))

    assert "dimensions" not in fake_server.requests[0].body


def test_gemini_wire_shape_is_batch_embed_contents(fake_server: FakeProviderServer) -> None:
    adapter = ADAPTERS["google"](fake_server)

    response = embed(adapter, EmbeddingRequest(model="gem", input="hello there", dimensions=3))

    assert len(response.vector) == 3
    [request] = fake_server.requests
    assert request.path == "/v1/models/gem:batchEmbedContents"
    [item] = request.body["requests"]
    assert item["content"]["parts"] == [{"text": "hello there"}]
    assert item["outputDimensionality"] == 3
    assert item["model"] == "models/gem"


def test_gemini_reply_without_token_counts_records_zero(fake_server: FakeProviderServer) -> None:
    fake_server.gemini_embedding_usage = False

    response = embed(ADAPTERS["google"](fake_server), EmbeddingRequest(model="g", input="a b c"))

    assert response.usage.input_tokens == 0
    assert len(response.vector) == 8


@pytest.mark.parametrize("provider", ADAPTERS)
def test_embedding_failures_are_provider_errors_like_generate(
    provider: str, fake_server: FakeProviderServer
) -> None:
    fake_server.fail_next(1, status=429, retry_after=2)

    with pytest.raises(ProviderError) as info:
        embed(ADAPTERS[provider](fake_server), EmbeddingRequest(model="m", input="x"))

    assert info.value.retryable
    assert info.value.status == 429
    assert info.value.retry_after == 2
    assert API_KEY not in str(info.value)


@pytest.mark.parametrize("provider", ADAPTERS)
def test_a_reply_without_embeddings_is_malformed_and_retryable(
    provider: str, fake_server: FakeProviderServer
) -> None:
    fake_server.malformed_next(1, body='{"data": [], "embeddings": []}')

    with pytest.raises(ProviderError) as info:
        embed(ADAPTERS[provider](fake_server), EmbeddingRequest(model="m", input="x"))

    assert info.value.retryable
    assert "malformed response" in str(info.value)


def test_anthropic_has_no_embeddings_api() -> None:
    adapter = AnthropicAdapter(api_key=API_KEY, base_url="http://127.0.0.1:9")

    with pytest.raises(ProviderError) as info:
        embed(adapter, EmbeddingRequest(model="claude", input="x"))

    assert not info.value.retryable
    assert "no embeddings API" in str(info.value)
    assert not AnthropicAdapter.embeds
    assert OpenAIAdapter.embeds and GeminiAdapter.embeds and OfflineAdapter.embeds


def test_openai_sdk_default_base64_is_decoded_from_the_fake(
    fake_server: FakeProviderServer,
) -> None:
    import openai

    async def body() -> list[float]:
        async with openai.AsyncOpenAI(api_key=API_KEY, base_url=fake_server.openai_base_url) as sdk:
            reply = await sdk.embeddings.create(model="m", input="hello")  # base64 on the wire
            return list(reply.data[0].embedding)

    vector = asyncio.run(body())

    assert fake_server.requests[0].body["encoding_format"] == "base64"
    expected = offline_vector("m", "hello", 8)
    assert vector == pytest.approx(expected, rel=1e-6)  # float32 on the wire


def test_offline_embeddings_are_deterministic_unit_vectors() -> None:
    adapter = OfflineAdapter()

    first = embed(adapter, EmbeddingRequest(model="offline-embedding", input="the same text"))
    again = embed(adapter, EmbeddingRequest(model="offline-embedding", input="the same text"))
    other = embed(adapter, EmbeddingRequest(model="offline-embedding", input="another text"))
    longer = embed(adapter, EmbeddingRequest(model="offline-embedding", input="x", dimensions=100))

    assert first == again
    assert first.vector != other.vector
    assert len(first.vector) == 8
    assert len(longer.vector) == 100
    for vector in (first.vector, other.vector, longer.vector):
        assert math.isclose(math.fsum(value * value for value in vector), 1.0)
    assert first.usage.input_tokens == 3


def test_client_embeds_with_retries_and_prices_input_tokens(
    fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    client = ModelClient(
        fake_registry, offline=False, credentials=FAKE_CREDENTIALS, retry_policy=FAST_RETRIES
    )
    fake_server.fail_next(1, status=503)

    async def body() -> EmbeddingCall:
        try:
            return await client.embed(
                "FAKE_OPENAI_EMBEDDING", EmbeddingRequest(model="", input="one two three")
            )
        finally:
            await client.aclose()

    call = asyncio.run(body())

    assert call.attempts == 2
    assert call.request.model == "embedding-fake"
    assert call.response.usage.input_tokens == 3
    assert call.cost_usd == pytest.approx(3 * 1.0 / 1e6)


def test_client_in_offline_mode_embeds_with_the_offline_model() -> None:
    client = ModelClient(offline=True)

    call = asyncio.run(client.embed("OPENAI_EMBEDDING_SMALL", EmbeddingRequest("", "hi", 4)))

    assert call.spec.provider == "offline"
    assert call.response.vector == offline_vector("OPENAI_EMBEDDING_SMALL", "hi", 4)
    assert call.cost_usd == 0


def test_builtin_embedding_keys_have_their_kind() -> None:
    kinds = {spec.key: spec.kind for spec in BUILTIN_MODELS}
    assert kinds["OPENAI_EMBEDDING_SMALL"] == kinds["GEMINI_EMBEDDING"] == EMBEDDING
    assert kinds["OFFLINE_EMBEDDING"] == EMBEDDING
    assert kinds["GPT_4O_MINI"] == kinds["OFFLINE"] == CHAT
    registry = ModelRegistry()
    assert "GPT_4O_MINI" not in registry.keys(EMBEDDING)
    assert "OPENAI_EMBEDDING_SMALL" in registry.keys(EMBEDDING)
    direct = registry.resolve("openai:text-embedding-3-small")
    assert direct.serves(EMBEDDING) and direct.serves(CHAT)
    assert not registry.resolve("GPT_4O_MINI").serves(EMBEDDING)


def test_models_file_kind_is_validated(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        """{"models": [
          {"key": "A", "provider": "openai", "model": "m", "kind": "embedding"},
          {"key": "B", "provider": "openai", "model": "m", "kind": "vectors"},
          {"key": "C", "provider": "anthropic", "model": "m", "kind": "embedding"}
        ]}"""
    )

    with pytest.raises(ConfigError) as info:
        load_models_file(path)

    problems = [(p.path, p.message) for p in info.value.problems]
    assert problems == [
        ("models[1].kind", "unknown kind 'vectors'"),
        ("models[2].kind", "anthropic has no embeddings API"),
    ]
    assert "openai, google, offline" in info.value.problems[1].hint

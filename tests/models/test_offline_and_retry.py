"""The offline model and the retry policy."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from llm_scheduler import ModelRequest, ProviderError, ResponseFormatSpec, RetryPolicy
from llm_scheduler.models.offline import OfflineAdapter
from llm_scheduler.models.retry import call_with_retries


def generate(request: ModelRequest) -> str:
    return asyncio.run(OfflineAdapter().generate(request)).text


def test_offline_text_is_deterministic_and_says_offline() -> None:
    request = ModelRequest(model="GEMINI_FLASH", system_prompt="s", user_prompt="Hello  there")
    first = generate(request)
    assert first == generate(request)
    assert first.startswith("[offline GEMINI_FLASH ")
    assert first.endswith("] Hello there")
    other = ModelRequest(model="GEMINI_FLASH", system_prompt="t", user_prompt="Hello  there")
    assert generate(other) != first


def test_offline_json_formats_give_valid_json_marked_offline() -> None:
    as_json = generate(
        ModelRequest(
            model="m",
            system_prompt="",
            user_prompt="q",
            response_format=ResponseFormatSpec(kind="json"),
        )
    )
    assert json.loads(as_json)["offline"] is True
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "count": {"type": "integer", "minimum": 2},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"enum": ["a", "b"]},
            "maybe": {"type": ["null", "string"]},
        },
    }
    value = json.loads(
        generate(
            ModelRequest(
                model="m",
                system_prompt="",
                user_prompt="q",
                response_format=ResponseFormatSpec(kind="json_schema", json_schema=schema),
            )
        )
    )
    assert value["title"].startswith("[offline")
    assert value["count"] == 2 and value["score"] == 0.0 and value["ok"] is False
    assert len(value["tags"]) == 2 and value["kind"] == "a"
    assert isinstance(value["maybe"], str)


def test_offline_honours_max_tokens() -> None:
    text = generate(
        ModelRequest(
            model="m",
            system_prompt="",
            user_prompt="one two three four five six",
            parameters={"max_tokens": 3},
        )
    )
    assert len(text.split(" ")) == 3


def test_retry_delay_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=4.0, multiplier=2.0, max_retry_after=10)
    rng = random.Random(0)
    plain = ProviderError("x", provider="p", retryable=True)
    for retry in range(1, 8):
        assert 0 <= policy.delay(retry, plain, rng) <= min(2 ** (retry - 1), 4.0)
    asked = ProviderError("x", provider="p", retryable=True, retry_after=3.0)
    assert policy.delay(1, asked, rng) == 3.0
    too_long = ProviderError("x", provider="p", retryable=True, retry_after=999)
    assert policy.delay(1, too_long, rng) == 10


def test_call_with_retries_stops_on_non_retryable_and_counts_attempts() -> None:
    waits: list[float] = []
    calls = 0

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProviderError("busy", provider="p", retryable=True, retry_after=0.5)
        return "ok"

    result = asyncio.run(call_with_retries(flaky, RetryPolicy(max_attempts=5), sleep=sleep))
    assert result == ("ok", 3)
    assert len(waits) == 2
    assert all(0.5 <= wait <= 1.0 for wait in waits)  # Retry-After is a floor under the jitter

    async def broken() -> str:
        raise ProviderError("bad request", provider="p", retryable=False, status=400)

    with pytest.raises(ProviderError) as caught:
        asyncio.run(call_with_retries(broken, RetryPolicy(max_attempts=5), sleep=sleep))
    assert caught.value.attempts == 1

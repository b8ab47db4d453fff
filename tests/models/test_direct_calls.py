"""In-process entries without rate limits are called directly; limits and retries still hold.

`ModelClient.send` makes the first attempt of such an entry itself (no deadline, no rate
limiter, no retry machinery unless it fails). These tests pin what must not change with it:
``max_concurrency``, retries of retryable failures, the masking of unexpected exceptions, and
`generate`'s `ModelCall`.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from llm_scheduler import (
    ModelAdapter,
    ModelClient,
    ModelRegistry,
    ModelRequest,
    ModelResponse,
    ProviderError,
    Usage,
    register_provider,
    unregister_provider,
)
from llm_scheduler.models.retry import RetryPolicy


class _Counting(ModelAdapter):
    """In process, but it waits a little: calls overlap unless something bounds them."""

    provider: ClassVar[str] = "counting-test"
    in_process: ClassVar[bool] = True
    in_flight: ClassVar[int] = 0
    most: ClassVar[int] = 0
    failures: ClassVar[list[BaseException]] = []

    async def generate(self, request: ModelRequest) -> ModelResponse:
        cls = type(self)
        cls.in_flight += 1
        cls.most = max(cls.most, cls.in_flight)
        try:
            await asyncio.sleep(0.001)
            if cls.failures:
                raise cls.failures.pop(0)
        finally:
            cls.in_flight -= 1
        return ModelResponse(text=f"ok {request.user_prompt}", usage=Usage(3, 2), model="m-v2")


@pytest.fixture
def registry(tmp_path: pathlib.Path) -> Iterator[ModelRegistry]:
    register_provider(_Counting)
    _Counting.in_flight = _Counting.most = 0
    _Counting.failures = []
    entry = {
        "key": "COUNTING",
        "provider": "counting-test",
        "model": "m",
        "max_concurrency": 2,
        "max_attempts": 3,
        "input_price_per_million_tokens": 1.0,
        "output_price_per_million_tokens": 4.0,
    }
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"models": [entry]}))
    yield ModelRegistry.with_models_file(path)
    unregister_provider("counting-test")


def _client(registry: ModelRegistry, **options: Any) -> ModelClient:
    return ModelClient(registry, offline=False, credentials={}, **options)


def _request(text: str = "hi") -> ModelRequest:
    return ModelRequest(model="", system_prompt="", user_prompt=text)


def test_max_concurrency_holds_for_an_in_process_adapter(registry: ModelRegistry) -> None:
    client = _client(registry)

    async def main() -> list[tuple[ModelResponse, int]]:
        return await asyncio.gather(*(client.send("COUNTING", _request(str(i))) for i in range(9)))

    results = asyncio.run(main())
    assert client._direct["COUNTING"]  # the direct path was taken
    assert _Counting.most == 2
    assert [(response.text, attempts) for response, attempts in results] == [
        (f"ok {i}", 1) for i in range(9)
    ]


def test_a_retryable_failure_is_retried_on_the_direct_path(registry: ModelRegistry) -> None:
    _Counting.failures = [ProviderError("busy", provider="counting-test", retryable=True)]
    client = _client(registry, retry_policy=RetryPolicy(max_attempts=3, initial_backoff=0.0))

    response, attempts = asyncio.run(client.send("COUNTING", _request()))

    assert (response.text, attempts) == ("ok hi", 2)


def test_an_unexpected_exception_is_a_provider_error_and_not_retried(
    registry: ModelRegistry,
) -> None:
    _Counting.failures = [RuntimeError("boom")]
    client = _client(registry, retry_policy=RetryPolicy(max_attempts=3, initial_backoff=0.0))

    with pytest.raises(ProviderError, match="RuntimeError: boom") as caught:
        asyncio.run(client.send("COUNTING", _request()))

    assert caught.value.attempts == 1 and not caught.value.retryable
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_generate_still_times_and_prices_the_call(registry: ModelRegistry) -> None:
    client = _client(registry)

    call = asyncio.run(client.generate("COUNTING", _request()))

    assert call.request.model == "m" and call.spec.key == "COUNTING"
    assert (call.response.text, call.attempts) == ("ok hi", 1)
    assert call.cost_usd == pytest.approx((3 * 1.0 + 2 * 4.0) / 1e6)
    assert call.latency_seconds >= 0.001


def test_a_closed_client_creates_its_adapters_again(registry: ModelRegistry) -> None:
    async def main() -> None:
        client = _client(registry)
        await client.send("COUNTING", _request())
        first = client._adapters[("counting-test", "", "")]
        await client.aclose()
        await client.send("COUNTING", _request())
        assert client._adapters[("counting-test", "", "")] is not first

    asyncio.run(main())

"""The provider adapters, each driving its real SDK over HTTP against the fake provider server."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from llm_scheduler.errors import MissingDependencyError, ProviderError
from llm_scheduler.models.anthropic_provider import AnthropicAdapter
from llm_scheduler.models.base import (
    ModelAdapter,
    ModelRequest,
    ModelResponse,
    ResponseFormatSpec,
    Usage,
)
from llm_scheduler.models.gemini_provider import GeminiAdapter
from llm_scheduler.models.http_errors import retry_after_seconds
from llm_scheduler.models.openai_provider import OpenAIAdapter
from llm_scheduler.testing import FakeProviderServer, RecordedRequest

API_KEY = "test-key-do-not-leak"
SCHEMA = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]}


@dataclasses.dataclass(frozen=True)
class Case:
    provider: str
    model: str
    make: Callable[[str], ModelAdapter]
    base_url: Callable[[FakeProviderServer], str]
    length_reason: str


CASES = [
    Case(
        "openai",
        "gpt-test",
        lambda url: OpenAIAdapter(api_key=API_KEY, base_url=url),
        lambda server: server.openai_base_url,
        "length",
    ),
    Case(
        "google",
        "gemini-test",
        lambda url: GeminiAdapter(api_key=API_KEY, base_url=url),
        lambda server: server.gemini_base_url,
        "MAX_TOKENS",
    ),
    Case(
        "anthropic",
        "claude-test",
        lambda url: AnthropicAdapter(api_key=API_KEY, base_url=url),
        lambda server: server.anthropic_base_url,
        "max_tokens",
    ),
]
BY_PROVIDER = {case.provider: case for case in CASES}


@pytest.fixture(params=CASES, ids=[case.provider for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    result: Case = request.param
    return result


def generate(case: Case, url: str, request: ModelRequest) -> ModelResponse:
    """Runs one request through a fresh adapter, closing it afterwards."""

    async def run() -> ModelResponse:
        adapter = case.make(url)
        try:
            return await adapter.generate(request)
        finally:
            await adapter.aclose()

    return asyncio.run(run())


def call(
    case: Case,
    server: FakeProviderServer,
    *,
    parameters: dict[str, Any] | None = None,
    response_format: ResponseFormatSpec | None = None,
    timeout_seconds: float = 10.0,
) -> ModelResponse:
    request = ModelRequest(
        model=case.model,
        system_prompt="be brief",
        user_prompt="hello there",
        parameters=parameters or {},
        response_format=response_format or ResponseFormatSpec(),
        timeout_seconds=timeout_seconds,
    )
    return generate(case, case.base_url(server), request)


def call_error(case: Case, server: FakeProviderServer, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        call(case, server, **kwargs)
    assert info.value.provider == case.provider
    assert API_KEY not in str(info.value)
    return info.value


def only_request(server: FakeProviderServer) -> RecordedRequest:
    assert server.count() == 1
    return server.requests[0]


# -- behaviour common to every provider ------------------------------------------------------


def test_plain_call_returns_text_usage_model_and_finish_reason(
    case: Case, fake_server: FakeProviderServer
) -> None:
    fake_server.cached_input_tokens = 2

    response = call(case, fake_server)

    assert response.text == f"fake {case.provider} reply to: hello there"
    # "be brief" + "hello there" in, six words out; the fake counts words as tokens.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 6)
    assert response.usage.cached_input_tokens == 2
    assert response.model == case.model
    assert response.finish_reason in ("stop", "STOP", "end_turn")
    assert only_request(fake_server).provider == case.provider


def test_json_format_returns_json(case: Case, fake_server: FakeProviderServer) -> None:
    response = call(case, fake_server, response_format=ResponseFormatSpec(kind="json"))

    assert json.loads(response.text) == {
        "reply": f"fake {case.provider} reply to: hello there",
        "provider": case.provider,
    }


def test_json_schema_format_returns_json(case: Case, fake_server: FakeProviderServer) -> None:
    spec = ResponseFormatSpec(kind="json_schema", json_schema=SCHEMA, schema_name="answer")

    response = call(case, fake_server, response_format=spec)

    assert json.loads(response.text)["provider"] == case.provider


def test_max_tokens_truncation_reports_the_provider_reason(
    case: Case, fake_server: FakeProviderServer
) -> None:
    response = call(case, fake_server, parameters={"max_tokens": 3})

    assert response.text == f"fake {case.provider} reply"
    assert response.usage.output_tokens == 3
    assert response.finish_reason == case.length_reason


def test_429_with_retry_after_is_retryable(case: Case, fake_server: FakeProviderServer) -> None:
    fake_server.fail_next(1, status=429, retry_after=7, provider=case.provider)

    error = call_error(case, fake_server)

    assert (error.retryable, error.status, error.retry_after) == (True, 429, 7.0)
    assert only_request(fake_server).failed


@pytest.mark.parametrize("status", [408, 409, 500, 503, 529])
def test_transient_statuses_are_retryable(
    case: Case, fake_server: FakeProviderServer, status: int
) -> None:
    fake_server.fail_next(1, status=status)

    error = call_error(case, fake_server)

    assert (error.retryable, error.status, error.retry_after) == (True, status, None)
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retryable(
    case: Case, fake_server: FakeProviderServer, status: int
) -> None:
    fake_server.fail_next(1, status=status)

    error = call_error(case, fake_server)

    assert (error.retryable, error.status) == (False, status)
    assert "scripted failure" in str(error)
    assert fake_server.count() == 1


def test_a_reply_slower_than_the_timeout_is_a_retryable_timeout(
    case: Case, fake_server: FakeProviderServer
) -> None:
    fake_server.latency_seconds = 2.0

    error = call_error(case, fake_server, timeout_seconds=0.3)

    assert (error.retryable, error.status) == (True, None)
    assert "timed out after 0.3 s" in str(error)


@pytest.fixture
def fresh_sdk_loggers() -> Iterator[None]:
    """The SDK loggers' levels as in a new process (no adapter yet), restored afterwards."""
    loggers = [logging.getLogger(name) for name in ("httpx2", "httpcore2", "google_genai")]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, saved, strict=True):
        logger.setLevel(level)


@pytest.mark.usefixtures("fresh_sdk_loggers")
def test_sdk_calls_log_nothing_below_warning(
    case: Case, fake_server: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # an application logging everything at the root

    call(case, fake_server)

    # No "HTTP Request: POST ..." from httpx2 nor "AFC is enabled ..." from google-genai.
    sdk_names = ("httpx", "httpcore", "google_genai")
    noise = [r.getMessage() for r in caplog.records if r.name.startswith(sdk_names)]
    assert noise == []


def test_an_application_may_still_ask_for_the_request_log(
    fake_server: FakeProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx2")
    caplog.set_level(logging.INFO, logger="google_genai")

    call(BY_PROVIDER["google"], fake_server)

    assert "HTTP Request: POST" in caplog.text
    # The adapter passes no tools, so google-genai's automatic function calling stays off.
    assert "AFC" not in caplog.text


def test_connection_refused_is_retryable(case: Case) -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if case.provider == "openai" else "")
    request = ModelRequest(model=case.model, system_prompt="", user_prompt="hi")

    with pytest.raises(ProviderError) as info:
        generate(case, url, request)

    assert (info.value.retryable, info.value.status) == (True, None)
    assert "connection failed" in str(info.value)


def test_adapters_declare_provider_and_key_env() -> None:
    assert (OpenAIAdapter.provider, OpenAIAdapter.default_api_key_env) == (
        "openai",
        "OPENAI_API_KEY",
    )
    assert (GeminiAdapter.provider, GeminiAdapter.default_api_key_env) == (
        "google",
        "GEMINI_API_KEY",
    )
    assert (AnthropicAdapter.provider, AnthropicAdapter.default_api_key_env) == (
        "anthropic",
        "ANTHROPIC_API_KEY",
    )
    assert "top_k" not in OpenAIAdapter.supported_parameters
    assert "seed" not in AnthropicAdapter.supported_parameters
    assert GeminiAdapter.supported_parameters >= {"top_k", "seed", "stop", "max_tokens"}


@pytest.mark.parametrize(
    ("adapter", "modules", "extra"),
    [
        (OpenAIAdapter, ["openai"], "openai"),
        (GeminiAdapter, ["google.genai"], "gemini"),
        (AnthropicAdapter, ["anthropic"], "anthropic"),
    ],
)
def test_missing_sdk_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
    adapter: type[OpenAIAdapter | GeminiAdapter | AnthropicAdapter],
    modules: list[str],
    extra: str,
) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail

    with pytest.raises(MissingDependencyError) as info:
        adapter(api_key=API_KEY)

    assert info.value.extra == extra
    assert f"llm-scheduler[{extra}]" in str(info.value)


def test_retry_after_parses_seconds_milliseconds_and_http_dates() -> None:
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)

    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 55 <= (retry_after_seconds({"retry-after": in_a_minute}) or 0) <= 60
    assert retry_after_seconds({"retry-after": "Mon, 01 Jan 2001 00:00:00 GMT"}) == 0.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# -- the wire shape each provider receives -----------------------------------------------------

PARAMETERS = {
    "temperature": 0.3,
    "max_tokens": 50,
    "top_p": 0.9,
    "stop": ["END"],
}


def test_openai_wire_shape(fake_server: FakeProviderServer) -> None:
    parameters = {
        **PARAMETERS,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "reasoning_effort": "low",  # unknown to the adapter: passed through
    }

    call(BY_PROVIDER["openai"], fake_server, parameters=parameters)

    sent = only_request(fake_server)
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
        "temperature": 0.3,
        "max_completion_tokens": 50,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "reasoning_effort": "low",
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"choices": []}', "the response has no choices"),
        ('{"choices": [{"message": {"content": ["a"]}}]}', "the message content is list"),
        (
            '{"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": "3"}}',
            "prompt_tokens is '3', not a token count",
        ),
    ],
    ids=["no-choices", "content-not-text", "tokens-not-a-count"],
)
def test_openai_replies_with_wrong_fields_are_malformed_and_retryable(
    body: str, detail: str, fake_server: FakeProviderServer
) -> None:
    # The adapter reads the reply's JSON itself (the SDK's reply model is not built), so it
    # checks the fields it reads.
    fake_server.malformed_next(1, body=body)
    error = call_error(BY_PROVIDER["openai"], fake_server)
    assert error.retryable and f"malformed response: {detail}" in str(error)


def test_openai_reply_without_usage_or_finish_reason_reads_as_zero_and_empty(
    fake_server: FakeProviderServer,
) -> None:
    fake_server.malformed_next(1, body='{"choices": [{"message": {"content": null}}]}')
    response = call(BY_PROVIDER["openai"], fake_server)
    assert (response.text, response.finish_reason) == ("", "")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (0, 0)
    assert response.model == BY_PROVIDER["openai"].model


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"content": [{"type": "text", "text": "hi"}]}', "the response has no content or no"),
        ('{"content": [{"type": "text", "text": ["a"]}], "usage": {}}', "a text block holds list"),
        (
            '{"content": [], "usage": {"input_tokens": 1.5}}',
            "input_tokens is 1.5, not a token count",
        ),
        ("[1, 2]", "the response is not a JSON object"),
    ],
    ids=["no-usage", "text-not-text", "tokens-not-a-count", "not-an-object"],
)
def test_anthropic_replies_with_wrong_fields_are_malformed_and_retryable(
    body: str, detail: str, fake_server: FakeProviderServer
) -> None:
    # As for OpenAI, the adapter reads the reply's JSON itself and checks the fields it reads.
    fake_server.malformed_next(1, body=body)
    error = call_error(BY_PROVIDER["anthropic"], fake_server)
    assert error.retryable and f"malformed response: {detail}" in str(error)


def test_anthropic_reply_counts_cache_reads_and_writes_in_the_input_tokens(
    fake_server: FakeProviderServer,
) -> None:
    body = {
        "model": "claude-reported",
        "stop_reason": "end_turn",
        "content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "Hello"},
            {"type": "text", "text": ", owls"},
        ],
        "usage": {
            "input_tokens": 10,
            "output_tokens": 4,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 7,
        },
    }
    fake_server.malformed_next(1, body=json.dumps(body))
    response = call(BY_PROVIDER["anthropic"], fake_server)
    assert (response.text, response.model, response.finish_reason) == (
        "Hello, owls",
        "claude-reported",
        "end_turn",
    )
    assert response.usage == Usage(
        input_tokens=117, output_tokens=4, cached_input_tokens=100, cache_write_input_tokens=7
    )


def test_anthropic_cache_writes_from_the_fake_server_are_counted_apart(
    fake_server: FakeProviderServer,
) -> None:
    fake_server.cached_input_tokens = 1
    fake_server.cache_write_input_tokens = 2

    response = call(BY_PROVIDER["anthropic"], fake_server)

    # "be brief" + "hello there" in: 1 read from the cache, 2 written to it, 1 neither.
    assert response.usage == Usage(
        input_tokens=4, output_tokens=6, cached_input_tokens=1, cache_write_input_tokens=2
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ResponseFormatSpec(kind="json"), {"type": "json_object"}),
        (
            ResponseFormatSpec(kind="json_schema", json_schema=SCHEMA, schema_name="answer"),
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": SCHEMA, "strict": False},
            },
        ),
    ],
)
def test_openai_response_format(
    fake_server: FakeProviderServer, spec: ResponseFormatSpec, expected: dict[str, Any]
) -> None:
    call(BY_PROVIDER["openai"], fake_server, response_format=spec)

    assert only_request(fake_server).body["response_format"] == expected


def test_gemini_wire_shape(fake_server: FakeProviderServer) -> None:
    parameters = {
        **PARAMETERS,
        "top_k": 40,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "candidateCount": 1,  # unknown to the adapter: merged into generationConfig
    }

    call(BY_PROVIDER["google"], fake_server, parameters=parameters, timeout_seconds=2.5)

    sent = only_request(fake_server)
    assert sent.path == "/v1/models/gemini-test:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert sent.headers["x-server-timeout"] == "3"
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert sent.body["systemInstruction"]["parts"] == [{"text": "be brief"}]
    assert sent.body["generationConfig"] == {
        "temperature": 0.3,
        "maxOutputTokens": 50,
        "topP": 0.9,
        "topK": 40,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "candidateCount": 1,
    }


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ('{"candidates": []}', "no candidates returned"),
        ('{"candidates": [{"content": {"parts": [{"text": 3}]}}]}', "a part's text is int"),
        (
            '{"candidates": [{}], "usageMetadata": {"promptTokenCount": "3"}}',
            "promptTokenCount is '3', not a token count",
        ),
        ('{"candidates": ["a"]}', "the candidates are not a list of objects"),
        ("[1]", "the response is not a JSON object"),
    ],
    ids=["no-candidates", "text-not-text", "tokens-not-a-count", "candidate-not-object", "list"],
)
def test_gemini_replies_with_wrong_fields_are_malformed_and_retryable(
    body: str, detail: str, fake_server: FakeProviderServer
) -> None:
    # The adapter reads the reply's JSON itself (the SDK's reply model is not built).
    fake_server.malformed_next(1, body=body)
    error = call_error(BY_PROVIDER["google"], fake_server)
    assert error.retryable and f"malformed response: {detail}" in str(error)


def test_gemini_reply_skips_thoughts_and_bills_them_as_output(
    fake_server: FakeProviderServer,
) -> None:
    body = {
        "modelVersion": "gemini-reported",
        "candidates": [
            {
                "finishReason": "STOP",
                "content": {
                    "role": "model",
                    "parts": [{"text": "pondering", "thought": True}, {"text": "Owls hoot."}],
                },
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 3,
            "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 8,
        },
    }
    fake_server.malformed_next(1, body=json.dumps(body))
    response = call(BY_PROVIDER["google"], fake_server)
    assert (response.text, response.model, response.finish_reason) == (
        "Owls hoot.",
        "gemini-reported",
        "STOP",
    )
    assert response.usage == Usage(input_tokens=12, output_tokens=8, cached_input_tokens=8)


def test_gemini_blocked_prompt_is_a_clear_error_not_retried(
    fake_server: FakeProviderServer,
) -> None:
    fake_server.malformed_next(1, body='{"promptFeedback": {"blockReason": "SAFETY"}}')
    error = call_error(BY_PROVIDER["google"], fake_server)
    assert not error.retryable and "the prompt was blocked (SAFETY)" in str(error)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ResponseFormatSpec(kind="json"), {"responseMimeType": "application/json"}),
        (
            ResponseFormatSpec(kind="json_schema", json_schema=SCHEMA),
            {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA},
        ),
    ],
)
def test_gemini_response_format(
    fake_server: FakeProviderServer, spec: ResponseFormatSpec, expected: dict[str, Any]
) -> None:
    call(BY_PROVIDER["google"], fake_server, response_format=spec)

    assert only_request(fake_server).body["generationConfig"] == expected


def test_anthropic_wire_shape(fake_server: FakeProviderServer) -> None:
    parameters = {**PARAMETERS, "top_k": 40, "custom_field": {"a": 1}}

    call(BY_PROVIDER["anthropic"], fake_server, parameters=parameters)

    sent = only_request(fake_server)
    assert sent.path == "/v1/messages"
    # anthropic 2.11 sends the key as a bearer token rather than x-api-key.
    assert API_KEY in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "")[7:])
    assert "anthropic-version" in sent.headers
    assert sent.body == {
        "model": "claude-test",
        "max_tokens": 50,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}],
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "custom_field": {"a": 1},
    }


def test_anthropic_defaults_max_tokens(fake_server: FakeProviderServer) -> None:
    call(BY_PROVIDER["anthropic"], fake_server)

    assert only_request(fake_server).body["max_tokens"] == 1024


def test_anthropic_json_asks_in_the_system_prompt(fake_server: FakeProviderServer) -> None:
    call(BY_PROVIDER["anthropic"], fake_server, response_format=ResponseFormatSpec(kind="json"))

    body = only_request(fake_server).body
    assert body["system"].startswith("be brief\n\n")
    assert "JSON object" in body["system"]
    assert "output_config" not in body


def test_anthropic_json_schema_uses_structured_output(fake_server: FakeProviderServer) -> None:
    spec = ResponseFormatSpec(kind="json_schema", json_schema=SCHEMA)

    call(BY_PROVIDER["anthropic"], fake_server, response_format=spec)

    body = only_request(fake_server).body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert body["system"] == "be brief"


def test_adapters_share_one_server_concurrently(fake_server: FakeProviderServer) -> None:
    fake_server.latency_seconds = 0.3
    request = ModelRequest(model="m", system_prompt="", user_prompt="hi")

    async def run_all() -> list[ModelResponse]:
        adapters = [c.make(c.base_url(fake_server)) for c in CASES for _ in range(2)]
        try:
            return await asyncio.gather(*(a.generate(request) for a in adapters))
        finally:
            await asyncio.gather(*(a.aclose() for a in adapters))

    responses = asyncio.run(run_all())

    assert len(responses) == 6
    assert fake_server.max_in_flight == 6
    assert {p: fake_server.count(p) for p in BY_PROVIDER} == {p: 2 for p in BY_PROVIDER}

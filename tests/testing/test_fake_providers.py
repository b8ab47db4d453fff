"""The fake provider server over plain HTTP (the adapter tests drive it with the real SDKs)."""

from __future__ import annotations

import concurrent.futures
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from llm_scheduler.testing import FakeProviderServer

OPENAI_BODY = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "what now"}]},
    ],
}
GEMINI_PATH = "/v1beta/models/gemini-test:generateContent"
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "what now"}]}]}
ANTHROPIC_BODY = {
    "model": "claude-test",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "what now"}],
}
KEYS = {
    "openai": {"Authorization": "Bearer k"},
    "google": {"x-goog-api-key": "k"},
    "anthropic": {"x-api-key": "k"},
}


@pytest.fixture(scope="module")
def module_server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def server(module_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    module_server.reset()
    yield module_server
    module_server.reset()


def post(
    url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.load(error)


def post_openai(server: FakeProviderServer, body: Any = OPENAI_BODY) -> tuple[int, Any]:
    status, _, reply = post(f"{server.openai_base_url}/chat/completions", body, KEYS["openai"])
    return status, reply


def test_base_urls(server: FakeProviderServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.openai_base_url == f"{server.url}/v1"
    assert server.gemini_base_url == server.anthropic_base_url == server.url


def test_openai_reply_and_recording(server: FakeProviderServer) -> None:
    server.cached_input_tokens = 1

    status, reply = post_openai(server)

    assert status == 200
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "fake openai reply to: what now"
    assert reply["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 6,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    (recorded,) = server.requests
    assert (recorded.provider, recorded.path, recorded.failed) == (
        "openai",
        "/v1/chat/completions",
        False,
    )
    assert recorded.headers["authorization"] == "Bearer k"
    assert recorded.body == OPENAI_BODY


def test_gemini_reply_accepts_any_api_version(server: FakeProviderServer) -> None:
    status, _, reply = post(f"{server.url}{GEMINI_PATH}", GEMINI_BODY, KEYS["google"])

    assert status == 200
    assert reply["candidates"][0]["content"]["parts"] == [
        {"text": "fake google reply to: what now"}
    ]
    assert reply["candidates"][0]["finishReason"] == "STOP"
    assert reply["modelVersion"] == "gemini-test"
    assert reply["usageMetadata"]["promptTokenCount"] == 2
    assert server.count("google") == 1


def test_anthropic_reply_counts_cache_reads_apart(server: FakeProviderServer) -> None:
    server.cached_input_tokens = 1

    status, _, reply = post(f"{server.url}/v1/messages", ANTHROPIC_BODY, KEYS["anthropic"])

    assert status == 200
    assert reply["content"] == [{"type": "text", "text": "fake anthropic reply to: what now"}]
    assert reply["stop_reason"] == "end_turn"
    assert reply["usage"]["input_tokens"] == 1
    assert reply["usage"]["cache_read_input_tokens"] == 1


JSON_REQUESTS = [
    ("openai", "/v1/chat/completions", {"response_format": {"type": "json_object"}}),
    ("google", GEMINI_PATH, {"generationConfig": {"responseMimeType": "application/json"}}),
    ("anthropic", "/v1/messages", {"system": "Answer in JSON."}),
    ("anthropic", "/v1/messages", {"output_config": {"format": {"type": "json_schema"}}}),
]
BODIES: dict[str, dict[str, Any]] = {
    "openai": OPENAI_BODY,
    "google": GEMINI_BODY,
    "anthropic": ANTHROPIC_BODY,
}


@pytest.mark.parametrize(("provider", "path", "asks_json"), JSON_REQUESTS)
def test_json_requests_get_json_text(
    server: FakeProviderServer, provider: str, path: str, asks_json: dict[str, Any]
) -> None:
    body = {**BODIES[provider], **asks_json}

    _, _, reply = post(f"{server.url}{path}", body, KEYS[provider])

    text = {
        "openai": lambda: reply["choices"][0]["message"]["content"],
        "google": lambda: reply["candidates"][0]["content"]["parts"][0]["text"],
        "anthropic": lambda: reply["content"][0]["text"],
    }[provider]()
    assert json.loads(text) == {
        "reply": f"fake {provider} reply to: what now",
        "provider": provider,
    }


def test_responder_overrides_the_text(server: FakeProviderServer) -> None:
    seen: list[tuple[str, Any]] = []

    def responder(provider: str, body: dict[str, Any]) -> str:
        seen.append((provider, body["model"]))
        return "custom"

    server.responder = responder

    _, reply = post_openai(server)

    assert reply["choices"][0]["message"]["content"] == "custom"
    assert seen == [("openai", "gpt-test")]


def test_scripted_failures_are_provider_shaped_and_recorded(server: FakeProviderServer) -> None:
    server.fail_next(1, status=429, retry_after=2.5, provider="anthropic")
    server.fail_next(1, status=503)

    # The anthropic failure waits for an anthropic request; the unscoped one takes the next.
    assert post_openai(server)[0] == 503
    status, headers, reply = post(f"{server.url}/v1/messages", ANTHROPIC_BODY, KEYS["anthropic"])
    assert post_openai(server)[0] == 200

    assert status == 429
    assert headers["Retry-After"] == "2.5"
    assert reply == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "scripted failure"},
    }
    assert [r.failed for r in server.requests] == [True, True, False]
    assert (server.count(), server.count("openai"), server.count("anthropic")) == (3, 2, 1)


def test_gemini_error_body(server: FakeProviderServer) -> None:
    server.fail_next(1, status=429)

    status, headers, reply = post(f"{server.url}{GEMINI_PATH}", GEMINI_BODY, KEYS["google"])

    assert status == 429
    assert "Retry-After" not in headers
    assert reply == {
        "error": {"code": 429, "message": "scripted failure", "status": "RESOURCE_EXHAUSTED"}
    }


def test_missing_key_is_401(server: FakeProviderServer) -> None:
    status, _, reply = post(f"{server.openai_base_url}/chat/completions", OPENAI_BODY)

    assert status == 401
    assert reply["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_404_and_not_recorded(server: FakeProviderServer) -> None:
    status, _, _ = post(f"{server.url}/v1/completions", {}, KEYS["openai"])

    assert status == 404
    assert server.count() == 0


def test_latency_and_concurrency(server: FakeProviderServer) -> None:
    server.latency_seconds = 0.3
    started = time.monotonic()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: post_openai(server)[0], range(4)))

    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert elapsed >= 0.3  # the latency was applied (a lower bound: a busy machine only adds)
    assert server.max_in_flight == 4  # concurrent, not one after another


def post_raw(url: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
    """Posts JSON and returns the status and the reply body undecoded."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_malformed_body_is_a_200_with_the_body_verbatim(server: FakeProviderServer) -> None:
    server.malformed_next(1, provider="anthropic")
    server.malformed_next(1, body='{"unexpected": true}')

    # The anthropic body waits for an anthropic request; the unscoped one takes the next.
    openai_url = f"{server.openai_base_url}/chat/completions"
    status, raw = post_raw(openai_url, OPENAI_BODY, KEYS["openai"])
    assert (status, json.loads(raw)) == (200, {"unexpected": True})
    status, raw = post_raw(f"{server.url}/v1/messages", ANTHROPIC_BODY, KEYS["anthropic"])
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)
    assert post_openai(server)[0] == 200

    assert [r.failed for r in server.requests] == [True, True, False]


def test_trickled_reply_arrives_whole_one_byte_at_a_time(server: FakeProviderServer) -> None:
    server.trickle_next(1, seconds_per_byte=0.002, provider="openai")
    url = f"{server.openai_base_url}/chat/completions"
    started = time.monotonic()

    status, raw = post_raw(url, OPENAI_BODY, KEYS["openai"])

    elapsed = time.monotonic() - started
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "fake openai reply to: what now"
    assert elapsed >= 0.002 * len(raw)
    assert [r.failed for r in server.requests] == [False]
    started = time.monotonic()
    assert post_openai(server)[0] == 200  # only the scripted reply trickles
    assert time.monotonic() - started < 0.002 * len(raw)


def test_a_client_leaving_a_trickle_does_not_stop_the_server(
    server: FakeProviderServer,
) -> None:
    server.trickle_next(1, seconds_per_byte=0.01)
    request = urllib.request.Request(
        f"{server.openai_base_url}/chat/completions",
        data=json.dumps(OPENAI_BODY).encode(),
        headers=KEYS["openai"],
        method="POST",
    )

    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.read(3) == b'{"i'  # then hangs up mid-body

    assert post_openai(server)[0] == 200


def change_everything(server: FakeProviderServer) -> None:
    server.fail_next(2)
    server.malformed_next(1)
    server.trickle_next(1)
    server.latency_seconds = 0.1
    server.cached_input_tokens = 5
    server.cache_write_input_tokens = 3
    server.responder = lambda provider, body: "x"
    post_openai(server)


def test_reset_restores_defaults(server: FakeProviderServer) -> None:
    change_everything(server)

    server.reset()

    assert server.requests == [] and server.count() == 0
    assert server.responder is None
    assert (server.latency_seconds, server.cached_input_tokens, server.max_in_flight) == (0, 0, 0)
    assert server.cache_write_input_tokens == 0
    assert post_openai(server)[0] == 200


def test_start_stop_lifecycle() -> None:
    server = FakeProviderServer().start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        url = server.url
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with pytest.raises(urllib.error.URLError):
        post(f"{url}/v1/chat/completions", OPENAI_BODY, KEYS["openai"])

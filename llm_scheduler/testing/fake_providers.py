"""A local HTTP server that speaks the OpenAI, Gemini and Anthropic wire formats.

Tests point the real provider SDKs at it (``base_url``) so adapters are exercised over real HTTP,
with no network and no ``mock.patch``. Replies are deterministic, every request is recorded, and
failures (429 with ``Retry-After``, 5xx, malformed 200 bodies, ...), latency and replies that
trickle in byte by byte can be scripted. Besides chat it answers embeddings: OpenAI's
``/v1/embeddings`` (floats or base64) and Gemini's ``:embedContent`` and
``:batchEmbedContents``, with vectors derived from the text (`offline_vector`).

Example::

    with FakeProviderServer() as server:
        client = openai.AsyncOpenAI(api_key="test", base_url=server.openai_base_url)
        ...
        assert server.count("openai") == 1
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import http.server
import itertools
import json
import re
import struct
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from llm_scheduler.models.offline import offline_vector

__all__ = ["FakeProviderServer", "RecordedRequest", "Responder"]

Responder = Callable[[str, dict[str, Any]], str]
"""Computes a reply text from the provider name and the parsed request body."""

_OPENAI_PATH = "/v1/chat/completions"
_OPENAI_EMBEDDINGS_PATH = "/v1/embeddings"
_ANTHROPIC_PATH = "/v1/messages"
# google-genai puts the API version first (``/v1/...`` by default, ``/v1beta/...`` when asked).
_GEMINI_PATH = re.compile(
    r"^/(?P<version>v\d+[a-z0-9]*)/models/(?P<model>[^/:]+)"
    r":(?P<method>generateContent|embedContent|batchEmbedContents)$"
)

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ANTHROPIC_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """One request the server received.

    Attributes:
        provider: ``openai``, ``google`` or ``anthropic``.
        path: The URL path, without the query string.
        headers: The request headers, names lower-cased.
        body: The parsed JSON body.
        failed: Whether the server answered it with a scripted failure (an error status or a
            malformed body).
    """

    provider: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    failed: bool = False


# Cut off mid-value, like a body truncated by a proxy.
_MALFORMED_BODY = '{"id": "truncated", "choices": [{"index": 0, "message": {"content": "cut'


@dataclasses.dataclass(frozen=True)
class _Script:
    """How to answer one upcoming request instead of the default reply."""

    provider: str | None
    status: int = 0  # an error status; 0 for none
    retry_after: float | None = None
    raw_body: str | None = None  # sent verbatim with HTTP 200
    seconds_per_byte: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.status) or self.raw_body is not None


@dataclasses.dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    raw_body: str | None = None  # replaces `body` on the wire when set
    seconds_per_byte: float = 0.0


class FakeProviderServer:
    """A threaded fake of three provider APIs on ``127.0.0.1`` and a free port.

    Use it as a context manager or call `start` and `stop`. Settings may be changed while it
    runs; `reset` restores them and forgets the recorded requests.

    Attributes:
        responder: When set, computes every reply text instead of the default
            ``fake {provider} reply to: {last user message}``.
        latency_seconds: Seconds to wait before each reply, so timeouts and concurrency can be
            tested.
        cached_input_tokens: Input tokens to report as served from the provider's prompt cache
            (capped at the input token count).
        cache_write_input_tokens: Input tokens to report as written to the prompt cache
            (Anthropic replies only, as ``cache_creation_input_tokens``; capped at the input
            tokens not read from the cache).
        embedding_dimensions: The length of an embedding when the request asks for none.
        gemini_embedding_usage: Whether Gemini embedding replies carry ``usageMetadata`` with
            a prompt token count (the real API's have not always).
    """

    def __init__(self) -> None:
        self.responder: Responder | None = None
        self.latency_seconds: float = 0.0
        self.cached_input_tokens: int = 0
        self.cache_write_input_tokens: int = 0
        self.embedding_dimensions: int = 8
        self.gemini_embedding_usage: bool = True
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        # Bumped by reset, so replies still in flight from before it are not counted after it.
        self._generation = 0
        self._scripts: collections.deque[_Script] = collections.deque()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        """Binds a free port and serves in a background thread.

        Returns:
            The server itself, for chaining.

        Raises:
            RuntimeError: When it is already running.
        """
        if self._httpd is not None:
            raise RuntimeError("FakeProviderServer is already running")
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-provider-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket; does nothing when not running."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        # Wakes handlers sleeping in `latency_seconds` so they do not outlive the server.
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("FakeProviderServer is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for the OpenAI SDK (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def gemini_base_url(self) -> str:
        """The ``base_url`` for google-genai (it appends ``/{api_version}/models/...``)."""
        return self.url

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for the Anthropic SDK (it appends ``/v1/messages``)."""
        return self.url

    # -- scripting and inspection ----------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, provider: str | None = None) -> int:
        """Counts the requests received, for one provider or all of them."""
        with self._lock:
            return sum(1 for r in self._requests if provider is None or r.provider == provider)

    @property
    def max_in_flight(self) -> int:
        """The most requests the server was answering at the same time since the last reset."""
        with self._lock:
            return self._max_in_flight

    def fail_next(
        self,
        count: int,
        status: int = 429,
        retry_after: float | None = None,
        provider: str | None = None,
    ) -> None:
        """Answers the next ``count`` requests with an error.

        Args:
            count: How many requests fail.
            status: The HTTP status to answer with.
            retry_after: Seconds to send in a ``Retry-After`` header; none when omitted.
            provider: Only requests to this provider fail (and consume the failure).
        """
        self._script(count, _Script(provider, status=status, retry_after=retry_after))

    def malformed_next(
        self, count: int, body: str = _MALFORMED_BODY, provider: str | None = None
    ) -> None:
        """Answers the next ``count`` requests with HTTP 200 and a body that is not a reply.

        Args:
            count: How many requests get the body.
            body: Sent verbatim as ``application/json``; by default truncated JSON. Valid JSON
                of the wrong shape tests how clients check the reply's fields.
            provider: Only requests to this provider get it (and consume it).
        """
        self._script(count, _Script(provider, raw_body=body))

    def trickle_next(
        self, count: int, seconds_per_byte: float = 0.5, provider: str | None = None
    ) -> None:
        """Sends the next ``count`` replies slowly: headers at once, then one body byte at a time.

        Every read then gets a byte before a per-read timeout fires, so only a deadline on the
        whole request stops it.

        Args:
            count: How many replies trickle.
            seconds_per_byte: The pause before each byte of the body.
            provider: Only requests to this provider trickle (and consume it).
        """
        self._script(count, _Script(provider, seconds_per_byte=seconds_per_byte))

    def reset(self) -> None:
        """Forgets requests and scripted replies and restores the default settings."""
        with self._lock:
            self._requests.clear()
            self._scripts.clear()
            self._in_flight = self._max_in_flight = 0
            self._generation += 1
        self.responder = None
        self.latency_seconds = 0.0
        self.cached_input_tokens = 0
        self.cache_write_input_tokens = 0
        self.embedding_dimensions = 8
        self.gemini_embedding_usage = True

    # -- request handling (runs in handler threads) ----------------------------------------

    def _handle(self, provider: str, path: str, headers: dict[str, str], body: Any) -> _Reply:
        if not isinstance(body, dict):
            return _error_reply(provider, 400, "request body must be a JSON object")
        with self._lock:
            script = self._take_script(provider)
            failed = script is not None and script.failed
            self._requests.append(RecordedRequest(provider, path, headers, body, failed))
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            generation = self._generation
        try:
            if self.latency_seconds > 0:
                self._stopping.wait(self.latency_seconds)
            return self._reply(provider, path, headers, body, script)
        finally:
            with self._lock:
                if generation == self._generation:
                    self._in_flight -= 1

    def _reply(
        self,
        provider: str,
        path: str,
        headers: dict[str, str],
        body: dict[str, Any],
        script: _Script | None,
    ) -> _Reply:
        if script is not None and script.status:
            reply = _error_reply(provider, script.status, "scripted failure")
            if script.retry_after is not None:
                reply.headers["Retry-After"] = format(script.retry_after, "g")
            return reply
        if script is not None and script.raw_body is not None:
            return _Reply(200, {}, raw_body=script.raw_body)
        if not _has_api_key(provider, headers):
            return _error_reply(provider, 401, "missing API key")
        reply = self._success(provider, path, body)
        if script is not None and script.seconds_per_byte > 0:
            reply = dataclasses.replace(reply, seconds_per_byte=script.seconds_per_byte)
        return reply

    def _script(self, count: int, script: _Script) -> None:
        with self._lock:
            self._scripts.extend(script for _ in range(count))

    def _take_script(self, provider: str) -> _Script | None:
        for script in self._scripts:
            if script.provider in (None, provider):
                self._scripts.remove(script)
                return script
        return None

    def _success(self, provider: str, path: str, body: dict[str, Any]) -> _Reply:
        if path == _OPENAI_EMBEDDINGS_PATH:
            return self._openai_embeddings(body)
        match = _GEMINI_PATH.match(path)
        if match and match.group("method") != "generateContent":
            return self._gemini_embeddings(match.group("model"), match.group("method"), body)
        prompt, wants_json, max_tokens = _read_request(provider, body)
        if self.responder is not None:
            text = self.responder(provider, body)
        else:
            text = f"fake {provider} reply to: {prompt[-1] if prompt else ''}"
            if wants_json:
                text = json.dumps({"reply": text, "provider": provider})
        words = text.split()
        truncated = max_tokens is not None and len(words) > max_tokens
        if truncated:
            text = " ".join(words[:max_tokens])
        input_tokens = sum(len(part.split()) for part in prompt)
        cached = min(self.cached_input_tokens, input_tokens)
        usage = _Usage(
            input=input_tokens,
            output=len(text.split()),
            cached=cached,
            written=min(self.cache_write_input_tokens, input_tokens - cached),
        )
        reply_id = next(self._ids)
        if provider == "openai":
            return _Reply(200, _openai_reply(reply_id, body, text, usage, truncated))
        if provider == "google":
            match = _GEMINI_PATH.match(path)
            model = match.group("model") if match else ""
            return _Reply(200, _gemini_reply(reply_id, model, text, usage, truncated))
        return _Reply(200, _anthropic_reply(reply_id, body, text, usage, truncated))

    def _vector(self, model: str, text: str, dimensions: Any) -> list[float]:
        size = dimensions if isinstance(dimensions, int) and dimensions > 0 else 0
        return list(offline_vector(model, text, size or self.embedding_dimensions))

    def _openai_embeddings(self, body: dict[str, Any]) -> _Reply:
        model = str(body.get("model", ""))
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error_reply("openai", 400, "input must be a string or a list of strings")
        if any(not text for text in texts):
            return _error_reply("openai", 400, "input cannot be an empty string")
        data = []
        for index, text in enumerate(texts):
            vector: Any = self._vector(model, text, body.get("dimensions"))
            if body.get("encoding_format") == "base64":
                # What the SDK asks for by default: little-endian float32, base64-encoded.
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(text.split()) for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _Reply(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def _gemini_embeddings(self, model: str, method: str, body: dict[str, Any]) -> _Reply:
        requests = body.get("requests") if method == "batchEmbedContents" else [body]
        if not isinstance(requests, list) or not requests:
            return _error_reply("google", 400, "no requests to embed")
        embeddings = []
        tokens = 0
        for request in requests:
            content = request.get("content") if isinstance(request, dict) else None
            parts = content.get("parts", []) if isinstance(content, dict) else []
            text = "".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
            if not text:
                return _error_reply("google", 400, "the content to embed is empty")
            dimensions = request.get("outputDimensionality")
            embeddings.append({"values": self._vector(model, text, dimensions)})
            tokens += len(text.split())
        if method == "embedContent":
            return _Reply(200, {"embedding": embeddings[0]})
        reply: dict[str, Any] = {"embeddings": embeddings}
        if self.gemini_embedding_usage:
            reply["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
        return _Reply(200, reply)


@dataclasses.dataclass(frozen=True)
class _Usage:
    input: int
    output: int
    cached: int
    written: int = 0  # cache writes (Anthropic replies only)


def _provider_for(path: str) -> str | None:
    if path in (_OPENAI_PATH, _OPENAI_EMBEDDINGS_PATH):
        return "openai"
    if path == _ANTHROPIC_PATH:
        return "anthropic"
    if _GEMINI_PATH.match(path):
        return "google"
    return None


def _has_api_key(provider: str, headers: dict[str, str]) -> bool:
    if provider == "openai":
        return headers.get("authorization", "").startswith("Bearer ")
    if provider == "google":
        return bool(headers.get("x-goog-api-key"))
    return bool(headers.get("x-api-key") or headers.get("authorization"))


def _text_of(content: Any) -> str:
    """The text of an OpenAI/Anthropic message content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _read_request(provider: str, body: dict[str, Any]) -> tuple[list[str], bool, int | None]:
    """Returns the prompt texts (last user message last), whether JSON was asked, max tokens."""
    texts: list[str] = []
    if provider == "openai":
        for message in body.get("messages", []):
            texts.append(_text_of(message.get("content")))
        fmt = body.get("response_format") or {}
        wants_json = fmt.get("type") in ("json_object", "json_schema")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
    elif provider == "google":
        system = body.get("systemInstruction") or {}
        texts.extend(str(p.get("text", "")) for p in system.get("parts", []))
        for content in body.get("contents", []):
            texts.append("".join(str(p.get("text", "")) for p in content.get("parts", [])))
        config = body.get("generationConfig") or {}
        wants_json = config.get("responseMimeType") == "application/json"
        limit = config.get("maxOutputTokens")
    else:
        system = _text_of(body.get("system"))
        texts.append(system)
        for message in body.get("messages", []):
            texts.append(_text_of(message.get("content")))
        output_format = (body.get("output_config") or {}).get("format")
        # Without structured output, a model told to answer in JSON does so.
        wants_json = output_format is not None or "json" in system.lower()
        limit = body.get("max_tokens")
    return texts, wants_json, limit if isinstance(limit, int) else None


def _openai_reply(
    reply_id: int, body: dict[str, Any], text: str, usage: _Usage, truncated: bool
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{reply_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if truncated else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.input,
            "completion_tokens": usage.output,
            "total_tokens": usage.input + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cached},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def _gemini_reply(
    reply_id: int, model: str, text: str, usage: _Usage, truncated: bool
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "promptTokenCount": usage.input,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": usage.input + usage.output,
    }
    if usage.cached:
        # Like the real API, the field is only present when something was cached.
        metadata["cachedContentTokenCount"] = usage.cached
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": "MAX_TOKENS" if truncated else "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": metadata,
        "modelVersion": model,
        "responseId": f"fake{reply_id}",
    }


def _anthropic_reply(
    reply_id: int, body: dict[str, Any], text: str, usage: _Usage, truncated: bool
) -> dict[str, Any]:
    return {
        "id": f"msg_fake{reply_id}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", ""),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if truncated else "end_turn",
        "stop_sequence": None,
        "usage": {
            # Anthropic counts cache reads and writes apart from (not inside) input_tokens.
            "input_tokens": usage.input - usage.cached - usage.written,
            "output_tokens": usage.output,
            "cache_read_input_tokens": usage.cached,
            "cache_creation_input_tokens": usage.written,
        },
    }


def _error_reply(provider: str | None, status: int, message: str) -> _Reply:
    if provider == "google":
        error = {
            "code": status,
            "message": message,
            "status": _GEMINI_STATUS.get(status, "UNKNOWN"),
        }
        return _Reply(status, {"error": error})
    if provider == "anthropic":
        kind = _ANTHROPIC_TYPE.get(status, "api_error")
        return _Reply(status, {"type": "error", "error": {"type": kind, "message": message}})
    code = "rate_limit_exceeded" if status == 429 else "server_error" if status >= 500 else None
    kind = "invalid_request_error" if code is None else code
    return _Reply(
        status, {"error": {"message": message, "type": kind, "param": None, "code": code}}
    )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[http.server.BaseHTTPRequestHandler],
        fake: FakeProviderServer,
    ) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out closes its socket before the reply: expected, not worth a
        # traceback. Anything else (a failing responder) is printed by the base class.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 10

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        provider = _provider_for(path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if provider is None:
            self._send(_error_reply(None, 404, f"no fake endpoint at {path}"))
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._send(_error_reply(provider, 400, "request body is not JSON"))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        self._send(self.server.fake._handle(provider, path, headers, body))

    def do_GET(self) -> None:
        self._send(_error_reply(None, 404, f"no fake endpoint at {self.path}"))

    def _send(self, reply: _Reply) -> None:
        text = reply.raw_body if reply.raw_body is not None else json.dumps(reply.body)
        payload = text.encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.seconds_per_byte <= 0:
            self.wfile.write(payload)
            return
        stopping = self.server.fake._stopping
        for index in range(len(payload)):
            if stopping.wait(reply.seconds_per_byte):
                self.close_connection = True
                return
            # A client that gave up closes the socket: the write raises ConnectionError, which
            # ends the handler quietly (see _Server.handle_error).
            self.wfile.write(payload[index : index + 1])

    def log_message(self, format: str, *args: Any) -> None:
        # Tests do not want an access log on stderr.
        pass

"""A lean OpenAI-compatible server for benchmarks: asyncio, HTTP/1.1 keep-alive, fixed latency.

It speaks just enough of the Chat Completions API for the ``openai`` SDK: ``POST
/v1/chat/completions`` answers a proper ``chat.completion`` object (with ``usage``) after a fixed
latency, scheduled on the event loop so hundreds of requests can wait at once. Run it in its own
process (`ServerProcess`) so it never shares the measured event loop or its core.

Control endpoints (for the benchmark runner, not the SDK):

- ``GET /stats``: ``{"chat_completions": N, "in_flight": N, "max_in_flight": N,
  "connections": N, "open_connections": N, "latency_ms": X}`` (``connections``: opened since
  the last reset)
- ``POST /control`` with ``{"latency_ms": X, "reset": true}`` (both optional): set the latency,
  zero the counters.

Usage: ``python -m bench.fake_openai_server --port=0 --latency-ms=0``; it prints
``{"port": N}`` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any

__all__ = ["FakeOpenAIServer", "ServerProcess", "main"]

_CHAT_PATH = "/v1/chat/completions"
_OTLP_PATHS = ("/v1/traces", "/v1/metrics")
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required"}
_MAX_HEAD = 64 * 1024


class FakeOpenAIServer:
    """The server's state: latency and counters shared by every connection."""

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency = latency_ms / 1000
        self.completions = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self.open_connections = 0
        # OTLP/HTTP exports received (the W1 variant with OpenTelemetry exports here), and bytes.
        self.otlp_requests = 0
        self.otlp_bytes = 0

    def stats(self) -> dict[str, Any]:
        return {
            "chat_completions": self.completions,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "connections": self.connections,
            "open_connections": self.open_connections,
            "latency_ms": self.latency * 1000,
            "otlp_requests": self.otlp_requests,
            "otlp_bytes": self.otlp_bytes,
        }

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        if "latency_ms" in body:
            self.latency = float(body["latency_ms"]) / 1000
        if body.get("reset"):
            self.completions = 0
            self.max_in_flight = self.in_flight
            self.connections = 0
        return self.stats()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """A deterministic, short ``chat.completion`` for a request body."""
        self.completions += 1
        messages = body.get("messages") or [{}]
        prompt = str(messages[-1].get("content", ""))
        # Short and bounded, so a chain that feeds each answer into the next prompt stays small.
        text = f"answer {self.completions}: {prompt[:48]}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        return {
            "id": f"chatcmpl-bench-{self.completions}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "bench")),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": None,
        }


class _Connection(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order (no pipelining is assumed)."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections += 1
        self.server.open_connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.server.open_connections -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.closing:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self._send(400, {"error": {"message": "header too large"}}, keep_alive=False)
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, _, rest = head[0].partition(" ")
            target, _, version = rest.partition(" ")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self._send(411, {"error": {"message": "send Content-Length"}}, keep_alive=False)
                return
            length = int(headers.get("content-length", "0") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            connection = headers.get("connection", "").lower()
            keep_alive = connection != "close" and (
                version != "HTTP/1.0" or connection == "keep-alive"
            )
            self._route(method, target.split("?", 1)[0], body, keep_alive)

    def _route(self, method: str, path: str, body: bytes, keep_alive: bool) -> None:
        server = self.server
        if method == "POST" and path in _OTLP_PATHS:
            # An OTLP/HTTP collector's answer: accepted, nothing decoded (that is the
            # collector's cost, not the exporting run's).
            server.otlp_requests += 1
            server.otlp_bytes += len(body)
            self._send_raw(200, "application/x-protobuf", b"", keep_alive)
            return
        try:
            payload: dict[str, Any] = json.loads(body) if body else {}
        except ValueError:
            self._send(400, {"error": {"message": "invalid JSON"}}, keep_alive)
            return
        if method == "POST" and path == _CHAT_PATH:
            reply = server.completion(payload)
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            if server.latency > 0:
                loop = asyncio.get_running_loop()
                loop.call_later(server.latency, self._complete, reply, keep_alive)
            else:
                self._complete(reply, keep_alive)
        elif method == "GET" and path == "/stats":
            self._send(200, server.stats(), keep_alive)
        elif method == "POST" and path == "/control":
            self._send(200, server.control(payload), keep_alive)
        else:
            self._send(404, {"error": {"message": f"no route {method} {path}"}}, keep_alive)

    def _complete(self, reply: dict[str, Any], keep_alive: bool) -> None:
        self.server.in_flight -= 1
        self._send(200, reply, keep_alive)

    def _send(self, status: int, payload: dict[str, Any], keep_alive: bool) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send_raw(status, "application/json", body, keep_alive)

    def _send_raw(self, status: int, content_type: str, body: bytes, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"content-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n"
            f"connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        if not keep_alive:
            self.closing = True
            self.transport.close()


async def serve(port: int, latency_ms: float) -> None:
    """Listens on 127.0.0.1 until SIGTERM or SIGINT; prints ``{"port": N}`` once bound."""
    state = FakeOpenAIServer(latency_ms)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(state), "127.0.0.1", port, backlog=2048, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": bound}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Not `wait_closed`: idle keep-alive connections of a killed client must not delay exit.
    server.close()


class ServerProcess:
    """Runs the fake server in a child process (its own interpreter, loop and core).

    Attributes:
        port: The port it listens on, once started.
    """

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency_ms = latency_ms
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` (``http://127.0.0.1:PORT/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_openai_server", f"--latency-ms={self.latency_ms}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the fake OpenAI server exited before listening")
        self.port = int(json.loads(line)["port"])
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def stats(self) -> dict[str, Any]:
        return fetch_stats(self.root_url)

    def control(self, **settings: Any) -> dict[str, Any]:
        return post_control(self.root_url, settings)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def fetch_stats(root_url: str) -> dict[str, Any]:
    """The server's counters (``GET /stats``)."""
    with urllib.request.urlopen(f"{root_url}/stats", timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def post_control(root_url: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Changes the latency or resets the counters (``POST /control``)."""
    request = urllib.request.Request(
        f"{root_url}/control",
        data=json.dumps(settings).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, args.latency_ms))


if __name__ == "__main__":
    main()

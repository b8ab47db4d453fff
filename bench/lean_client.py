"""The leanest client for the fake server: one keep-alive HTTP/1.1 connection on asyncio streams.

It exists to measure what a chat-completion call costs a client at the least (request JSON,
one write, reading a Content-Length response, response JSON), against the ``openai`` SDK and
plain ``httpx`` (`bench.workloads` ``client_*`` variants). It is not a provider adapter: no TLS,
no chunked responses, no retries, no pool.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

__all__ = ["LeanClient"]


class LeanClient:
    """Chat completions over one persistent connection (calls must not overlap)."""

    def __init__(self, base_url: str) -> None:
        """Targets ``base_url`` (``http://127.0.0.1:PORT/v1``); connects on the first call."""
        parsed = urllib.parse.urlsplit(base_url)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 80
        self._path = parsed.path.rstrip("/") + "/chat/completions"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def ask(self, model: str, prompt: str) -> str:
        """Sends one user prompt; returns the reply text."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]})
        payload = body.encode()
        head = (
            f"POST {self._path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"the server answered {status!r}")
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        completion: dict[str, Any] = json.loads(await reader.readexactly(length))
        return str(completion["choices"][0]["message"]["content"] or "")

    async def close(self) -> None:
        """Closes the connection."""
        if self._streams is not None:
            writer = self._streams[1]
            writer.close()
            await writer.wait_closed()
            self._streams = None

"""A real functions-framework server running a target of functions/main.py, and HTTP helpers."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import REPO_ROOT

FUNCTIONS_FRAMEWORK = pathlib.Path(sys.executable).parent / "functions-framework"
SOURCE = REPO_ROOT / "functions" / "main.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A functions-framework server running one target in a subprocess."""

    def __init__(self, target: str, signature: str, env: dict[str, str], log: pathlib.Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    str(FUNCTIONS_FRAMEWORK),
                    "--source",
                    str(SOURCE),
                    "--target",
                    target,
                    "--signature-type",
                    signature,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                env={**os.environ, "WORKERS": "1", "THREADS": "8", **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def entries(self) -> list[dict[str, Any]]:
        """The structured log entries the server wrote (its JSON lines)."""
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith('{"severity"')]


def post_json(
    url: str, body: Any, *, method: str = "POST", content_type: str = "application/json"
) -> tuple[int, Any]:
    """Sends a JSON body; returns the status and the decoded JSON (or text) response."""
    data = None if body is None else json.dumps(body).encode()
    status, text = post_bytes(url, data, {"Content-Type": content_type}, method=method)
    with contextlib.suppress(ValueError):
        return status, json.loads(text)
    return status, text


def post_bytes(
    url: str, body: bytes | None, headers: dict[str, str], *, method: str = "POST"
) -> tuple[int, str]:
    """Sends a body with the given headers; returns the status and the response text."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()

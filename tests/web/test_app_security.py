"""Security of the web UI: access token, CSRF rules, response headers, the loopback rule."""

from __future__ import annotations

import dataclasses
import http.client
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.web import WebSettings
from llm_scheduler.web.cli import is_loopback
from llm_scheduler.web.security import CONTENT_SECURITY_POLICY, TOKEN_COOKIE
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT
from tests.web.conftest import make_client

TOKEN = "s3cret-token"
VALID = {"text": '{"job_id": "j", "tasks": [{"task_id": "t"}]}', "format": "json"}


def assert_security_headers(headers: Mapping[str, str]) -> None:
    assert headers.get("content-security-policy") == CONTENT_SECURITY_POLICY
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "same-origin"
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    "path", ["/jobs", "/jobs.json", "/static/app.css", "/docs", "/no/such/page", "/jobs/edit"]
)
def test_every_response_has_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert_security_headers(response.headers)


def test_csp_forbids_inline_scripts(client: TestClient) -> None:
    csp = client.get("/jobs").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp


def test_pages_have_no_inline_script_or_style(client: TestClient) -> None:
    for path in ("/jobs", "/jobs/edit", "/docs"):
        html = client.get(path).text
        for tag in html.split("<script")[1:]:
            head = tag.split(">", 1)[0]
            assert "src=" in head or 'type="application/json"' in head, head
        assert "<style" not in html and "style=" not in html


def test_a_json_post_without_origin_passes(client: TestClient) -> None:
    assert client.post("/api/validate", json=VALID).status_code == 200


def test_a_same_origin_post_passes(client: TestClient) -> None:
    headers = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/validate", json=VALID, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_origin_post_is_refused(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/api/validate", json=VALID, headers=headers)
    assert response.status_code == 403
    assert "refused" in response.json()["error"]
    assert_security_headers(response.headers)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None],
)
def test_a_post_that_is_not_json_is_refused(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/runs", content=b'{"job_id": "x"}', headers=headers)
    assert response.status_code == 403
    assert "application/json" in response.json()["error"]


def test_json_with_a_charset_is_json(client: TestClient) -> None:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    response = client.post("/api/validate", content=b'{"text": "{}"}', headers=headers)
    assert response.status_code == 200


def test_other_state_changing_methods_are_checked_too(client: TestClient) -> None:
    response = client.request("DELETE", "/api/jobs", headers={"Content-Type": "text/plain"})
    assert response.status_code == 403


@pytest.fixture
def token_client(web_settings: WebSettings) -> Iterator[TestClient]:
    with make_client(dataclasses.replace(web_settings, token=TOKEN)) as test_client:
        yield test_client


def test_with_a_token_every_request_needs_it(token_client: TestClient) -> None:
    for path in ("/jobs", "/jobs.json", "/static/app.js", "/docs", "/openapi.json"):
        response = token_client.get(path)
        assert response.status_code == 401, path
        assert_security_headers(response.headers)
    assert token_client.post("/api/validate", json=VALID).status_code == 401


def test_a_bearer_token_is_accepted(token_client: TestClient) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert token_client.get("/jobs.json", headers=good).status_code == 200
    assert token_client.post("/api/validate", json=VALID, headers=good).status_code == 200
    wrong = {"Authorization": "Bearer nope"}
    assert token_client.get("/jobs.json", headers=wrong).status_code == 401
    basic = {"Authorization": f"Basic {TOKEN}"}
    assert token_client.get("/jobs.json", headers=basic).status_code == 401


def test_a_token_in_the_url_becomes_a_cookie(token_client: TestClient) -> None:
    response = token_client.get(f"/jobs?token={TOKEN}&x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs?x=1"  # the token leaves the address bar
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie
    # The client keeps the cookie: later requests pass without the token.
    assert token_client.get("/jobs.json").status_code == 200
    assert token_client.post("/api/validate", json=VALID).status_code == 200


def test_a_wrong_token_in_the_url_is_refused(token_client: TestClient) -> None:
    response = token_client.get("/jobs?token=wrong", follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    token_client.cookies.set(TOKEN_COOKIE, "wrong")
    assert token_client.get("/jobs.json").status_code == 401


def test_csrf_rules_hold_with_a_token(token_client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}
    assert token_client.post("/api/validate", json=VALID, headers=headers).status_code == 403


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_cli_refuses_a_public_address_without_a_token() -> None:
    result = run_tool("web_ui", "--host=0.0.0.0", "--nodispatch")
    assert result.code == 2
    assert "--token" in result.stderr and "127.0.0.1" in result.stderr


def test_the_cli_refuses_a_missing_configs_folder() -> None:
    result = run_tool("web_ui", "--configs_dir=/no/such/folder", "--nodispatch")
    assert result.code == 2
    assert "no such folder" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_cli_serves_on_loopback_and_prints_its_url(tmp_path: pathlib.Path) -> None:
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LLM_SCHEDULER_") and not k.endswith("_API_KEY")
    }
    env["LLM_SCHEDULER_WEB_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llm_scheduler.web.cli",
            f"--port={port}",
            f"--store=sqlite:///{tmp_path}/state.db",
            "--nodispatch",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == f"web UI: http://127.0.0.1:{port}/?token={TOKEN}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/jobs.json", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        response = _retrying_open(request)
        with response:
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _retrying_open(request: urllib.request.Request) -> http.client.HTTPResponse:
    """Opens the URL; the server prints its URL just before it listens, so retry a while."""
    for _ in range(400):
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=10)
            return response
        except urllib.error.URLError as error:
            if not isinstance(error.reason, ConnectionRefusedError):
                raise
            time.sleep(0.05)
    raise AssertionError("the server did not start listening")


@pytest.mark.parametrize(
    "path", ["/static/..%2fapp.py", "/static/%2e%2e/app.py", "/static/%2e%2e%2f%2e%2e%2fBUILD"]
)
def test_static_files_stay_in_their_folder(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_api_docs_page_lists_the_operations(client: TestClient) -> None:
    data = client.get("/docs.json").json()
    listed = {(op["method"], op["path"]) for op in data["operations"]}
    assert {("POST", "/api/validate"), ("POST", "/api/jobs"), ("POST", "/api/runs")} <= listed
    assert ("GET", "/jobs") in listed
    assert "/api/validate" in client.get("/docs").text
    assert client.get("/openapi.json").json()["paths"]["/api/validate"]["post"]

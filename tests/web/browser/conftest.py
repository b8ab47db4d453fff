"""Browser tests: Debian's Chromium driven by Playwright, against ``web_ui`` in a subprocess.

A session starts, per store backend (SQLite, and the Firestore emulator), one ``web_ui
--nodispatch`` on a free loopback port and one ``dispatcher`` on the same store, both with the
offline model, so runs started from a page execute in another process as in production. Tests
get a fresh browser context (no cookies or storage shared) on one session-wide Chromium.

Without /usr/bin/chromium the tests are skipped, except in CI (``CI=true``), where that is a
failure: `make browser` (part of `make test`) installs it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import IO

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from llm_scheduler.store import Store, open_store
from llm_scheduler.testing.chromium import CHROMIUM, chromium_args, missing_chromium_message
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator
from tests.conftest import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# How long a server may take to answer at start (a cold Python with FastAPI imports).
START_TIMEOUT = 60.0
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
# How long an assertion waits for the page (Playwright's default is 5 s): the suite runs on every
# core (pytest-xdist), where a page's fetch may wait behind another worker's work. Assertions
# that hold return at once, so this costs nothing when the machine is idle.
expect.set_options(timeout=20_000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a tool subprocess: no API keys, no llm-scheduler settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and not k.startswith("LLM_SCHEDULER_")
    }
    return {**env, **(extra or {})}


class Tool:
    """A command-line tool running as a subprocess; its output is kept for failure messages."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._streams = (self.process.stdout, self.process.stderr)
        self._readers = [
            threading.Thread(target=self._drain, args=(stream,), daemon=True)
            for stream in self._streams
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        """What the tool printed so far (stdout and stderr)."""
        return "\n".join(self.lines)

    def check_running(self) -> None:
        """Fails the test with the tool's output when it has exited."""
        code = self.process.poll()
        if code is not None:
            pytest.fail(f"{self.name} exited with {code}:\n{self.output()}")

    def stop(self) -> None:
        """Stops the tool (SIGTERM, then SIGKILL when it does not exit in time)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
        for reader in self._readers:
            reader.join(timeout=20)
        for stream in self._streams:
            stream.close()


def wait_for_server(url: str, tool: Tool, timeout: float = START_TIMEOUT) -> None:
    """Waits until ``url`` answers HTTP (any status), failing early if the tool exits."""
    deadline = time.monotonic() + timeout
    while True:
        tool.check_running()
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                pytest.fail(f"{tool.name} did not answer {url} in {timeout} s:\n{tool.output()}")
            time.sleep(0.1)


@dataclasses.dataclass
class WebStack:
    """A ``web_ui`` and a ``dispatcher`` on one store.

    Attributes:
        backend: ``sqlite`` or ``firestore``.
        url: The web UI's base URL (``http://127.0.0.1:PORT``).
        store_url: The store both processes use.
        configs_dir: The folder of job configs the web UI lists.
        web: The web UI process.
        dispatcher: The dispatcher process.
    """

    backend: str
    url: str
    store_url: str
    configs_dir: pathlib.Path
    web: Tool
    dispatcher: Tool

    def open_store(self) -> Store:
        """A new handle on the stack's store, for a test to look at what the UI did."""
        return open_store(self.store_url)

    def check_running(self) -> None:
        """Fails the test when the web UI or the dispatcher has exited."""
        self.web.check_running()
        self.dispatcher.check_running()


def start_stack(
    backend: str, store_url: str, configs_dir: pathlib.Path, env: dict[str, str]
) -> WebStack:
    """Starts ``web_ui --nodispatch`` and a ``dispatcher`` on ``store_url``, offline."""
    port = free_port()
    web = Tool(
        "web_ui",
        [
            "llm_scheduler.web.cli",
            f"--port={port}",
            f"--store={store_url}",
            f"--configs_dir={configs_dir}",
            "--nodispatch",
            "--offline",
            # The dispatcher's functions, so that configs calling them validate here too.
            "--function_modules=tests.web.browser.journey_functions",
        ],
        env,
    )
    dispatcher = Tool(
        "dispatcher",
        [
            "llm_scheduler.runner.dispatcher",
            f"--store={store_url}",
            "--offline",
            "--workers=4",
            # A function the run journeys use to make a run fail, then succeed once resumed.
            "--function_modules=tests.web.browser.journey_functions",
        ],
        env,
    )
    stack = WebStack(backend, f"http://127.0.0.1:{port}", store_url, configs_dir, web, dispatcher)
    try:
        wait_for_server(f"{stack.url}/jobs.json", web)
        dispatcher.check_running()
    except BaseException:
        web.stop()
        dispatcher.stop()
        raise
    return stack


def _stack_for_the_session(
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
    emulator: FirestoreEmulator | None = None,
) -> Iterator[WebStack]:
    folder = tmp_path_factory.mktemp(f"web-{backend}")
    configs_dir = folder / "configs"
    configs_dir.mkdir()
    if emulator is not None:
        store_url = f"firestore://test-web-{uuid.uuid4().hex[:12]}"
        env = tool_env({"FIRESTORE_EMULATOR_HOST": emulator.host})
    else:
        store_url = f"sqlite:///{folder / 'state.db'}"
        env = tool_env()
    stack = start_stack(backend, store_url, configs_dir, env)
    try:
        yield stack
    finally:
        stack.web.stop()
        stack.dispatcher.stop()


# The stacks last the session, each started when a test first needs it. A package fixture
# parametrized by backend would be torn down at every change of parameter, and with
# pytest-xdist's --dist loadfile a worker runs the package file by file, each file's SQLite tests
# then its Firestore ones: the stacks (two Python processes each) restarted at every switch. A
# stack's store is shared by the tests that use it, as in a run without xdist.
@pytest.fixture(scope="session")
def sqlite_web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """A web UI and a dispatcher on a SQLite store of their own."""
    yield from _stack_for_the_session("sqlite", tmp_path_factory)


@pytest.fixture(scope="session")
def firestore_web_stack(
    tmp_path_factory: pytest.TempPathFactory, firestore_emulator: FirestoreEmulator
) -> Iterator[WebStack]:
    """A web UI and a dispatcher on a fresh project of the emulator, stopped before it is."""
    yield from _stack_for_the_session("firestore", tmp_path_factory, firestore_emulator)


@pytest.fixture(params=["sqlite", "firestore"])
def web_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> WebStack:
    """The session's web UI and dispatcher of the backend, for the browser tests."""
    stack: WebStack = request.getfixturevalue(f"{request.param}_web_stack")
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        # Also for the test process, which opens the store to check what the UI did.
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    return stack


# Package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is started, which would break every later test that calls asyncio.run.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the browser tests (then Playwright stops)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: `make browser` installs it")
        pytest.skip(missing_chromium_message())
    with sync_playwright() as playwright:
        # Playwright gives each launch a new, empty user-data-dir of its own.
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args()
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser, web_stack: WebStack) -> Iterator[BrowserContext]:
    """A fresh browser context (own cookies and storage) whose relative URLs go to the stack."""
    ctx = browser.new_context(base_url=web_stack.url, viewport=VIEWPORT)
    ctx.set_default_timeout(30_000)
    try:
        yield ctx
    finally:
        ctx.close()


@dataclasses.dataclass
class PageErrors:
    """JavaScript errors and failed console messages a page produced."""

    messages: list[str] = dataclasses.field(default_factory=list)


@pytest.fixture
def page(context: BrowserContext, web_stack: WebStack) -> Iterator[Page]:
    """A page of a fresh context; the test fails if the page throws or logs a console error."""
    errors = PageErrors()
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.messages.append(f"console error: {message.text}")

    tab.on("pageerror", lambda error: errors.messages.append(f"page error: {error.stack or error}"))
    tab.on("console", on_console)
    yield tab
    web_stack.check_running()
    assert errors.messages == [], "\n".join(errors.messages)


def screenshot(page: Page, name: str) -> pathlib.Path:
    """Saves a screenshot of the page to docs/screenshots/NAME.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path

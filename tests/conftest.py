"""Shared fixtures: one fake provider server per session and a models file pointing at it."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import uuid
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import hypothesis
import pytest

from llm_scheduler import ModelClient, RetryPolicy, RunContext
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator, emulator_available

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
T = TypeVar("T")

# The fake server accepts any key; these only have to be present.
FAKE_CREDENTIALS = {
    "OPENAI_API_KEY": "test-openai-key",
    "GEMINI_API_KEY": "test-gemini-key",
    "ANTHROPIC_API_KEY": "test-anthropic-key",
}

# Model keys the models file defines, one per provider SDK.
FAKE_MODEL_KEYS = ("FAKE_OPENAI", "FAKE_GEMINI", "FAKE_ANTHROPIC")
# Embedding keys the models file defines, one per provider SDK with an embeddings API.
FAKE_EMBEDDING_KEYS = ("FAKE_OPENAI_EMBEDDING", "FAKE_GEMINI_EMBEDDING")


# Property tests: the same examples on every run (CI is reproducible), no deadline (the machine
# may be busy), and no example database written into the checkout.
hypothesis.settings.register_profile(
    "llm_scheduler", derandomize=True, deadline=None, database=None
)
hypothesis.settings.load_profile("llm_scheduler")

FAST_RETRIES = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)


def context_for(registry: ModelRegistry, **kwargs: Any) -> RunContext:
    """A run context whose model client reaches the fake server with fast retries."""
    client = ModelClient(
        registry, offline=False, credentials=FAKE_CREDENTIALS, retry_policy=FAST_RETRIES
    )
    return RunContext(models=client, **kwargs)


def run_closing(context: RunContext, work: Awaitable[T]) -> T:
    """Runs ``work`` in a new event loop, then closes the context's model connections."""

    async def body() -> T:
        try:
            return await work
        finally:
            await context.models.aclose()

    return asyncio.run(body())


@pytest.fixture(scope="session")
def fake_server_session() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake_server(fake_server_session: FakeProviderServer) -> Iterator[FakeProviderServer]:
    fake_server_session.reset()
    yield fake_server_session
    fake_server_session.reset()


def write_models_file(
    path: pathlib.Path, server: FakeProviderServer, max_concurrency: int = 0
) -> pathlib.Path:
    """Writes a models file whose FAKE_* keys point at the fake server."""
    entries: list[dict[str, object]] = [
        {
            "key": "FAKE_OPENAI",
            "provider": "openai",
            "model": "gpt-fake",
            "base_url": server.openai_base_url,
        },
        {
            "key": "FAKE_GEMINI",
            "provider": "google",
            "model": "gemini-fake",
            "base_url": server.gemini_base_url,
        },
        {
            "key": "FAKE_ANTHROPIC",
            "provider": "anthropic",
            "model": "claude-fake",
            "base_url": server.anthropic_base_url,
        },
        {
            "key": "FAKE_OPENAI_EMBEDDING",
            "provider": "openai",
            "model": "embedding-fake",
            "base_url": server.openai_base_url,
            "kind": "embedding",
        },
        {
            "key": "FAKE_GEMINI_EMBEDDING",
            "provider": "google",
            "model": "gemini-embedding-fake",
            "base_url": server.gemini_base_url,
            "kind": "embedding",
        },
    ]
    for entry in entries:
        entry["input_price_per_million_tokens"] = 1.0
        entry["output_price_per_million_tokens"] = 2.0
        entry["max_attempts"] = 3
        entry["timeout_seconds"] = 10
        if max_concurrency:
            entry["max_concurrency"] = max_concurrency
    path.write_text("// test models\n" + json.dumps({"models": entries}, indent=2))
    return path


@pytest.fixture
def models_file(tmp_path: pathlib.Path, fake_server: FakeProviderServer) -> pathlib.Path:
    return write_models_file(tmp_path / "models.json", fake_server)


@pytest.fixture
def fake_registry(models_file: pathlib.Path) -> ModelRegistry:
    return ModelRegistry.with_models_file(models_file)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    """Google's Cloud Firestore emulator, one JVM for the whole session."""
    if not emulator_available():
        pytest.fail(
            "the Firestore emulator is missing: install java and the Debian package "
            "google-cloud-cli-firestore-emulator (or set FIRESTORE_EMULATOR_JAR)"
        )
    with FirestoreEmulator() as emulator:
        yield emulator


@pytest.fixture(params=["sqlite", "firestore"])
def store_url(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The URL of an empty store, once per backend.

    Firestore: a fresh project id on the session's emulator, which the emulator keeps as a
    separate empty database (no reset needed). ``FIRESTORE_EMULATOR_HOST`` is set for the test,
    so subprocesses started with ``os.environ`` reach the emulator too.
    """
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
        return f"firestore://test-{uuid.uuid4().hex[:12]}"
    return f"sqlite:///{tmp_path / 'state.db'}"


SCALE_TESTS_ENV = "LLM_SCHEDULER_SCALE_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips tests marked ``scale`` unless ``LLM_SCHEDULER_SCALE_TESTS=1`` (`make scale-test`)."""
    if os.environ.get(SCALE_TESTS_ENV) == "1":
        return
    skip = pytest.mark.skip(reason="a full-scale workload: run it with make scale-test")
    for item in items:
        if item.get_closest_marker("scale") is not None:
            item.add_marker(skip)

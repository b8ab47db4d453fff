"""Web UI fixtures: the app over a real store, driven in process by Starlette's TestClient."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from llm_scheduler.store import Store
from llm_scheduler.web import WebSettings, WebState, create_app


def make_client(settings: WebSettings) -> TestClient:
    """A client of a new app (use it in ``with``, which runs the app's startup and shutdown)."""
    return TestClient(create_app(settings))


def state_of(client: TestClient) -> WebState:
    """The app's shared state (its store, settings, model registry)."""
    state: WebState = client.app.state.web  # type: ignore[attr-defined]
    return state


def store_of(client: TestClient) -> Store:
    """The store the app opened."""
    return state_of(client).store


@pytest.fixture
def configs_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """An empty folder of job configs, as ``--configs_dir``."""
    folder = tmp_path / "configs"
    folder.mkdir()
    return folder


@pytest.fixture
def web_settings(tmp_path: pathlib.Path, configs_dir: pathlib.Path) -> WebSettings:
    """Settings over a fresh SQLite store, no in-process dispatcher, offline runs."""
    return WebSettings(
        store_url=f"sqlite:///{tmp_path / 'state.db'}",
        configs_dir=str(configs_dir),
        dispatch=False,
        offline=True,
    )


@pytest.fixture
def client(web_settings: WebSettings) -> Iterator[TestClient]:
    """A client of the app over a fresh SQLite store."""
    with make_client(web_settings) as test_client:
        yield test_client


@pytest.fixture
def any_store_client(store_url: str, configs_dir: pathlib.Path) -> Iterator[TestClient]:
    """A client of the app over a fresh store, once on SQLite and once on the Firestore emulator."""
    settings = WebSettings(
        store_url=store_url, configs_dir=str(configs_dir), dispatch=False, offline=True
    )
    with make_client(settings) as test_client:
        yield test_client

"""Store fixtures: every contract test runs on SQLite and on the Firestore emulator.

One emulator serves the whole session (``firestore_emulator`` in tests/conftest.py); each test
gets its own project id, which the emulator
keeps as a separate empty database, so no test sees another's documents and none needs a reset.
"""

from __future__ import annotations

import pathlib
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from llm_scheduler.store import Store
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator

BACKENDS = ["sqlite", "firestore"]


class Backend:
    """Opens any number of stores on one backend's data; closes them all at teardown."""

    def __init__(self, name: str, opener: Callable[[], Store]) -> None:
        self.name = name
        self._opener = opener
        self._lock = threading.Lock()
        self._stores: list[Store] = []

    def open(self) -> Store:
        store = self._opener()
        with self._lock:
            self._stores.append(store)
        return store

    def close_all(self) -> None:
        with self._lock:
            stores, self._stores = self._stores, []
        for store in stores:
            store.close()


def new_project_id() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    opener: Callable[[], Store]
    if request.param == "firestore":
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
        from llm_scheduler.store.firestore import FirestoreStore

        project = new_project_id()

        def opener() -> Store:
            return FirestoreStore(project=project)
    else:
        path = tmp_path / "state.db"

        def opener() -> Store:
            return SqliteStore(path)

    backend = Backend(request.param, opener)
    yield backend
    backend.close_all()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()

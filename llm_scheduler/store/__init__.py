"""Stores for event-driven runs, chosen by URL: ``sqlite:///path/state.db`` or ``firestore://PROJECT``.

The engine and the execution protocol see only `Store`; backends are imported lazily so the
embedded default needs no cloud SDK.
"""

from __future__ import annotations

import os
import pathlib
import urllib.parse

from llm_scheduler.errors import UserError
from llm_scheduler.store.base import MAX_DOCUMENT_BYTES, Doc, Store, Transaction

__all__ = [
    "DEFAULT_STORE_URL",
    "MAX_DOCUMENT_BYTES",
    "STORE_ENV",
    "Doc",
    "Store",
    "Transaction",
    "default_store_url",
    "open_store",
]

STORE_ENV = "LLM_SCHEDULER_STORE"
DEFAULT_STORE_URL = "sqlite:///.llm_scheduler/state.db"


def default_store_url() -> str:
    """``$LLM_SCHEDULER_STORE``, or the embedded SQLite file under ``./.llm_scheduler/``."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def open_store(url: str | None = None) -> Store:
    """Opens the store a URL names.

    ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (or ``sqlite:///`` followed
    by an absolute path) open the embedded store; ``firestore://PROJECT[/DATABASE]`` opens Cloud
    Firestore, or the emulator when ``FIRESTORE_EMULATOR_HOST`` is set.

    Raises:
        UserError: The URL is malformed, names an unknown backend, or a SQLite file whose folder
            cannot be created.
        MissingDependencyError: The backend's SDK is not installed.
        MissingCredentialsError: Firestore without credentials or ``FIRESTORE_EMULATOR_HOST``.
    """
    url = url or default_store_url()
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "sqlite":
        raw = url[len("sqlite://") :]
        if not raw.startswith("/") or raw == "/":
            raise UserError(f"store URL {url!r}: write sqlite:///path/to/state.db")
        path = raw[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
        try:
            pathlib.Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(
                f"store URL {url!r}: cannot create the folder of {path}: {error.strerror or error}"
            ) from None
        from llm_scheduler.store.sqlite import SqliteStore

        return SqliteStore(pathlib.Path(path))
    if parsed.scheme == "firestore":
        project = parsed.netloc
        database = parsed.path.strip("/") or "(default)"
        if not project:
            raise UserError(f"store URL {url!r}: write firestore://PROJECT[/DATABASE]")
        from llm_scheduler.store.firestore import FirestoreStore

        return FirestoreStore(project=project, database=database)
    raise UserError(
        f"unknown store URL {url!r}: use sqlite:///path/to/state.db or firestore://PROJECT"
    )

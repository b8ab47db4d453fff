"""A store wrapper that records every document write, for tests of what the protocol writes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.events.cloud.firestore_v1.types import data as event_data
from google.protobuf import json_format

from llm_scheduler.execution.cloudevents import build_document_event
from llm_scheduler.store.base import Doc, Docs, Store, Transaction

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Write:
    """One committed write: the document before and after it."""

    path: str
    before: Doc | None
    after: Doc

    def event_bytes(self) -> int:
        """The size of the Firestore ``written`` event this write triggers, as Eventarc sends it.

        The larger of the protobuf body (the default) and the JSON body (what a trigger created
        with ``application/json`` receives), plus the ``ce-*`` headers.
        """
        headers, body = build_document_event(
            "project", "(default)", self.path, self.after, old_doc=self.before
        )
        message = event_data.DocumentEventData.pb()()
        message.ParseFromString(body)
        as_json = json_format.MessageToJson(message, indent=None)
        header_bytes = sum(len(k) + len(v) for k, v in headers.items())
        return max(len(body), len(as_json.encode("utf-8"))) + header_bytes

    def document_bytes(self) -> int:
        """The written document as compact JSON (how the stores measure it)."""
        text = json.dumps(self.after, ensure_ascii=False, separators=(",", ":"))
        return len(text.encode("utf-8"))


class _RecordingTransaction(Transaction):
    def __init__(self, inner: Transaction, store: RecordingStore) -> None:
        self._inner = inner
        self._store = store
        self._known: dict[str, Doc | None] = {}
        self.writes: list[tuple[str, Doc | None, Doc]] = []

    def get(self, path: str) -> Doc | None:
        doc = self._inner.get(path)
        self._known[path] = None if doc is None else dict(doc)
        return doc

    def set(self, path: str, data: Doc) -> None:
        self._inner.set(path, data)
        self.writes.append((path, self._before(path), dict(data)))
        self._known[path] = dict(data)

    def update(self, path: str, fields: Doc) -> None:
        self._inner.update(path, fields)
        before = self._before(path)
        after = {**(before or {}), **fields}
        self.writes.append((path, before, after))
        self._known[path] = after

    def _before(self, path: str) -> Doc | None:
        if path in self._known:
            return self._known[path]
        return self._store.latest(path)


class RecordingStore(Store):
    """Delegates to another store and records each committed write with its before and after."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url
        self.writes: list[Write] = []
        self._latest: dict[str, Doc] = {}

    def latest(self, path: str) -> Doc | None:
        """The last version of ``path`` recorded here, else the store's."""
        return self._latest.get(path) or self.inner.get(path)

    def _record(self, path: str, before: Doc | None, after: Doc) -> None:
        self.writes.append(Write(path, before, after))
        self._latest[path] = after

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        attempts: list[_RecordingTransaction] = []

        def wrapped(tx: Transaction) -> T:
            recording = _RecordingTransaction(tx, self)
            attempts.append(recording)
            return body(recording)

        result = self.inner.run_transaction(wrapped)
        for path, before, after in attempts[-1].writes:
            self._record(path, before, after)
        return result

    def update_if(self, path: str, decide: Callable[[Doc | None], Doc | None]) -> Doc | None:
        seen: list[Doc | None] = []

        def wrapped(current: Doc | None) -> Doc | None:
            seen.append(current)
            return decide(current)

        after = self.inner.update_if(path, wrapped)
        if after is not None:
            self._record(path, seen[-1], after)
        return after

    def get(self, path: str) -> Doc | None:
        return self.inner.get(path)

    def create(self, path: str, data: Doc) -> bool:
        created = self.inner.create(path, data)
        if created:
            self._record(path, None, dict(data))
        return created

    def create_all(self, items: Sequence[tuple[str, Doc]]) -> int:
        return sum(1 for path, data in items if self.create(path, data))

    def set(self, path: str, data: Doc) -> None:
        before = self.latest(path)
        self.inner.set(path, data)
        self._record(path, before, dict(data))

    def list(self, collection: str) -> Docs:
        return self.inner.list(collection)

    def find(self, collection_id: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        return self.inner.find(collection_id, field, values, limit)

    def query(self, collection: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        return self.inner.query(collection, field, values, limit)

    def count(self, collection: str) -> int:
        return self.inner.count(collection)

    def wait_for_change(self, timeout: float) -> bool:
        return self.inner.wait_for_change(timeout)

    async def wait_for_change_async(self, timeout: float) -> bool:
        return await self.inner.wait_for_change_async(timeout)

    def interrupt_wait(self) -> None:
        self.inner.interrupt_wait()

    def close(self) -> None:
        self.inner.close()

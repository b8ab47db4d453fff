"""The cloud store: Cloud Firestore through the synchronous SDK, or its emulator.

Document paths map 1:1 to Firestore paths and documents are stored as they are. Firestore is
stricter than JSON, so writes are checked first and refused with a `StoreError` naming the field:

- a map key may not be empty, nor look like ``__name__`` (reserved);
- an array may not hold an array directly (``[[1, 2]]``; ``[{"a": [1]}]`` is fine);
- integers are 64-bit;
- a document is at most 1 MiB (checked as JSON by `check_size`, with a margin).

Firestore itself refuses fields nested about 20 levels deep (maps and arrays both count); that
error comes back as a `StoreError` too.

Equality in `find` follows Firestore: ``True`` never equals ``1`` (in SQLite it does).

Transactions are Firestore's: reads take locks, a commit that conflicts fails with ``ABORTED``
and the body runs again, for up to 60 s, after a random pause that grows from at most 1 s to at
most 8 s. Production Firestore settles a lock conflict at once by aborting the younger
transaction. The emulator does not: transactions that read one document and then write it
deadlock until its 2-second lock timeout aborts them all, and anyone reading the document
meanwhile joins them. Without the pauses, 8 threads each incrementing one counter 10 times did
not finish in 10 minutes there; with them they take a few seconds to about 20.

`wait_for_change` is a snapshot listener on the ``task_runs`` collection group (the documents
the dispatcher acts on), started on the first call and kept until `close`. Its first snapshot
carries every task run; it counts as a change only for documents updated since the listener
was requested, so a write racing the listener's start is not lost.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from llm_scheduler.errors import MissingCredentialsError, MissingDependencyError, StoreError
from llm_scheduler.store.base import (
    WATCHED_COLLECTION,
    Doc,
    Store,
    Transaction,
    check_page_arguments,
    check_size,
    validate_path,
)

if TYPE_CHECKING:
    from google.cloud.firestore_v1.base_document import DocumentSnapshot
    from google.cloud.firestore_v1.client import Client
    from google.cloud.firestore_v1.document import DocumentReference
    from google.cloud.firestore_v1.transaction import Transaction as SdkTransaction
    from google.cloud.firestore_v1.watch import Watch

    Snapshot = DocumentSnapshot[DocumentReference]

__all__ = ["WATCHED_COLLECTION", "FirestoreStore"]

T = TypeVar("T")
_LOGGER = logging.getLogger(__name__)
# `list` is also a method name in `FirestoreStore`, where the builtin cannot be named.
_Docs = list[tuple[str, Doc]]

# Firestore's limits (https://firebase.google.com/docs/firestore/quotas).
_MAX_IN_VALUES = 30
_MAX_BATCH_WRITES = 500
_INT64 = (-(2**63), 2**63 - 1)
# A transaction is retried while it conflicts, for up to this many seconds; the pause before
# retry n is uniform in [0, min(cap, base * 2**(n-2))] seconds.
_CONFLICT_BUDGET = 60.0
# A single-document update outlasts the locks of a transaction whose process died: Firestore
# (and the emulator) release them after about 60 s.
_UPDATE_BUDGET = 120.0
_BACKOFF_BASE = 1.0
_BACKOFF_CAP = 8.0
# Only a bound for the SDK's own loop: the time budget ends retries long before.
_SDK_ATTEMPTS = 1000
# How far the server's clock may run behind ours when judging the listener's first snapshot.
_CLOCK_SKEW = datetime.timedelta(seconds=2)


def _credentials_error(url: str, what: str, error: BaseException) -> MissingCredentialsError:
    return MissingCredentialsError(
        f"{url}: {what} ({error}); run `gcloud auth application-default login` (or set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file), or set "
        "FIRESTORE_EMULATOR_HOST=host:port to use the Firestore emulator"
    )


class _Contention(StoreError):
    """A read inside a transaction was aborted by a concurrent one; the transaction is retried."""


class _FirestoreTransaction(Transaction):
    """Adapts an SDK transaction; remembers what it read and wrote to check `update` early."""

    def __init__(self, store: FirestoreStore, transaction: SdkTransaction) -> None:
        self._store = store
        self._transaction = transaction
        self._known: dict[str, Doc | None] = {}
        self._wrote = False

    def get(self, path: str) -> Doc | None:
        validate_path(path)
        if self._wrote:
            raise StoreError(
                f"cannot read {path}: in a Firestore transaction, every read comes before the "
                "first write"
            )
        from google.api_core import exceptions

        reference = self._store.client.document(path)
        try:
            snapshot = reference.get(transaction=self._transaction)
        except exceptions.Aborted as error:
            raise _Contention(f"{self._store.url}: reading {path} conflicted: {error}") from None
        except Exception as error:
            self._store._fail("read", path, error)
        doc = _to_doc(snapshot)
        self._known[path] = None if doc is None else dict(doc)
        return doc

    def set(self, path: str, data: Doc) -> None:
        _check_document(path, data)
        reference = self._store.client.document(path)
        with self._store._errors("write", path):
            self._transaction.set(reference, data)
        self._known[path] = dict(data)
        self._wrote = True

    def update(self, path: str, fields: Doc) -> None:
        validate_path(path)
        if path not in self._known and not self._wrote:
            # Reads are still allowed, so learn the document to refuse a missing one now and
            # to check the merged size, as SQLite does.
            self.get(path)
        current = self._known.get(path, {})
        if current is None:
            raise StoreError(f"cannot update {path}: it does not exist")
        merged = {**current, **fields}
        _check_document(path, merged, fields)
        if not fields:
            return
        from google.cloud.firestore_v1.field_path import FieldPath

        # Keys of `update` are field paths ("a.b" is field b of map a), so each top-level key is
        # quoted: its value, maps included, then replaces the field wholesale. A document never
        # read here (only after other writes) is checked by Firestore at commit: NOT_FOUND.
        quoted = {FieldPath(key).to_api_repr(): value for key, value in fields.items()}
        reference = self._store.client.document(path)
        with self._store._errors("update", path):
            self._transaction.update(reference, quoted)
        self._known[path] = merged
        self._wrote = True


class FirestoreStore(Store):
    """A `Store` in Cloud Firestore (``firestore://PROJECT[/DATABASE]``).

    With ``FIRESTORE_EMULATOR_HOST`` set, the SDK talks to that emulator without credentials;
    otherwise it uses Application Default Credentials.
    """

    def __init__(self, project: str, database: str = "(default)") -> None:
        """Creates the client (no request is made until the store is used).

        Raises:
            MissingDependencyError: google-cloud-firestore is not installed.
            MissingCredentialsError: No credentials were found.
        """
        try:
            from google.auth import exceptions as auth_exceptions
            from google.cloud import firestore
        except ImportError:
            raise MissingDependencyError(
                "google-cloud-firestore", "firestore", "the Firestore store"
            ) from None
        self.project = project
        self.database = database
        suffix = "" if database == "(default)" else f"/{database}"
        self.url = f"firestore://{project}{suffix}"
        try:
            self.client: Client = firestore.Client(project=project, database=database)
        except auth_exceptions.GoogleAuthError as error:
            raise _credentials_error(self.url, "no Google Cloud credentials", error) from None
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._watch: Watch | None = None
        self._watch_since: datetime.datetime | None = None
        self._first_snapshot = True
        self._closed = False

    # -- primitives ----------------------------------------------------------------------------

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        from google.api_core.exceptions import Aborted
        from google.cloud import firestore

        started = time.monotonic()
        attempts = 0
        raised: list[BaseException] = []

        def attempt(transaction: SdkTransaction) -> T:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                if time.monotonic() - started > _CONFLICT_BUDGET:
                    raise self._conflicted(attempts - 1, started)
                # Nothing is locked yet (reads take the locks), so pausing here is harmless.
                ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempts - 2))
                time.sleep(random.uniform(0, ceiling))
            try:
                return body(_FirestoreTransaction(self, transaction))
            except BaseException as error:
                raised.append(error)
                raise

        transactional = firestore.transactional(attempt)
        while True:
            try:
                # The SDK retries an ABORTED commit itself, keeping the transaction's place in
                # line; the time budget, checked before each attempt, ends the retries first.
                result: T = transactional(self.client.transaction(max_attempts=_SDK_ATTEMPTS))
                return result
            except _Contention:
                continue  # an ABORTED read ends the SDK's loop: start a new transaction
            except StoreError:
                raise  # refused by the adapter, or out of time
            except BaseException as error:
                if raised and error is raised[-1]:
                    raise  # the body's own exception, after the SDK rolled back
                if isinstance(error, ValueError) and isinstance(error.__cause__, Aborted):
                    # The SDK ran out of attempts: a ValueError chained to the last ABORTED.
                    raise self._conflicted(attempts, started) from None
                self._fail("commit", "a transaction", error)

    def get(self, path: str) -> Doc | None:
        validate_path(path)
        with self._errors("read", path):
            snapshot = self.client.document(path).get()
        return _to_doc(snapshot)

    def update_if(self, path: str, decide: Callable[[Doc | None], Doc | None]) -> Doc | None:
        # Optimistic: read, decide, write with a precondition on the version read. No locks are
        # held, so racing claimants never wait on each other (in the emulator, transactions
        # that read and then write one document deadlock until a 2 s lock timeout); the loser's
        # precondition fails at once and it decides again on what the winner wrote.
        from google.api_core import exceptions
        from google.cloud.firestore_v1.field_path import FieldPath

        validate_path(path)
        reference = self.client.document(path)
        started = time.monotonic()
        while True:
            with self._errors("read", path):
                snapshot = reference.get()
            current = _to_doc(snapshot)
            fields = decide(current)
            if fields is None or current is None:
                return None
            merged = {**current, **fields}
            _check_document(path, merged, fields)
            if not fields:
                return merged
            quoted = {FieldPath(key).to_api_repr(): value for key, value in fields.items()}
            option = self.client.write_option(last_update_time=snapshot.update_time)
            try:
                with self._errors("update", path):
                    reference.update(quoted, option=option)
                return merged
            except StoreError as error:
                # Changed since read (precondition, deleted), or locked by a transaction until
                # the lock timed out (ABORTED): decide again on what is there now.
                retry = exceptions.FailedPrecondition | exceptions.NotFound | exceptions.Aborted
                if not isinstance(error.__cause__, retry):
                    raise
            if time.monotonic() - started > _UPDATE_BUDGET:
                raise StoreError(
                    f"{self.url}: {path} kept changing (or stayed locked) while being updated "
                    f"for {_UPDATE_BUDGET:.0f} s; too many clients are writing it"
                )

    def create(self, path: str, data: Doc) -> bool:
        from google.api_core import exceptions

        _check_document(path, data)
        with self._errors("create", path):
            try:
                self.client.document(path).create(data)
            except exceptions.AlreadyExists:
                return False
        return True

    def create_all(self, items: Sequence[tuple[str, Doc]]) -> int:
        from google.api_core import exceptions

        for path, data in items:
            _check_document(path, data)
        created = 0
        # One commit per batch of writes (Firestore takes up to 500), not one round trip each.
        for start in range(0, len(items), _MAX_BATCH_WRITES):
            chunk = items[start : start + _MAX_BATCH_WRITES]
            batch = self.client.batch()
            for path, data in chunk:
                batch.create(self.client.document(path), data)
            try:
                with self._errors("create", chunk[0][0]):
                    batch.commit()
                created += len(chunk)
            except StoreError as error:
                if not isinstance(error.__cause__, exceptions.AlreadyExists):
                    raise
                # A batch fails whole when one document exists: create them one by one.
                created += sum(1 for path, data in chunk if self.create(path, data))
        return created

    def set(self, path: str, data: Doc) -> None:
        _check_document(path, data)
        with self._errors("write", path):
            self.client.document(path).set(data)

    def list(self, collection: str) -> _Docs:
        validate_path(f"{collection}/x")
        with self._errors("list", collection):
            return _sorted(self.client.collection(collection).stream())

    def find(self, collection_id: str, field: str, values: Sequence[Any], limit: int = 0) -> _Docs:
        group = self.client.collection_group(collection_id)
        return self._where_in(group, f"{collection_id} by {field}", field, values, limit)

    def query(self, collection: str, field: str, values: Sequence[Any], limit: int = 0) -> _Docs:
        validate_path(f"{collection}/x")
        scope = self.client.collection(collection)
        return self._where_in(scope, f"{collection} by {field}", field, values, limit)

    def page(
        self,
        collection: str,
        *,
        equals: Mapping[str, Any] | None = None,
        order_by: str,
        descending: bool = True,
        limit: int,
        after: tuple[Any, str] | None = None,
        fields: Sequence[str] | None = None,
    ) -> _Docs:
        # Equality filters with an order on another field need a composite index in production
        # Firestore (deploy/firestore.indexes.json); the emulator needs none.
        from google.cloud.firestore_v1.base_query import FieldFilter

        check_page_arguments(equals or {}, order_by, limit, fields)
        validate_path(f"{collection}/x")
        direction = "DESCENDING" if descending else "ASCENDING"
        query: Any = self.client.collection(collection)
        for name, value in (equals or {}).items():
            query = query.where(filter=FieldFilter(name, "==", value))
        query = query.order_by(order_by, direction=direction).order_by(
            "__name__", direction=direction
        )
        if after is not None:
            # A document id in the __name__ place becomes a reference to it in `collection`.
            query = query.start_after([after[0], after[1]])
        if fields is not None:
            query = query.select(list(fields))
        with self._errors("page through", collection):
            return [
                (snapshot.reference.path, _to_doc(snapshot) or {})
                for snapshot in query.limit(limit).stream()
            ]

    def count(self, collection: str) -> int:
        validate_path(f"{collection}/x")
        with self._errors("count", collection):
            results = self.client.collection(collection).count().get()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        return int(results[0][0].value) if results and results[0] else 0

    def wait_for_change(self, timeout: float) -> bool:
        self._ensure_watch()
        if self._changed.wait(max(timeout, 0.0)):
            # Cleared before returning, and callers re-read after a wakeup, so a change that
            # lands between the wait and the clear is still seen by that re-read.
            self._changed.clear()
            return True
        return False

    def interrupt_wait(self) -> None:
        """Wakes a thread blocked in `wait_for_change` (it returns True, a spurious wakeup)."""
        self._changed.set()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            watch, self._watch = self._watch, None
        self._changed.set()
        if watch is not None:
            # Stops the listener's consumer thread before its channel goes away.
            _unsubscribe(watch)
        # The SDK has no public close; its gRPC channel is on the lazily built GAPIC client.
        api = getattr(self.client, "_firestore_api_internal", None)
        if api is not None:
            api.transport.close()

    # -- internals -----------------------------------------------------------------------------

    def _where_in(
        self, scope: Any, what: str, field: str, values: Sequence[Any], limit: int
    ) -> _Docs:
        """Documents of ``scope`` (a collection or group) whose ``field`` is in ``values``.

        By path, one query per `_MAX_IN_VALUES` values (Firestore's limit on ``in``).
        """
        if not values:
            return []
        from google.cloud.firestore_v1.base_query import FieldFilter

        found: dict[str, Doc] = {}
        unique = _unique(values)
        for start in range(0, len(unique), _MAX_IN_VALUES):
            chunk = unique[start : start + _MAX_IN_VALUES]
            query = scope.where(filter=FieldFilter(field, "in", chunk))
            if limit > 0:
                query = query.limit(limit)
            with self._errors("query", what):
                found.update(_sorted(query.stream()))
        result = sorted(found.items())
        return result[:limit] if limit > 0 else result

    @contextlib.contextmanager
    def _errors(self, action: str, what: str) -> Iterator[None]:
        """Turns a failed SDK call into a `StoreError` naming the action and the document."""
        try:
            yield
        except StoreError:
            raise
        except Exception as error:
            self._fail(action, what, error)

    def _fail(self, action: str, what: str, error: BaseException) -> NoReturn:
        """Raises a `StoreError` for an SDK failure, or re-raises what is not one.

        Credentials the SDK could not find or refresh at a request (it may only look for them
        then) raise `MissingCredentialsError`: the user's setup, not a failed store.
        """
        from google.api_core import exceptions
        from google.auth import exceptions as auth

        if isinstance(error, auth.DefaultCredentialsError | auth.RefreshError):
            raise _credentials_error(self.url, "Google Cloud credentials unusable", error) from None
        if isinstance(error, exceptions.GoogleAPICallError):
            code = error.code if error.code is not None else "error"
            detail = f"{code} {type(error).__name__}: {error.message}"
        elif isinstance(error, exceptions.RetryError | ValueError | TypeError):
            # The SDK raises ValueError/TypeError for values it cannot encode.
            detail = f"{type(error).__name__}: {error}"
        else:
            raise error
        raise StoreError(f"{self.url}: cannot {action} {what}: {detail}") from error

    def _conflicted(self, attempts: int, started: float) -> StoreError:
        return StoreError(
            f"{self.url}: a transaction conflicted with others {attempts} times in "
            f"{time.monotonic() - started:.0f} s; too many clients are writing the same documents"
        )

    def _ensure_watch(self) -> None:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.url}: the store is closed")
            if self._watch is not None and self._watch.is_active:
                return
            if self._watch is not None:
                # The stream ended without recovery (e.g. a long outage): listen again, and
                # wake the caller since changes may have been missed meanwhile.
                _unsubscribe(self._watch)
                self._changed.set()
            self._watch_since = datetime.datetime.now(datetime.UTC) - _CLOCK_SKEW
            self._first_snapshot = True
            query = self.client.collection_group(WATCHED_COLLECTION)
            with self._errors("listen to", WATCHED_COLLECTION):
                self._watch = query.on_snapshot(self._on_snapshot)
            self._watch.close = self._closing_quietly(self._watch)  # type: ignore[method-assign]

    def _closing_quietly(self, watch: Watch) -> Callable[..., None]:
        """``watch.close`` that does not raise the reason a stream ended with.

        When the listener's stream ends on its own (the server resets it, say), the SDK closes
        the watch from a thread of its own and re-raises the stream's error there, where nobody
        can catch it. The error only means the listener stopped: it is logged, waiters are woken,
        and the next wait listens again (`is_active` is then false).
        """
        close: Callable[..., None] = watch.close

        def quiet_close(reason: Any = None) -> None:
            try:
                close(reason)
            except Exception as error:
                _LOGGER.debug("%s: the task-run listener stopped: %s", self.url, error)
                self._changed.set()

        return quiet_close

    def _on_snapshot(
        self, docs: Sequence[Snapshot], changes: Sequence[Any], read_time: datetime.datetime
    ) -> None:
        # Runs on the listener's thread.
        if self._first_snapshot:
            self._first_snapshot = False
            since = self._watch_since
            recent = since is None or any(
                doc.update_time is not None and doc.update_time >= since for doc in docs
            )
            if not recent:
                return
        self._changed.set()


def _unsubscribe(watch: Watch) -> None:
    watch.unsubscribe()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated


def _to_doc(snapshot: Snapshot) -> Doc | None:
    if not snapshot.exists:
        return None
    data = snapshot.to_dict()
    return {} if data is None else dict(data)


def _sorted(snapshots: Iterable[Snapshot]) -> _Docs:
    # By path as a string, as SQLite orders them (Firestore compares paths segment by segment).
    return sorted((snapshot.reference.path, _to_doc(snapshot) or {}) for snapshot in snapshots)


def _unique(values: Sequence[Any]) -> list[Any]:
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    return unique


def _check_document(path: str, data: Doc, written: Doc | None = None) -> None:
    """Checks the values being written (``written``, by default all of ``data``) and the size.

    An update checks only the fields it writes: a field another program stored with a Firestore
    type JSON lacks (a timestamp) stays as it is and must not block the update.
    """
    validate_path(path)
    _check_value(path, "", data if written is None else written, in_array=False)
    check_size(path, data)


def _check_value(path: str, field: str, value: Any, *, in_array: bool) -> None:
    where = field or "<document>"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                _refuse(path, where, f"map key {key!r} is not a non-empty string")
            if len(key) > 4 and key.startswith("__") and key.endswith("__"):
                _refuse(path, where, f"map key {key!r} is reserved (__...__)")
            inner = f"{field}.{key}" if field else key
            _check_value(path, inner, item, in_array=False)
    elif isinstance(value, list):
        if in_array:
            _refuse(path, where, "an array holds an array, which Firestore cannot store")
        for index, item in enumerate(value):
            _check_value(path, f"{field}[{index}]", item, in_array=True)
    elif isinstance(value, bool) or value is None or isinstance(value, str | float):
        pass
    elif isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            _refuse(path, where, f"{value} does not fit in 64 bits")
    else:
        _refuse(path, where, f"{type(value).__name__} is not a JSON value")


def _refuse(path: str, field: str, reason: str) -> NoReturn:
    raise StoreError(f"cannot store document {path}: field {field}: {reason}")

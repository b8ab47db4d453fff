"""The store interface: a small document database with transactions, backed by SQLite or Firestore.

Documents are JSON-compatible maps addressed by slash-separated paths with an even number of
segments (``job_runs/R/task_runs/T``), exactly as in Firestore, so one document model serves both
backends (see docs/architecture.md, "Document model"). Backends implement only the primitives
below; everything the execution protocol needs is built on them in `llm_scheduler.execution`.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from llm_scheduler.errors import StoreError

__all__ = [
    "LOCK_FREE_METHODS",
    "MAX_DOCUMENT_BYTES",
    "WATCHED_COLLECTION",
    "Doc",
    "Docs",
    "Store",
    "Transaction",
    "check_page_arguments",
    "check_size",
    "encode_document",
    "is_lock_free",
    "lock_free",
]

Doc = dict[str, Any]
# (path, document) pairs; an alias because `Store.list` shadows the builtin inside the class.
Docs = list[tuple[str, Doc]]
T = TypeVar("T")

# The collection (group) whose writes `Store.wait_for_change` reports: task runs, whose changes
# are what dispatchers act on. Other writes (steps, events, blobs) need no one woken.
WATCHED_COLLECTION = "task_runs"

# Firestore's limit is 1 MiB per document including field names and overhead; keep a margin.
MAX_DOCUMENT_BYTES = 1_000_000


# `Store` methods that need no write lock held around them, and functions marked `lock_free`:
# a backend may run them in place without taking its write lock first (SQLite's readers never
# wait on its writers, and each write takes the lock itself, for just that write).
LOCK_FREE_METHODS = frozenset({"get", "list", "find", "query", "page", "count", "update_if"})
_LOCK_FREE: set[Callable[..., Any]] = set()
F = TypeVar("F", bound=Callable[..., Any])


def lock_free(function: F) -> F:
    """Marks a function `Store.call` may run without holding a write lock around it.

    For functions that only read, or whose few writes are each a store primitive (which takes
    the lock itself): holding the lock while they read and compute made every other writer of
    the store, in every process, wait for that too.
    """
    _LOCK_FREE.add(function)
    return function


def is_lock_free(store: Store, function: Callable[..., Any]) -> bool:
    """Whether ``function`` is a lock-free method of ``store`` or marked `lock_free`."""
    while isinstance(function, functools.partial):
        function = function.func
    if getattr(function, "__self__", None) is store:
        return getattr(function, "__name__", "") in LOCK_FREE_METHODS
    return getattr(function, "__func__", function) in _LOCK_FREE


def check_size(path: str, data: Doc) -> None:
    """Refuses a document too large for Firestore (it is never truncated).

    Values JSON cannot hold (a timestamp another program wrote to Firestore) count as their text.

    Raises:
        StoreError: The document is over `MAX_DOCUMENT_BYTES` as JSON.
    """
    encode_document(path, data, lenient=True)


# Made once: `json.dumps` with any argument other than its defaults builds a new encoder at
# every call, which costs as much as encoding a small document (events, task runs).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_LENIENT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def encode_document(path: str, data: Doc, *, lenient: bool = False) -> str:
    """A document as compact JSON text, refused when too large for Firestore.

    Backends that store JSON text encode each document once, here, and size checks measure
    exactly that text.

    Args:
        path: The document's path (for the error).
        data: The document.
        lenient: Encode values that are not JSON as their text (for measuring only).

    Raises:
        StoreError: The document is over `MAX_DOCUMENT_BYTES` as JSON.
    """
    text = (_LENIENT if lenient else _COMPACT).encode(data)
    # Bytes are at most 4 per character: count them only when that bound is over the limit.
    if len(text) * 4 > MAX_DOCUMENT_BYTES:
        size = len(text.encode("utf-8"))
        if size > MAX_DOCUMENT_BYTES:
            raise StoreError(
                f"document {path} would be {size} bytes, over the {MAX_DOCUMENT_BYTES}-byte "
                "limit of one Firestore document; shorten the prompts or outputs that feed it"
            )
    return text


class Transaction(abc.ABC):
    """Reads and writes that commit together. Reads must come before writes (as in Firestore)."""

    @abc.abstractmethod
    def get(self, path: str) -> Doc | None:
        """Reads a document, or None when it does not exist."""

    @abc.abstractmethod
    def set(self, path: str, data: Doc) -> None:
        """Writes a whole document (created or replaced)."""

    @abc.abstractmethod
    def update(self, path: str, fields: Doc) -> None:
        """Replaces top-level fields of an existing document."""


class Store(abc.ABC):
    """A document store. Backends are chosen by URL through `llm_scheduler.store.open_store`.

    Every method is safe to call from several threads and, for SQLite, several processes.
    """

    url: str

    @abc.abstractmethod
    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        """Runs ``body`` in a transaction and commits; retried when it conflicts with another.

        ``body`` may run more than once, so it must not have side effects besides its writes.
        """

    @abc.abstractmethod
    def get(self, path: str) -> Doc | None:
        """Reads a document, or None when it does not exist."""

    def update_if(self, path: str, decide: Callable[[Doc | None], Doc | None]) -> Doc | None:
        """Updates one document by what it holds now: a read-modify-write of a single document.

        ``decide`` gets the current document (None when absent) and returns the top-level
        fields to write, or None to write nothing. The write happens only if the document has
        not changed since ``decide`` saw it; otherwise ``decide`` runs again on the new version.
        Backends may do this optimistically, without a transaction's locks (Firestore: a write
        with a last-update-time precondition), so that workers racing for one document (claims)
        do not wait on each other's locks.

        Returns:
            The document after the write (current fields merged with ``decide``'s), or None
            when ``decide`` chose to write nothing.
        """

        def body(tx: Transaction) -> Doc | None:
            current = tx.get(path)
            fields = decide(current)
            if fields is None or current is None:
                return None
            tx.update(path, fields)
            return {**current, **fields}

        return self.run_transaction(body)

    @abc.abstractmethod
    def create(self, path: str, data: Doc) -> bool:
        """Creates a document if it does not exist; returns whether it was created."""

    @abc.abstractmethod
    def set(self, path: str, data: Doc) -> None:
        """Writes a whole document (created or replaced)."""

    @abc.abstractmethod
    def list(self, collection: str) -> Docs:
        """The documents directly in a collection (``job_runs/R/task_runs``), ordered by id."""

    @abc.abstractmethod
    def find(self, collection_id: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        """Documents of every collection named ``collection_id`` whose ``field`` is in ``values``.

        This is a Firestore collection-group query (``task_runs`` under any job run), ordered by
        path; ``limit`` > 0 returns at most that many (the first by path).
        """

    @abc.abstractmethod
    def query(self, collection: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        """Documents directly in ``collection`` whose ``field`` is in ``values``, by id.

        Args:
            collection: A collection path (``job_runs/R/task_runs``).
            field: A top-level field name.
            values: The values to match (equality, as in `find`).
            limit: At most this many documents (the first by id); 0 for all.
        """

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
    ) -> Docs:
        """One page of the documents directly in ``collection``, in order, filtered.

        The documents whose fields equal ``equals``, ordered by ``order_by`` and then by document
        id (both ascending, or both descending), starting after the cursor ``after``. Documents
        without an ``order_by`` field are left out (as Firestore leaves them out). The values
        of ``order_by`` should be of one type (all strings, or all numbers) across the
        collection: across types, the backends order differently.

        This default reads the whole collection; backends query an index instead (SQLite has
        indexes for the pages of ``job_runs`` by ``created_at``, Firestore needs the composite
        indexes of ``deploy/firestore.indexes.json``).

        Args:
            collection: A collection path (``job_runs``).
            equals: Top-level field names and the values they must hold (strings, numbers or
                booleans; a boolean never equals a number on Firestore, as in `find`).
            order_by: The top-level field to order by.
            descending: Largest first (newest first, for timestamps).
            limit: At most this many documents (1 or more).
            after: ``(order value, document id)`` of the last document of the previous page;
                the page starts after it (it need not exist any more).
            fields: Only these top-level fields of each document (absent ones stay absent);
                all of them when None.

        Returns:
            ``(path, document)`` pairs, in order.

        Raises:
            StoreError: A field name is not an identifier, a value is not a scalar, or
                ``limit`` is below 1.
        """
        check_page_arguments(equals or {}, order_by, limit, fields)
        wanted = dict(equals or {})
        keyed: list[tuple[Any, str, str, Doc]] = []
        for path, doc in self.list(collection):
            value = doc.get(order_by)
            if value is None or not all(_strictly_equal(doc.get(k), v) for k, v in wanted.items()):
                continue
            keyed.append((value, document_id(path), path, doc))
        keyed.sort(key=lambda item: (item[0], item[1]), reverse=descending)
        if after is not None:
            mark = (after[0], after[1])
            keyed = [
                item
                for item in keyed
                if ((item[0], item[1]) < mark if descending else (item[0], item[1]) > mark)
            ]
        chosen = keyed[:limit]
        if fields is None:
            return [(path, doc) for _, _, path, doc in chosen]
        return [(path, {f: doc[f] for f in fields if f in doc}) for _, _, path, doc in chosen]

    def count(self, collection: str) -> int:
        """How many documents are directly in ``collection`` (backends count without reading)."""
        return len(self.list(collection))

    def create_all(self, items: Sequence[tuple[str, Doc]]) -> int:
        """Creates each document that does not exist yet; returns how many were created.

        Not atomic: a failure may leave some created. Backends may write them together (one
        commit on SQLite), which is why writers of many small documents (events) use it.
        """
        return sum(1 for path, data in items if self.create(path, data))

    @abc.abstractmethod
    def wait_for_change(self, timeout: float) -> bool:
        """Blocks until a task run may have changed, or ``timeout`` seconds pass.

        Task runs are the documents of `WATCHED_COLLECTION` collections. Writes to other
        collections need not wake it (Firestore listens to task runs only, and SQLite does the
        same so that both backends behave alike).

        Returns:
            False when the timeout passed with no change seen; True otherwise (spurious wakeups
            are allowed, so callers re-read what they need).
        """

    async def wait_for_change_async(self, timeout: float) -> bool:
        """`wait_for_change` from async code (in a worker thread unless a backend does better)."""
        return await asyncio.to_thread(self.wait_for_change, timeout)

    async def call(self, function: Callable[..., T], /, *args: Any) -> T:
        """Calls ``function(*args)``, a function that uses this store, from async code.

        By default in a worker thread, so the event loop goes on while the call waits on the
        network. Backends whose calls are short and local may run it in place.
        """
        return await asyncio.to_thread(function, *args)

    def interrupt_wait(self) -> None:  # noqa: B027 - optional hook
        """Makes a `wait_for_change` in progress (in another thread) return soon."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Releases connections; the store is not used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_page_arguments(
    equals: Mapping[str, Any], order_by: str, limit: int, fields: Sequence[str] | None
) -> None:
    """Checks the arguments of `Store.page` (the same on every backend).

    Raises:
        StoreError: A field name is not an identifier (names are spelled into queries), a value
            of ``equals`` is not a string, number or boolean, or ``limit`` is below 1.
    """
    for name in (*equals, order_by, *(fields or ())):
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            raise StoreError(
                f"cannot page on field {name!r}: use a top-level field name of letters, digits "
                "and underscores"
            )
    for name, value in equals.items():
        if not isinstance(value, str | int | float):  # bool is an int
            raise StoreError(
                f"cannot filter a page on {name} == {value!r}: compare with a string, a number "
                "or a boolean"
            )
    if limit < 1:
        raise StoreError(f"a page holds at least one document, not limit={limit}")


def _strictly_equal(left: Any, right: Any) -> bool:
    """Equality as Firestore has it: a boolean never equals a number."""
    return isinstance(left, bool) == isinstance(right, bool) and bool(left == right)


def collection_of(path: str) -> str:
    """The collection path of a document path."""
    return path.rsplit("/", 1)[0]


def document_id(path: str) -> str:
    """The last segment of a document path."""
    return path.rsplit("/", 1)[1]


def validate_path(path: str) -> None:
    """Checks that ``path`` names a document (an even number of non-empty segments).

    Raises:
        StoreError: It does not.
    """
    parts = path.split("/")
    if len(parts) % 2 or not all(parts):
        raise StoreError(f"not a document path: {path!r}")

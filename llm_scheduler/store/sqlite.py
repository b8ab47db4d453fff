"""The embedded store: one SQLite file in WAL mode, safe for several threads and processes.

Documents live in one table keyed by path. Transactions take the write lock up front
(``BEGIN IMMEDIATE``), so a read-modify-write never races another writer, in this process or
another one; writers queue on a lock file beside the database first, so none sleeps in SQLite's
busy handler. Waiting for changes needs no polling loop: writers of task runs wake waiters in
this process through a condition variable and in other processes through a datagram on an
abstract UNIX socket each waiter registers next to the database file.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import functools
import json
import math
import os
import pathlib
import re
import select
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from llm_scheduler.errors import StoreError
from llm_scheduler.store.base import (
    WATCHED_COLLECTION,
    Doc,
    Docs,
    Store,
    Transaction,
    check_page_arguments,
    collection_of,
    encode_document,
    is_lock_free,
    validate_path,
)

__all__ = ["PAGE_INDEXES", "SqliteStore", "page_sql"]

T = TypeVar("T")

_SETTLED_NS = 100_000_000
# A call waits this long in place for a write lock another writer holds (writers hold it for
# well under a millisecond), polling, before it waits in a worker thread instead: a thread hop
# costs more than a short wait, but the event loop must not stop for a long one.
_IN_PLACE_WAIT_SECONDS = 0.05
_LOCK_POLL_SECONDS = 0.0005
# A checkpoint (the write-ahead log copied into the database file) after this many writes of
# this store object, a log of ~10 MB: a checkpoint copies each page once however many times it
# was written since the last one (the pages a run appends to are written at every commit).
_CHECKPOINT_EVERY_WRITES = 512
_AUTOCHECKPOINT_PAGES = 10_000
_MMAP_BYTES = 256 * 1024 * 1024
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

# Task runs are the only documents queried by status (dispatchers, completions, the sweeper): their
# status indexes are partial, so the writes of every other document (steps, events, blobs, the
# bulk of a run) neither parse their JSON for an index nor add entries to one. The indexes these
# replace covered every document.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_collection ON documents (collection, path);
DROP INDEX IF EXISTS documents_by_status;
DROP INDEX IF EXISTS documents_by_status_path;
DROP INDEX IF EXISTS documents_by_collection_status;
CREATE INDEX IF NOT EXISTS task_runs_by_status
    ON documents (json_extract(data, '$.status'), path)
    WHERE collection_id = '{WATCHED_COLLECTION}';
CREATE INDEX IF NOT EXISTS task_runs_by_collection_status
    ON documents (collection, json_extract(data, '$.status'), path)
    WHERE collection_id = '{WATCHED_COLLECTION}';
"""

# The pages `SqliteStore.page` serves from an index: (collection, fields compared for
# equality, field ordered by). Each is a partial index holding only that collection's
# documents, so writes elsewhere (task runs, steps, events, blobs) never compute its JSON
# expressions; a page of another shape is still served, by reading its collection.
PAGE_INDEXES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("job_runs", (), "created_at"),
    ("job_runs", ("status",), "created_at"),
    ("job_runs", ("job_id",), "created_at"),
    ("job_runs", ("job_id", "status"), "created_at"),
)


class _SqliteTransaction(Transaction):
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        # Whether a watched document (a task run) was written: waiters are woken on commit.
        self.wrote = False
        # What this transaction read or wrote (it holds the write lock: nobody else changes
        # them), so an update after a read does not read and decode the document again.
        self._known: dict[str, Doc | None] = {}

    def get(self, path: str) -> Doc | None:
        if path in self._known:
            known = self._known[path]
            return None if known is None else dict(known)
        doc = _read(self._connection, path)
        self._known[path] = None if doc is None else dict(doc)
        return doc

    def set(self, path: str, data: Doc) -> None:
        _write(self._connection, path, data)
        self._known[path] = dict(data)
        self.wrote = self.wrote or _watched(path)

    def update(self, path: str, fields: Doc) -> None:
        current = self._known[path] if path in self._known else _read(self._connection, path)
        if current is None:
            raise StoreError(f"cannot update {path}: it does not exist")
        merged = {**current, **fields}
        _write(self._connection, path, merged)
        self._known[path] = merged
        self.wrote = self.wrote or _watched(path)


class SqliteStore(Store):
    """A `Store` in one SQLite file (``sqlite:///path/state.db``)."""

    def __init__(self, path: str | pathlib.Path) -> None:
        """Opens (and creates, with its folder) the database file."""
        self.path = pathlib.Path(path).resolve()
        self.url = f"sqlite:///{self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create {self.path.parent}: {error.strerror}") from None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._version = 0
        self._interrupted = False
        self._wake_dir = self.path.with_name(self.path.name + ".wake")
        self._wake_socket: socket.socket | None = None
        self._wake_file: pathlib.Path | None = None
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None
        self._write_mutex = threading.RLock()
        self._write_depth = 0
        self._waiters_cache: tuple[str, ...] = ()
        self._waiters_seen = -1
        self._writes = 0
        self._closed = False
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_wanted = threading.Event()
        with self._connection() as connection:
            connection.executescript(_SCHEMA + _page_index_schema())

    # -- primitives ----------------------------------------------------------------------------

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        with self._writing():
            return self._run_transaction(body)

    def _run_transaction(self, body: Callable[[Transaction], T]) -> T:
        connection = self._connection()
        for attempt in range(50):
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise StoreError(f"{self.url}: {error}") from None
                time.sleep(min(0.01 * (attempt + 1), 0.2))
                continue
            transaction = _SqliteTransaction(connection)
            try:
                result = body(transaction)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            if transaction.wrote:
                self._notify_after_writing()
            return result
        raise StoreError(f"{self.url}: the database stayed locked; is another program holding it?")

    def get(self, path: str) -> Doc | None:
        return _read(self._connection(), path)

    def update_if(self, path: str, decide: Callable[[Doc | None], Doc | None]) -> Doc | None:
        # A compare-and-set on the document's text: read and decide without the write lock
        # (most racing claimants find the task taken and never queue for it), then one UPDATE
        # that writes only if the text is still what was read; otherwise decide again. The
        # lock is held for that statement alone, not for a transaction around the decoding,
        # deciding and encoding.
        validate_path(path)
        connection = self._connection()
        while True:
            row = connection.execute(_READ, (path,)).fetchone()
            if row is None:
                decide(None)
                return None
            current = json.loads(row[0])
            fields = decide(dict(current))
            if fields is None:
                return None
            merged = {**current, **fields}
            text = encode_document(path, merged)
            with self._writing():
                cursor = connection.execute(_COMPARE_AND_SET, (text, time.time(), path, row[0]))
            if cursor.rowcount == 1:
                if _watched(path):
                    self._notify_after_writing()
                return merged

    def create(self, path: str, data: Doc) -> bool:
        validate_path(path)
        row = _row(path, data)
        with self._writing():
            cursor = self._connection().execute(
                "INSERT OR IGNORE INTO documents "
                "(path, collection, collection_id, data, updated_at) VALUES (?, ?, ?, ?, ?)",
                row,
            )
        created = cursor.rowcount == 1
        if created and _watched(path):
            self._notify_after_writing()
        return created

    def create_all(self, items: Sequence[tuple[str, Doc]]) -> int:
        if not items:
            return 0
        for path, _ in items:
            validate_path(path)
        rows = [_row(path, data) for path, data in items]

        def insert(_: Transaction) -> int:
            cursor = self._connection().executemany(
                "INSERT OR IGNORE INTO documents (path, collection, collection_id, data, "
                "updated_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            return cursor.rowcount

        # One commit for all of them (a transaction's commit notifies only for task runs).
        with self._writing():
            created = self._run_transaction(insert)
        if any(_watched(path) for path, _ in items):
            self._notify_after_writing()
        return created

    def set(self, path: str, data: Doc) -> None:
        validate_path(path)
        row = _row(path, data)  # encoded before the lock: the lock is held for the write only
        with self._writing():
            self._connection().execute(_UPSERT, row)
        if _watched(path):
            self._notify_after_writing()

    def list(self, collection: str) -> Docs:
        # INDEXED BY, here and below: with a bound `collection = ?` and partial indexes on
        # `collection = 'job_runs'` (PAGE_INDEXES), SQLite would plan the statement again on
        # every call, to see whether the bound value makes a partial index usable (~15 µs).
        rows = self._connection().execute(
            "SELECT path, data FROM documents INDEXED BY documents_by_collection "
            "WHERE collection = ? ORDER BY path",
            (collection,),
        )
        return [(path, json.loads(data)) for path, data in rows]

    def find(self, collection_id: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        sql, scope = find_query(collection_id, field, len(set(values)))
        return self._select(sql, scope, values, limit)

    def query(self, collection: str, field: str, values: Sequence[Any], limit: int = 0) -> Docs:
        sql, scope = query_sql(collection, field, len(set(values)))
        return self._select(sql, scope, values, limit)

    def _select(self, sql: str, scope: tuple[str, ...], values: Sequence[Any], limit: int) -> Docs:
        """Runs a `find` or `query` statement: ``sql`` takes ``scope``, then the values."""
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return []
        connection = self._connection()
        if limit <= 0 or len(wanted) == 1:
            suffix = f" LIMIT {int(limit)}" if limit > 0 else ""
            rows = list(connection.execute(sql + suffix, (*scope, *wanted)))
        else:
            # The first ``limit`` by path over several values: the index holds each value's
            # documents in path order, so one bounded read per value, merged here, instead of
            # SQLite reading and sorting every match (every PENDING task run of a wide job, for
            # one that tells a run is not finished).
            one = _one_value(sql)
            rows = []
            for value in wanted:
                rows += connection.execute(f"{one} LIMIT {int(limit)}", (*scope, value))
            rows = sorted(rows)[:limit]
        return [(path, json.loads(data)) for path, data in rows]

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
        check_page_arguments(equals or {}, order_by, limit, fields)
        validate_path(f"{collection}/x")
        wanted = dict(equals or {})
        sql = page_sql(collection, sorted(wanted), order_by, descending, after is not None, fields)
        cursor: tuple[Any, ...] = ()
        if after is not None:
            cursor = (after[0], after[0], f"{collection}/{after[1]}")
        rows = self._connection().execute(
            sql, (*(wanted[name] for name in sorted(wanted)), *cursor, int(limit))
        )
        return [(path, json.loads(data)) for path, data in rows]

    def count(self, collection: str) -> int:
        row = (
            self._connection()
            .execute(
                "SELECT COUNT(*) FROM documents INDEXED BY documents_by_collection "
                "WHERE collection = ?",
                (collection,),
            )
            .fetchone()
        )
        return int(row[0])

    def wait_for_change(self, timeout: float) -> bool:
        wake = self._ensure_wake_socket()
        with self._changed:
            seen = self._version
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            with self._changed:
                if self._version != seen or self._interrupted:
                    self._interrupted = False
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            # Wake on a datagram from another process, or re-check the in-process counter
            # (set by `_notify`, which also sends us a datagram, so this is not a poll loop).
            # The socket stays non-blocking (an async waiter on an event loop may share it):
            # poll, then read without blocking.
            poller = select.poll()
            poller.register(wake, select.POLLIN)
            if not poller.poll(max(1, math.ceil(remaining * 1000))):
                continue  # the deadline check above returns
            try:
                wake.recv(64)
            except BlockingIOError:
                continue  # another waiter on this store took that wake-up: look again
            with contextlib.suppress(BlockingIOError, InterruptedError):
                while wake.recv(64):
                    pass
            return True

    async def wait_for_change_async(self, timeout: float) -> bool:
        # On the event loop itself (the wake-up socket is a file descriptor like any other):
        # a worker thread per wait cost a thread hop and GIL hand-offs for every task-run write
        # of every process sharing the file.
        wake = self._ensure_wake_socket()
        try:
            wake.recv(64)  # a wake-up already queued: a change since the caller's last look
        except BlockingIOError:
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.sock_recv(wake, 64), max(timeout, 0.0))
            except TimeoutError:
                with self._changed:
                    interrupted, self._interrupted = self._interrupted, False
                return interrupted
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while wake.recv(64):
                pass
        with self._changed:
            self._interrupted = False
        return True

    async def call(self, function: Callable[..., T], /, *args: Any) -> T:
        # A local read or write takes tens of microseconds, a hop to a worker thread several
        # times that (thread wake-ups, GIL hand-offs, another thread's connection). So the call
        # runs in place when the write lock is free at once, holding it so that it cannot wait
        # in the middle; when another writer has it, the call waits in a worker thread instead.
        # A call that only reads, or whose writes each take the lock themselves (`lock_free`),
        # runs in place without it: readers never wait in WAL mode, and holding the lock while
        # such a call read and computed made every writer of every process wait for it.
        if is_lock_free(self, function):
            return function(*args)
        if self._acquire_writing_soon(_IN_PLACE_WAIT_SECONDS):
            try:
                return function(*args)
            finally:
                self._release_writing()
        return await asyncio.to_thread(function, *args)

    def _acquire_writing_soon(self, patience: float) -> bool:
        """Takes the write lock if it comes free within ``patience`` seconds (polling)."""
        deadline = time.monotonic() + patience
        while not self._acquire_writing(wait=False):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_LOCK_POLL_SECONDS)
        return True

    def interrupt_wait(self) -> None:
        # The flag covers a waiting thread that has not reached its socket yet (its wait then
        # returns at once); the datagram one that is blocked on it.
        with self._changed:
            self._interrupted = True
        if self._wake_file is not None:
            sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sender.setblocking(False)
            with contextlib.suppress(OSError):
                sender.sendto(b"1", "\0" + self._wake_file.name)
            sender.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            self._checkpoint_wanted.set()
            checkpointer.join(timeout=30)
        with self._write_mutex:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        if self._wake_socket is not None:
            self._wake_socket.close()
            self._wake_socket = None
        if self._wake_file is not None:
            with contextlib.suppress(OSError):
                self._wake_file.unlink()
            self._wake_file = None

    # -- internals -----------------------------------------------------------------------------

    def _lock_file(self) -> int:
        """The open lock file (called with the write mutex held)."""
        if self._lock_fd is None:
            try:
                self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as error:
                raise StoreError(f"cannot open {self._lock_path}: {error.strerror}") from None
        return self._lock_fd

    def _acquire_writing(self, wait: bool) -> bool:
        """Takes the write lock (see `_writing`); without ``wait``, only if it is free now."""
        if not self._write_mutex.acquire(blocking=wait):
            return False
        try:
            fd = self._lock_file()
            if self._write_depth == 0:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._write_mutex.release()
            return False
        except BaseException:
            self._write_mutex.release()
            raise
        self._write_depth += 1
        return True

    def _release_writing(self) -> None:
        """Releases what `_acquire_writing` took; then wakes waiters, and checkpoints, if due.

        Both come after the lock is free: every writer of every process queues for it, and
        the datagrams (a system call per waiter) and a checkpoint (which copies pages and
        syncs the files) are no part of the write.
        """
        self._write_depth -= 1
        last = self._write_depth == 0
        if last and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if last:
            self._writes += 1
        self._write_mutex.release()
        if last:
            if getattr(self._local, "notify", False):
                self._local.notify = False
                self._notify()
            if self._writes % _CHECKPOINT_EVERY_WRITES == 0:
                self._checkpoint_soon()

    def _notify_after_writing(self) -> None:
        """Wakes the waiters once this thread releases the write lock (at once if not held)."""
        if self._write_depth and self._write_mutex._is_owned():  # type: ignore[attr-defined]
            self._local.notify = True
        else:
            self._notify()

    def _checkpoint_soon(self) -> None:
        """Has the checkpoint thread copy the write-ahead log into the database file."""
        with self._lock:
            if self._closed:
                return
            # Started lazily, and again in a forked child (where the thread does not exist).
            if self._checkpointer is None or not self._checkpointer.is_alive():
                self._checkpointer = threading.Thread(
                    target=self._checkpoint_loop, name="llm-scheduler-checkpoint", daemon=True
                )
                self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _checkpoint_loop(self) -> None:
        while True:
            self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            if self._closed:
                return
            # PASSIVE: it copies what no reader still needs and waits for no one; writers go on
            # meanwhile (SQLite's own locks allow one checkpoint beside one writer). A busy or
            # failed checkpoint is left to the next one.
            with contextlib.suppress(sqlite3.Error, StoreError):
                self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Holds this database's write lock: one writer at a time, in all threads and processes.

        SQLite serialises writers itself, but a writer that finds the database locked sleeps in
        SQLite's busy handler (1, 2, 5, 10 ms...), however soon the lock is free again: with a
        thread writing events beside the one writing steps, that cost milliseconds per step. A
        thread lock and an flock on a file beside the database queue writers instead, and each
        wakes as soon as the one before it is done (the kernel releases the flock of a process
        that dies).
        """
        self._acquire_writing(wait=True)
        try:
            yield
        finally:
            self._release_writing()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(
                    self.path, isolation_level=None, timeout=30, check_same_thread=False
                )
            except sqlite3.Error as error:
                raise StoreError(f"cannot open {self.url}: {error}") from None
            connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit is not synced to disk, the checkpoint syncs. A commit
            # survives the process being killed (it is in the OS's files); a power loss may
            # lose the last commits, never the database's consistency.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            # Checkpoints run on a thread of their own (`_checkpoint_soon`), not inside the
            # commit that crosses SQLite's threshold while it holds the write lock; SQLite's
            # own, at ten times its default, remains for processes that write too little to
            # start one (many short-lived writers beside a long-lived reader).
            connection.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            # Pages of the database file read through memory, not a system call and a copy
            # each: every commit of another process empties this connection's page cache, so
            # reads after it go back to the file (~15 % of a dispatcher's CPU with 4 of them).
            connection.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _ensure_wake_socket(self) -> socket.socket:
        # Under the condition's lock: two threads waiting for the first time must not make two.
        with self._changed:
            return self._wake_socket or self._new_wake_socket()

    def _new_wake_socket(self) -> socket.socket:
        if self._wake_socket is None:
            name = f"llm-scheduler-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            wake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            wake.setblocking(False)  # always: waiters poll it, or wait on an event loop
            wake.bind("\0" + name)  # Linux abstract namespace: no file to clean up
            self._wake_dir.mkdir(exist_ok=True)
            self._wake_file = self._wake_dir / name
            self._wake_file.touch()
            self._wake_socket = wake
        return self._wake_socket

    def _notify(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()
        for name in self._waiters():
            try:
                _sender().sendto(b"1", "\0" + name)
            except (ConnectionRefusedError, FileNotFoundError):
                # The waiter's process is gone; forget it.
                with contextlib.suppress(OSError):
                    (self._wake_dir / name).unlink()
            except BlockingIOError:
                pass  # its queue is full: it is awake already

    def _waiters(self) -> tuple[str, ...]:
        """The registered waiters' socket names, listed again only when the folder changed."""
        try:
            changed = os.stat(self._wake_dir).st_mtime_ns
        except FileNotFoundError:
            return ()
        with self._lock:
            if changed != self._waiters_seen:
                self._waiters_cache = tuple(entry.name for entry in _wake_entries(self._wake_dir))
                # Timestamps are coarse (a few ms): a waiter registering in the same tick as
                # this listing would leave the time unchanged, so a listing only counts as
                # current once the folder's time is safely in the past.
                settled = time.time_ns() - changed > _SETTLED_NS
                self._waiters_seen = changed if settled else -1
            return self._waiters_cache


@functools.cache
def _sender() -> socket.socket:
    """The process's one socket for wake-up datagrams (they need no connection).

    It never blocks: a waiter that is busy (not draining its socket) must not stall every
    writer once its queue is full.
    """
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setblocking(False)
    atexit.register(sender.close)
    return sender


def find_query(collection_id: str, field: str, count: int) -> tuple[str, tuple[str, ...]]:
    """The SQL of `SqliteStore.find` on ``field`` with ``count`` values, and its first parameters.

    The statement's parameters are the returned ones, then the values. The JSON path is spelled
    out, not bound: SQLite uses an expression index (such as ``task_runs_by_status``) only when
    the query's expression is the index's, literally; for task runs the collection id is
    spelled out too, for the partial index. The field name is checked first, so nothing can be
    injected.

    Raises:
        StoreError: The field name is not a (dotted) identifier.
    """
    _check_field(field)
    if collection_id == WATCHED_COLLECTION:
        return _select(f"INDEXED BY task_runs_by_status WHERE {_TASK_RUNS}", field, count), ()
    return _select("WHERE collection_id = ?", field, count), (collection_id,)


def query_sql(collection: str, field: str, count: int) -> tuple[str, tuple[str, ...]]:
    """The SQL of `SqliteStore.query` in ``collection``, and its first parameters (then values).

    Task runs are read through ``task_runs_by_collection_status`` (in one run, by status), job
    runs by status through their page index, any other collection through
    ``documents_by_collection``. A value bound where a partial index has a literal
    (``collection = 'job_runs'``) would make SQLite plan the statement again at every call, so
    such terms are spelled out and the index named.

    Raises:
        StoreError: The field name is not a (dotted) identifier.
    """
    _check_field(field)
    if collection.rsplit("/", 1)[-1] == WATCHED_COLLECTION:
        scope = f"INDEXED BY task_runs_by_collection_status WHERE {_TASK_RUNS} AND collection = ?"
    elif collection == "job_runs" and field == "status":
        index = _page_index_name("job_runs", ("status",), "created_at")
        return _select(f"INDEXED BY {index} WHERE collection = 'job_runs'", field, count), ()
    else:
        scope = "INDEXED BY documents_by_collection WHERE collection = ?"
    return _select(scope, field, count), (collection,)


_TASK_RUNS = f"collection_id = '{WATCHED_COLLECTION}'"


def _check_field(field: str) -> None:
    if not _FIELD_NAME.fullmatch(field):
        raise StoreError(
            f"cannot query on field {field!r}: use letters, digits and underscores "
            "(dotted for a nested field)"
        )


def _select(scope: str, field: str, count: int) -> str:
    marks = ", ".join("?" for _ in range(count))
    return (
        f"SELECT path, data FROM documents {scope} "
        f"AND json_extract(data, '$.{field}') IN ({marks}) ORDER BY path"
    )


def _one_value(sql: str) -> str:
    """A `_select` statement made to take one value (its ``IN (...)`` becomes ``= ?``)."""
    head, _, tail = sql.rpartition(" IN (")
    return f"{head} = ?{tail[tail.index(')') + 1 :]}"


def page_sql(
    collection: str,
    equals: Sequence[str],
    order_by: str,
    descending: bool,
    after: bool,
    fields: Sequence[str] | None = None,
) -> str:
    """The SQL of `SqliteStore.page`.

    Its parameters are the values of ``equals`` in that order, then with ``after`` the
    cursor's value twice and its document's path, then the limit. The collection is spelled
    into the text, not bound: SQLite uses a partial index only when the query's terms imply
    the index's ``WHERE``, literally. Field names are checked first (`check_page_arguments`),
    and the collection is quoted, so nothing can be injected.
    """
    key = _json_field(order_by)
    index = _page_index_name(collection, equals, order_by)
    terms = [f"collection = {_quote(collection)}"]
    terms += [f"{_json_field(name)} = ?" for name in equals]
    if after:
        # Not a row value, (key, path) < (?, ?): SQLite seeks an expression index only on a
        # plain range; the OR then skips the few ties of the cursor's value.
        less, most = ("<", "<=") if descending else (">", ">=")
        terms.append(f"{key} {most} ? AND ({key} {less} ? OR path {less} ?)")
    else:
        terms.append(f"{key} IS NOT NULL")
    direction = "DESC" if descending else "ASC"
    columns = "data" if fields is None else _projection(fields)
    return (
        f"SELECT path, {columns} FROM documents"
        f"{f' INDEXED BY {index}' if index else ''} WHERE {' AND '.join(terms)} "
        f"ORDER BY {key} {direction}, path {direction} LIMIT ?"
    )


def _projection(fields: Sequence[str]) -> str:
    """An SQL expression for the object of ``data``'s top-level ``fields`` that it holds.

    The document is parsed once (`json_each`), not once per field; booleans, which
    `json_each` gives as 0 and 1, are turned back into JSON's.
    """
    names = ", ".join(_quote(name) for name in fields)
    value = "CASE type WHEN 'true' THEN json('true') WHEN 'false' THEN json('false') ELSE value END"
    return (
        f"(SELECT json_group_object(key, {value}) FROM json_each(documents.data) "
        f"WHERE key IN ({names}))"
    )


def _page_index_name(collection: str, equals: Sequence[str], order_by: str) -> str:
    """The name of the `PAGE_INDEXES` index for this page, or "" when there is none."""
    for indexed, fields, key in PAGE_INDEXES:
        if (indexed, sorted(fields), key) == (collection, sorted(equals), order_by):
            return "_".join(("page", indexed.replace("/", "_"), *sorted(fields), "by", key))
    return ""


def _page_index_schema() -> str:
    statements = []
    for collection, fields, key in PAGE_INDEXES:
        columns = ", ".join(_json_field(name) for name in (*sorted(fields), key))
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {_page_index_name(collection, fields, key)} "
            f"ON documents ({columns}, path) WHERE collection = {_quote(collection)};"
        )
    return "\n".join(statements) + "\n"


def _json_field(name: str) -> str:
    return f"json_extract(data, '$.{name}')"


def _quote(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _watched(path: str) -> bool:
    """Whether writing ``path`` wakes waiters: it is a document of a watched collection."""
    parts = path.rsplit("/", 2)
    return len(parts) == 3 and parts[1] == WATCHED_COLLECTION


def _wake_entries(folder: pathlib.Path) -> Iterator[pathlib.Path]:
    try:
        yield from folder.iterdir()
    except FileNotFoundError:
        return


def _row(path: str, data: Doc) -> tuple[str, str, str, str, float]:
    collection = collection_of(path)
    return (
        path,
        collection,
        collection.rsplit("/", 1)[-1],
        encode_document(path, data),
        time.time(),
    )


_READ = "SELECT data FROM documents WHERE path = ?"
_COMPARE_AND_SET = "UPDATE documents SET data = ?, updated_at = ? WHERE path = ? AND data = ?"


def _read(connection: sqlite3.Connection, path: str) -> Doc | None:
    row = connection.execute(_READ, (path,)).fetchone()
    return None if row is None else dict(json.loads(row[0]))


_UPSERT = (
    "INSERT INTO documents (path, collection, collection_id, data, updated_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET "
    "data = excluded.data, updated_at = excluded.updated_at"
)


def _write(connection: sqlite3.Connection, path: str, data: Doc) -> None:
    validate_path(path)
    connection.execute(_UPSERT, _row(path, data))

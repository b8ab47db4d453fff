"""The `Store` contract, run on every backend (see conftest.py), plus backend-specific checks."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from llm_scheduler.errors import MissingCredentialsError, StoreError, UserError
from llm_scheduler.store import MAX_DOCUMENT_BYTES, Doc, Store, Transaction, open_store
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator
from tests.store.conftest import Backend, new_project_id

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# Every JSON shape the engine writes: scalars, nested maps, arrays of maps, unicode, and keys
# that would mean something else as Firestore field paths.
SAMPLE: Doc = {
    "status": "PENDING",
    "attempt": 3,
    "cost": 0.25,
    "whole_float": 2.0,
    "done": False,
    "error": None,
    "usage": {"input_tokens": 10, "by_model": {"gpt": {"calls": 1}}},
    "handoffs": [1, "two", None, {"at": "2024-01-01T00:00:00Z", "steps": []}],
    "empty_map": {},
    "empty_list": [],
    "text": "héllo ✓ 你好",
    "dotted.key": 1,
    "spaced key": {"a/b": "`tick`"},
}


class Boom(Exception):
    pass


# -- documents -----------------------------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("job_runs/nope") is None


def test_set_then_get_round_trips_json(store: Store) -> None:
    store.set("job_runs/r1", SAMPLE)
    assert store.get("job_runs/r1") == SAMPLE


def test_set_replaces_the_whole_document(store: Store) -> None:
    store.set("job_runs/r1", {"a": 1, "b": {"x": 1}})
    store.set("job_runs/r1", {"b": {"y": 2}})
    assert store.get("job_runs/r1") == {"b": {"y": 2}}


def test_create_is_create_if_absent(store: Store) -> None:
    assert store.create("job_runs/r1/task_runs/t1", {"n": 1}) is True
    assert store.create("job_runs/r1/task_runs/t1", {"n": 2}) is False
    assert store.get("job_runs/r1/task_runs/t1") == {"n": 1}


def test_create_all_creates_what_is_absent(store: Store) -> None:
    store.create("job_runs/r1/events/e1", {"n": 1})
    created = store.create_all(
        [("job_runs/r1/events/e1", {"n": 2}), ("job_runs/r1/events/e2", {"n": 3})]
    )
    assert created == 1
    assert store.list("job_runs/r1/events") == [
        ("job_runs/r1/events/e1", {"n": 1}),
        ("job_runs/r1/events/e2", {"n": 3}),
    ]
    assert store.create_all([]) == 0
    with pytest.raises(StoreError, match="not a document path"):
        store.create_all([("job_runs/r1/events", {})])


def test_other_store_instances_see_writes(backend: Backend) -> None:
    writer, reader = backend.open(), backend.open()
    writer.set("jobs/j", {"v": 1})
    assert reader.get("jobs/j") == {"v": 1}


@pytest.mark.parametrize("path", ["job_runs", "job_runs/r/task_runs", "a//b", ""])
def test_paths_must_name_documents(store: Store, path: str) -> None:
    with pytest.raises(StoreError, match="not a document path"):
        store.set(path, {})


# -- list and find -------------------------------------------------------------------------------


def test_list_orders_by_id_and_holds_only_direct_children(store: Store) -> None:
    for task in ["b", "a", "c10", "c2"]:
        store.set(f"job_runs/r/task_runs/{task}", {"id": task})
    store.set("job_runs/r/task_runs/a/step_runs/00000", {"step": 0})
    store.set("job_runs/other/task_runs/z", {"id": "z"})
    store.set("job_runs/r", {"run": True})

    assert store.list("job_runs/r/task_runs") == [
        ("job_runs/r/task_runs/a", {"id": "a"}),
        ("job_runs/r/task_runs/b", {"id": "b"}),
        ("job_runs/r/task_runs/c10", {"id": "c10"}),
        ("job_runs/r/task_runs/c2", {"id": "c2"}),
    ]
    # job_runs/other has subcollections but no document of its own.
    assert store.list("job_runs") == [("job_runs/r", {"run": True})]
    assert store.list("job_runs/missing/task_runs") == []


def test_find_queries_one_collection_id_across_job_runs(store: Store) -> None:
    store.set("job_runs/r2/task_runs/t1", {"status": "PENDING"})
    store.set("job_runs/r1/task_runs/t2", {"status": "RUNNING", "lease": {"owner": "w1"}})
    store.set("job_runs/r1/task_runs/t1", {"status": "SUCCEEDED"})
    store.set("job_runs/r1/task_runs/t3", {"status": "PENDING"})
    store.set("job_runs/r1", {"status": "PENDING"})  # another collection id
    store.set("job_runs/r1/task_runs/t3/step_runs/0", {"status": "PENDING"})
    store.set("job_runs/r3/task_runs/t0", {"other": "PENDING"})

    assert [path for path, _ in store.find("task_runs", "status", ["PENDING", "RUNNING"])] == [
        "job_runs/r1/task_runs/t2",
        "job_runs/r1/task_runs/t3",
        "job_runs/r2/task_runs/t1",
    ]
    assert store.find("task_runs", "status", ["SUCCEEDED"]) == [
        ("job_runs/r1/task_runs/t1", {"status": "SUCCEEDED"})
    ]
    assert store.find("task_runs", "lease.owner", ["w1"])[0][0] == "job_runs/r1/task_runs/t2"
    assert store.find("task_runs", "status", []) == []
    assert store.find("task_runs", "status", ["NOPE"]) == []


def test_find_takes_more_values_than_one_firestore_in_query(store: Store) -> None:
    for index in range(0, 70, 7):
        store.set(f"job_runs/r/task_runs/t{index:02d}", {"n": index})
    values = [*range(70), 0, 7]  # over 30 values (Firestore's `in` limit), with repeats
    found = store.find("task_runs", "n", values)
    assert [doc["n"] for _, doc in found] == list(range(0, 70, 7))


# -- transactions --------------------------------------------------------------------------------


def test_transaction_read_modify_write(store: Store) -> None:
    store.set("counters/c", {"n": 1, "keep": "me"})

    def body(tx: Transaction) -> int:
        current = tx.get("counters/c")
        assert current is not None
        assert tx.get("counters/missing") is None
        tx.set("counters/c", {**current, "n": current["n"] + 1})
        tx.set("counters/new", {"n": 0})
        return int(current["n"])

    assert store.run_transaction(body) == 1
    assert store.get("counters/c") == {"n": 2, "keep": "me"}
    assert store.get("counters/new") == {"n": 0}


def test_exception_in_transaction_rolls_back_and_propagates(store: Store) -> None:
    store.set("counters/c", {"n": 1})

    def body(tx: Transaction) -> None:
        tx.get("counters/c")
        tx.set("counters/c", {"n": 99})
        tx.set("counters/other", {"n": 99})
        raise Boom("no")

    with pytest.raises(Boom, match="no"):
        store.run_transaction(body)
    assert store.get("counters/c") == {"n": 1}
    assert store.get("counters/other") is None


def test_concurrent_increments_from_separate_instances_are_all_kept(backend: Backend) -> None:
    # Lost updates would leave fewer than 24: this proves conflicting transactions are
    # detected (and retried) across clients, not only serialised within one.
    backend.open().set("counters/c", {"n": 0})

    def increment(tx: Transaction) -> None:
        doc = tx.get("counters/c")
        assert doc is not None
        tx.set("counters/c", {"n": doc["n"] + 1})

    def worker() -> None:
        store = backend.open()
        for _ in range(6):
            store.run_transaction(increment)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(worker) for _ in range(4)]
        for future in futures:
            future.result()
    assert backend.open().get("counters/c") == {"n": 24}


def test_update_if_writes_what_decide_returns(store: Store) -> None:
    store.set("job_runs/r/task_runs/t", {"status": "A", "n": 1})
    seen: list[Any] = []

    def decide(doc: dict[str, Any] | None) -> dict[str, Any] | None:
        seen.append(doc)
        return None if doc is None or doc["status"] != "A" else {"status": "B"}

    assert store.update_if("job_runs/r/task_runs/t", decide) == {"status": "B", "n": 1}
    assert store.get("job_runs/r/task_runs/t") == {"status": "B", "n": 1}
    # Decided against (the status moved on): nothing is written.
    assert store.update_if("job_runs/r/task_runs/t", decide) is None
    assert store.get("job_runs/r/task_runs/t") == {"status": "B", "n": 1}
    # Absent: decide sees None, and nothing is created.
    assert store.update_if("job_runs/r/task_runs/u", decide) is None
    assert store.get("job_runs/r/task_runs/u") is None
    assert seen == [{"status": "A", "n": 1}, {"status": "B", "n": 1}, None]


def test_concurrent_update_ifs_from_separate_instances_are_all_kept(backend: Backend) -> None:
    # update_if is a compare-and-set: a write based on a version another client changed
    # meanwhile is not made; decide runs again on the new version (no lost update).
    backend.open().set("counters/c", {"n": 0, "by": ""})

    def worker(name: str) -> None:
        store = backend.open()
        for _ in range(6):
            store.update_if(
                "counters/c", lambda doc: {"n": doc["n"] + 1, "by": name} if doc else None
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(worker, f"w{i}") for i in range(4)]
        for future in futures:
            future.result()
    assert backend.open().get("counters/c")["n"] == 24  # type: ignore[index]


def test_update_replaces_top_level_fields(store: Store) -> None:
    store.set("job_runs/r", {"usage": {"a": 1, "b": 2}, "status": "RUNNING", "dotted.key": 1})

    def body(tx: Transaction) -> None:
        tx.get("job_runs/r")
        tx.update("job_runs/r", {"usage": {"c": 3}, "dotted.key": 2, "new": [1]})

    store.run_transaction(body)
    # The nested map is replaced, not merged; a dotted key is a field name, not a path.
    assert store.get("job_runs/r") == {
        "usage": {"c": 3},
        "status": "RUNNING",
        "dotted.key": 2,
        "new": [1],
    }


def test_update_without_reading_first(store: Store) -> None:
    store.set("job_runs/r", {"a": {"x": 1}, "b": 1})
    store.run_transaction(lambda tx: tx.update("job_runs/r", {"a": {"y": 2}}))
    assert store.get("job_runs/r") == {"a": {"y": 2}, "b": 1}


def test_update_of_a_missing_document_fails(store: Store) -> None:
    with pytest.raises(StoreError, match="job_runs/missing"):
        store.run_transaction(lambda tx: tx.update("job_runs/missing", {"a": 1}))
    assert store.get("job_runs/missing") is None


# -- size limit ----------------------------------------------------------------------------------


def test_oversized_documents_are_refused_naming_the_path(store: Store) -> None:
    big = {"output": "x" * (MAX_DOCUMENT_BYTES + 1)}
    path = "job_runs/r/task_runs/t/step_runs/00001"
    with pytest.raises(StoreError, match=f"document {path} would be"):
        store.set(path, big)
    with pytest.raises(StoreError, match=path):
        store.create(path, big)
    with pytest.raises(StoreError, match=path):
        store.run_transaction(lambda tx: tx.set(path, big))
    store.set("job_runs/r", {"small": "y"})
    with pytest.raises(StoreError, match="job_runs/r"):
        store.run_transaction(lambda tx: tx.update("job_runs/r", big))
    assert store.get(path) is None
    assert store.get("job_runs/r") == {"small": "y"}


# -- waiting for changes -------------------------------------------------------------------------


def _wait_in_thread(store: Store, timeout: float) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def wait() -> None:
        outcome["result"] = store.wait_for_change(timeout)
        outcome["woke_at"] = time.monotonic()

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, outcome


def test_wait_for_change_wakes_when_another_instance_writes(backend: Backend) -> None:
    waiter, writer = backend.open(), backend.open()
    thread, outcome = _wait_in_thread(waiter, timeout=10)
    time.sleep(0.5)
    wrote_at = time.monotonic()
    writer.set("job_runs/r/task_runs/t", {"status": "PENDING"})
    thread.join(15)
    assert outcome["result"] is True
    assert outcome["woke_at"] - wrote_at < 2.0  # far from the 10 s timeout


def test_wait_for_change_remembers_writes_between_waits(backend: Backend) -> None:
    waiter, writer = backend.open(), backend.open()
    assert waiter.wait_for_change(0.2) is False  # starts listening
    writer.set("job_runs/r/task_runs/t", {"status": "PENDING"})
    started = time.monotonic()
    assert waiter.wait_for_change(10) is True
    assert time.monotonic() - started < 2.0


def test_an_interrupt_just_before_a_wait_still_ends_it(store: Store) -> None:
    # A dispatcher stopping interrupts its waiting thread, which may not be waiting yet: it
    # must not then sit out its whole timeout (a 2 s stall at the end of short runs).
    store.interrupt_wait()
    started = time.monotonic()
    assert store.wait_for_change(10) is True
    assert time.monotonic() - started < 2.0


def test_the_async_wait_wakes_on_writes_and_interrupts_and_times_out(backend: Backend) -> None:
    # What the dispatcher waits on (on SQLite, on the event loop itself, with no thread).
    waiter, writer = backend.open(), backend.open()

    async def main() -> None:
        assert await waiter.wait_for_change_async(0.3) is False  # starts listening
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, writer.set, "job_runs/r/task_runs/t", {"status": "PENDING"})
        started = time.monotonic()
        assert await waiter.wait_for_change_async(10) is True
        assert time.monotonic() - started < 2.5
        loop.call_later(0.2, waiter.interrupt_wait)
        started = time.monotonic()
        assert await waiter.wait_for_change_async(10) is True
        assert time.monotonic() - started < 2.5
        started = time.monotonic()
        assert await waiter.wait_for_change_async(0.5) is False
        assert time.monotonic() - started >= 0.45

    asyncio.run(main())


def test_wait_for_change_times_out_without_writes(store: Store) -> None:
    started = time.monotonic()
    assert store.wait_for_change(0.5) is False
    assert time.monotonic() - started >= 0.45


def test_sqlite_wakes_a_waiter_when_another_process_writes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStore(path) as waiter:
        assert waiter.wait_for_change(0.01) is False  # registers this waiter
        writer = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys\n"
                "from llm_scheduler.store.sqlite import SqliteStore\n"
                "with SqliteStore(sys.argv[1]) as store:\n"
                "    store.set('job_runs/r/task_runs/t', {'by': 'child'})\n",
                str(path),
            ],
            cwd=REPO_ROOT,
        )
        try:
            started = time.monotonic()
            assert waiter.wait_for_change(10) is True
            assert time.monotonic() - started < 8.0
        finally:
            assert writer.wait(30) == 0
        assert waiter.get("job_runs/r/task_runs/t") == {"by": "child"}


# -- open_store ----------------------------------------------------------------------------------


def test_open_store_sqlite_relative_and_absolute(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/dir/state.db") as relative:
        assert isinstance(relative, SqliteStore)
        assert relative.path == tmp_path / "rel" / "dir" / "state.db"
    absolute_path = tmp_path / "abs" / "state.db"
    with open_store(f"sqlite:///{absolute_path}") as absolute:
        assert isinstance(absolute, SqliteStore)
        assert absolute.path == absolute_path
        assert absolute.url == f"sqlite:///{absolute_path}"


def test_open_store_firestore_project_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_scheduler.store.firestore import FirestoreStore

    # Nothing listens there: opening a store makes no request.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    with open_store("firestore://my-project/my-db") as named:
        assert isinstance(named, FirestoreStore)
        assert (named.project, named.database, named.url) == (
            "my-project",
            "my-db",
            "firestore://my-project/my-db",
        )
    with open_store("firestore://my-project") as default:
        assert isinstance(default, FirestoreStore)
        assert (default.project, default.database) == ("my-project", "(default)")
        assert default.url == "firestore://my-project"


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///", "sqlite://host/x.db", "firestore://", "postgres://x/y", "state.db"],
)
def test_open_store_refuses_bad_urls(url: str) -> None:
    with pytest.raises(UserError):
        open_store(url)


# -- Firestore specifics -------------------------------------------------------------------------


@pytest.fixture
def firestore_store(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    from llm_scheduler.store.firestore import FirestoreStore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    with FirestoreStore(project=new_project_id()) as store:
        yield store


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"a": {"": 1}}, "a", "not a non-empty string"),
        ({"a": {"__x__": 1}}, "a", "reserved"),
        ({"grid": [[1, 2]]}, r"grid\[0\]", "array holds an array"),
        ({"n": 2**63}, "n", "64 bits"),
        ({"b": b"bytes"}, "b", "not a JSON value"),
    ],
)
def test_firestore_refuses_values_it_cannot_store(
    firestore_store: Store, data: Doc, field: str, reason: str
) -> None:
    with pytest.raises(StoreError, match=f"job_runs/r: field {field}: .*{reason}"):
        firestore_store.set("job_runs/r", data)
    assert firestore_store.get("job_runs/r") is None


def test_firestore_updates_leave_fields_json_cannot_hold_alone(
    firestore_store: Store,
) -> None:
    # Another program (the console, a client library) stored a timestamp: updating other fields
    # of that document works, in a transaction and as a single-document update.
    import datetime

    from google.cloud import firestore

    from llm_scheduler.store.firestore import FirestoreStore

    assert isinstance(firestore_store, FirestoreStore)
    client = firestore.Client(project=firestore_store.project)
    stamp = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
    client.document("run_requests/r").set({"created_at": stamp, "n": 1})
    firestore_store.run_transaction(
        lambda tx: (tx.get("run_requests/r"), tx.update("run_requests/r", {"n": 2}))
    )
    assert firestore_store.update_if("run_requests/r", lambda doc: {"n": 3}) is not None
    doc = firestore_store.get("run_requests/r")
    assert doc is not None and doc["n"] == 3 and doc["created_at"] == stamp
    with pytest.raises(StoreError, match="not a JSON value"):
        firestore_store.update_if("run_requests/r", lambda doc: {"b": b"bytes"})


def test_firestore_database_is_part_of_the_address(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_scheduler.store.firestore import FirestoreStore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    project = new_project_id()
    with FirestoreStore(project, "other") as other, FirestoreStore(project) as default:
        other.set("jobs/j", {"db": "other"})
        assert default.get("jobs/j") is None
        assert other.get("jobs/j") == {"db": "other"}


def test_firestore_without_credentials_names_the_fixes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    from llm_scheduler.store.firestore import FirestoreStore

    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(MissingCredentialsError, match="FIRESTORE_EMULATOR_HOST"):
        FirestoreStore(project="p")


def test_emulator_reset_clears_one_project(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_scheduler.store.firestore import FirestoreStore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    kept, cleared = new_project_id(), new_project_id()
    with FirestoreStore(kept) as keep, FirestoreStore(cleared) as clear:
        keep.set("jobs/j", {"v": 1})
        clear.set("jobs/j", {"v": 1})
        firestore_emulator.reset(cleared)
        assert clear.get("jobs/j") is None
        assert keep.get("jobs/j") == {"v": 1}


def _listener_threads() -> int:
    # The SDK's listener consumes its stream on a thread of this name.
    return sum("ConsumeBidirectionalStream" in t.name for t in threading.enumerate())


def test_firestore_close_stops_the_listener(firestore_store: Store) -> None:
    before = _listener_threads()
    assert firestore_store.wait_for_change(0.1) is False
    assert _listener_threads() == before + 1
    firestore_store.close()
    assert _listener_threads() == before
    with pytest.raises(StoreError, match="closed"):
        firestore_store.wait_for_change(0.1)


def test_firestore_listener_ending_with_an_error_is_listened_to_again(
    firestore_store: Store,
) -> None:
    # The SDK closes a watch whose stream ended with an error from a thread of its own, and
    # re-raised the error there (an unhandled thread exception, seen as a CI failure with
    # "Stream removed (RST_STREAM)"). Now the waiters wake and the next wait listens again.
    from google.api_core import exceptions

    from llm_scheduler.store.firestore import FirestoreStore

    assert isinstance(firestore_store, FirestoreStore)
    assert firestore_store.wait_for_change(0.2) in (True, False)  # starts listening
    watch = firestore_store._watch
    assert watch is not None
    stopped = exceptions.Cancelled("Stream removed")  # type: ignore[no-untyped-call]
    watch._on_rpc_done(stopped)  # type: ignore[no-untyped-call]  # as the SDK does
    assert firestore_store.wait_for_change(5) is True  # woken by the stop
    firestore_store.set("job_runs/r/task_runs/t", {"status": "PENDING"})
    deadline = time.monotonic() + 10
    while not firestore_store.wait_for_change(1) and time.monotonic() < deadline:
        pass
    assert firestore_store._watch is not watch and firestore_store._watch is not None


def test_firestore_interrupt_wait_wakes_a_waiter(firestore_store: Store) -> None:
    from llm_scheduler.store.firestore import FirestoreStore

    assert isinstance(firestore_store, FirestoreStore)
    thread, outcome = _wait_in_thread(firestore_store, timeout=10)
    time.sleep(0.2)
    interrupted_at = time.monotonic()
    firestore_store.interrupt_wait()
    thread.join(15)
    assert outcome["result"] is True
    assert outcome["woke_at"] - interrupted_at < 1.0


def test_firestore_transactions_read_before_writing(firestore_store: Store) -> None:
    def body(tx: Transaction) -> None:
        tx.set("jobs/a", {"v": 1})
        tx.get("jobs/b")

    with pytest.raises(StoreError, match="every read comes before the first write"):
        firestore_store.run_transaction(body)
    assert firestore_store.get("jobs/a") is None

"""Map and strategy tasks in a store: a task run per item, collected without a hot document.

A strategy (`TaskConfig.strategy`) is a map whose items are its variations (`engine.items`):
the variation at index ``i`` has the task run id ``T~v-<slug>-<hex>`` and its name in
``variation``, its bindings are its inputs, ``in_series`` puts one in flight at a time, and
each output name is collected into an object keyed by variation name instead of a list.

Item ``i`` of map task ``T`` is an ordinary task run at ``job_runs/R/task_runs/T~00000i``
(`engine.items.item_run_id`), so it has its own trigger (N items are N parallel cloud function
invocations), lease, attempts, persisted steps, resume and replay. What is particular to maps:

1. **Expand** (`expand`): when ``T`` is claimed, its list is read from its inputs and written
   on ``T`` (out of line when large, with ``items_total``); the first items are created
   (create-if-absent: ``max_in_flight`` of them, or all), and ``T`` becomes WAITING: not leased,
   not claimable, no process waits for it. An empty list succeeds ``T`` at once (each output
   ``[]``), and a list that is not one, or is too long, fails it (`engine.map.map_items`).
2. **Items**: an item's document holds its own inputs (the item and its index); its scope is
   ``T``'s inputs under them. An item that succeeds records itself done
   (``job_runs/R/maps/T/done/i``, its own document) in the transaction that completes it, and
   creates the item ``max_in_flight`` places after it, so at most that many are in flight.
3. **Collect** (`check_map`): items never write ``T``'s document, so a map of 1,000 items does
   not put 1,000 transactions on one document (Firestore sustains about one write per second
   per document). After its commit, an item counts the done documents (an aggregation); the
   one that sees all of them moves ``T`` from WAITING to PENDING with ``map_ready`` (one
   conditional write wins). That write triggers ``T`` again, and its claim reads the items'
   outputs in item order (`collect`) and succeeds ``T`` the usual way. ``T``'s document is
   written three times per map (claim, waiting, ready), whatever the number of items.
4. **Failure**: an item that fails for good fails ``T`` (``T[17]: ...``) with its usual
   consequences (descendants skipped, the job run failed); items not started yet are skipped,
   and those in flight finish their step.
5. **Recovery**: a WAITING map whose last item's worker died before counting is moved on by
   `completion.reconcile_run` (which the sweeper and idle dispatchers call), through
   `check_map`; a ``T`` whose worker died while expanding is claimed again when its lease
   expires and expands again (nothing is created twice).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.engine import items as task_items
from llm_scheduler.engine.fingerprint import digest
from llm_scheduler.engine.records import add_usage
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import RUNNABLE, RunConfig, Status
from llm_scheduler.execution.endings import ended_fields, mark_failed
from llm_scheduler.execution.lease import Lease
from llm_scheduler.execution.submit import new_task_run_doc
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "BATCH",
    "check_map",
    "collect",
    "done_collection",
    "expand",
    "fail_item",
    "fail_waiting_task",
    "item_docs",
    "items_in_flight",
    "map_scope",
    "next_item",
    "succeed_item",
]

# Item runs created per transaction: Firestore commits at most 500 writes in one.
BATCH = 400


def done_collection(run_id: str, task_id: str) -> str:
    """The collection where each succeeded item of map task ``task_id`` records itself done."""
    return f"{docs.job_run_path(run_id)}/maps/{docs.path_segment('task id', task_id)}/done"


def _done_path(run_id: str, task_id: str, index: int) -> str:
    return f"{done_collection(run_id, task_id)}/{index:06d}"


def items_in_flight(task: config_pb2.TaskConfig, total: int) -> int:
    """How many of a map's items may be created (and so run) at once in a store."""
    cap = task_items.max_in_flight(task)
    return min(total, cap) if cap > 0 else total


def _item_doc(
    run: RunConfig, task: config_pb2.TaskConfig, made: task_items.Item, now: float, store: Store
) -> Doc:
    """A PENDING item run holding its own inputs (the item and its index, or the bindings)."""
    item_id = made.run_id
    own: dict[str, Any] = dict(made.inputs)
    if run.replay is not None:
        own.update(run.replay.edited_task_inputs(item_id))
    inputs = blobs.out_of_line(store, {"inputs": own}, docs.INLINE_FIELD_BYTES)
    return {
        **new_task_run_doc(run.run_id, item_id, now),
        "task_id": task.task_id,
        "map_task": task.task_id,
        "item_index": made.index,
        **({"variation": made.variation} if made.variation else {}),
        **blobs.with_fields(None, inputs),
        "inputs_digest": digest(own),
    }


def _create_items(tx: Transaction, items: Sequence[tuple[str, Doc]]) -> int:
    """Creates each item run that is absent (a resume's placeholder counts as absent)."""
    created = 0
    existing = [tx.get(path) for path, _ in items]
    for (path, doc), current in zip(items, existing, strict=True):
        if current is None or current.get("status") == Status.RESET:
            tx.set(path, doc)
            created += 1
    return created


@lock_free
def expand(
    store: Store,
    run: RunConfig,
    task: config_pb2.TaskConfig,
    lease: Lease,
    items: Sequence[Any],
    now: float,
) -> int:
    """Writes a claimed map task's list, creates its first items, and makes it WAITING.

    Idempotent: a task expanded again (its worker died, or a resume) creates no item twice.

    Returns:
        How many item runs this call created.

    Raises:
        LostLease: The claim was lost (another worker expands it).
        TaskCancelled: The run was cancelled meanwhile.
    """
    listed = blobs.out_of_line(store, {"map_items": list(items)}, docs.INLINE_FIELD_BYTES)

    def record_list(tx: Transaction) -> None:
        doc = lease.require(tx)
        tx.update(lease.task_path, {"items_total": len(items), **blobs.with_fields(doc, listed)})

    store.run_transaction(record_list)
    # Expanded again (a resume, or its worker died): the items that a finished item would
    # have created while the map was not waiting are created here.
    existing = {int(doc["item_index"]): doc for doc in item_docs(store, run.run_id, task.task_id)}
    in_flight = items_in_flight(task, len(items))
    made = task_items.items_of(task, items)
    first = [
        (
            docs.task_run_path(run.run_id, made[index].run_id),
            _item_doc(run, task, made[index], now, store),
        )
        for index in range(len(items))
        if index not in existing
        and (
            index < in_flight
            or existing.get(index - in_flight, {}).get("status") == Status.SUCCEEDED
        )
    ]
    created = 0
    for start in range(0, len(first), BATCH):
        created += store.run_transaction(
            functools.partial(_create_items, items=first[start : start + BATCH])
        )

    def wait(tx: Transaction) -> None:
        lease.require(tx)
        tx.update(
            lease.task_path,
            {"status": Status.WAITING, "lease_owner": "", "lease_expires_at": 0.0},
        )

    store.run_transaction(wait)
    return created


@lock_free
def map_scope(store: Store, run: RunConfig, item: Doc) -> dict[str, Any]:
    """An item's scope: its map task's defaults and inputs, under the item's own inputs.

    Raises:
        StoreError: The map task's run (or a blob of it) cannot be read.
    """
    task_id = str(item.get("map_task"))
    task_doc = store.get(docs.task_run_path(run.run_id, task_id))
    if task_doc is None:
        raise RuntimeError(f"map task run {task_id!r} of run {run.run_id!r} is missing")
    task_doc = blobs.inline(store, task_doc, f"task run {task_id!r} of run {run.run_id!r}")
    own = blobs.inline(store, item, f"task run {item.get('task_run_id')!r}")
    return {
        **dataflow.task_defaults(run.tasks[task_id]),
        **(task_doc.get("inputs") or {}),
        **(own.get("inputs") or {}),
    }


@lock_free
def next_item(store: Store, run: RunConfig, item_id: str, now: float) -> tuple[str, Doc] | None:
    """The item run that the success of ``item_id`` lets start, when there is one.

    None when the map has no item left beyond the ones started, or has stopped waiting for
    its items (it failed or was cancelled).
    """
    task_id, _ = task_items.split_item_run_id(item_id)
    task = run.tasks[task_id]
    index = task_items.item_index(task, item_id)
    assert index is not None
    if task_items.max_in_flight(task) <= 0:
        return None  # every item was created when the map expanded
    task_doc = store.get(docs.task_run_path(run.run_id, task_id))
    if task_doc is None or task_doc.get("status") not in (*RUNNABLE, Status.WAITING):
        return None  # the map failed or was cancelled: nothing more of it starts
    total = int(task_doc.get("items_total") or 0)
    following = index + items_in_flight(task, total)
    if following >= total:
        return None
    task_doc = blobs.inline(store, task_doc, f"task run {task_id!r} of run {run.run_id!r}")
    items = list(task_doc.get("map_items") or [])
    made = task_items.item_at(task, following, items[following])
    return docs.task_run_path(run.run_id, made.run_id), _item_doc(run, task, made, now, store)


def succeed_item(
    tx: Transaction,
    run: RunConfig,
    lease: Lease,
    outputs: blobs.OutOfLine,
    usage: Doc,
    cost: float,
    last_step: tuple[str, Doc] | None,
    following: tuple[str, Doc] | None,
) -> bool:
    """Marks an item SUCCEEDED, records it done and creates the item after it (if given).

    Returns:
        Whether the following item was created here.
    """
    item = lease.require(tx)
    task_id = str(item["map_task"])
    index = int(item["item_index"])
    step_exists = last_step is not None and tx.get(last_step[0]) is not None
    later = tx.get(following[0]) if following is not None else None
    done_path = _done_path(run.run_id, task_id, index)
    done = tx.get(done_path)
    tx.update(
        lease.task_path,
        ended_fields(Status.SUCCEEDED, item, outputs, usage, cost, lease.clock()),
    )
    if last_step is not None and not step_exists:
        tx.set(*last_step)
    if done is None:
        tx.set(done_path, {"item_index": index})
    if following is not None and (later is None or later.get("status") == Status.RESET):
        tx.set(*following)
        return True
    return False


def fail_item(
    tx: Transaction, lease: Lease, failure: blobs.OutOfLine, error: Doc, usage: Doc, cost: float
) -> None:
    """Marks an item FAILED (its map task learns it in `check_map`)."""
    item = lease.require(tx)
    tx.update(
        lease.task_path,
        ended_fields(Status.FAILED, item, failure, usage, cost, lease.clock(), error),
    )


@lock_free
def item_docs(store: Store, run_id: str, task_id: str) -> list[Doc]:
    """The item runs of map task ``task_id`` in item order (placeholders left out)."""
    found = store.query(docs.task_runs_collection(run_id), "map_task", [task_id])
    items = [doc for _, doc in found if doc.get("status") != Status.RESET]
    return sorted(items, key=lambda doc: int(doc.get("item_index") or 0))


@lock_free
def check_map(store: Store, run: RunConfig, task_id: str, now: float) -> str:
    """Moves a WAITING map task on when its items are done: PENDING to collect, or FAILED.

    Called after every item's completion, after expansion, and by `reconcile_run`. Cheap while
    items run: a read of the task and a count. One caller wins each transition.

    Returns:
        ``not_waiting`` (the task is not WAITING, or another caller moved it first),
        ``waiting`` (items still to finish), ``ready`` (this call moved it to PENDING, to be
        collected) or ``failed`` (this call failed it: an item failed).
    """
    path = docs.task_run_path(run.run_id, task_id)
    task_doc = store.get(path)
    if task_doc is None or task_doc.get("status") != Status.WAITING:
        return "not_waiting"
    failed = [
        doc
        for _, doc in store.query(docs.task_runs_collection(run.run_id), "status", [Status.FAILED])
        if doc.get("map_task") == task_id
    ]
    if failed:
        first = min(failed, key=lambda doc: int(doc.get("item_index") or 0))
        return _fail_map(store, run, task_id, first, now)
    total = int(task_doc.get("items_total") or 0)
    if store.count(done_collection(run.run_id, task_id)) < total:
        return "waiting"

    def ready(doc: Doc | None) -> Doc | None:
        if doc is None or doc.get("status") != Status.WAITING:
            return None
        # The collecting claim is not a retry: it gets its attempts afresh.
        return {
            "status": Status.PENDING,
            "map_ready": True,
            "pending_since": now,
            "max_attempt": int(doc.get("attempt") or 0) + int(doc.get("max_attempt") or 1),
        }

    moved = store.update_if(path, ready)
    return "ready" if moved is not None else "not_waiting"


def _fail_map(store: Store, run: RunConfig, task_id: str, item: Doc, now: float) -> str:
    index = int(item.get("item_index") or 0)
    item = blobs.inline(store, item, f"task run {item.get('task_run_id')!r}")
    error = dict(item.get("error") or {})
    label = str(item.get("variation") or f"{task_id}[{index}]")
    error["message"] = f"{label}: {error.get('message', '')}"
    usage, cost = _items_totals(item_docs(store, run.run_id, task_id))
    # The failed step stays on the item's record; the map's error names the item.
    failure = blobs.out_of_line(store, {}, docs.INLINE_FIELD_BYTES)
    failed = store.run_transaction(
        functools.partial(
            fail_waiting_task,
            run=run,
            task_id=task_id,
            failure=failure,
            error=error,
            usage=usage,
            cost=cost,
            now=now,
        )
    )
    if not failed:
        return "not_waiting"
    _skip_pending_items(store, run.run_id, task_id, now)
    return "failed"


def fail_waiting_task(
    tx: Transaction,
    run: RunConfig,
    task_id: str,
    failure: blobs.OutOfLine,
    error: Doc,
    usage: Doc,
    cost: float,
    now: float,
) -> bool:
    """Fails a WAITING task (a map whose item failed) as `fail_task` fails a claimed one.

    Returns:
        Whether it was WAITING (and is now FAILED); False when another caller moved it first.
    """
    task_doc = tx.get(docs.task_run_path(run.run_id, task_id))
    if task_doc is None or task_doc.get("status") != Status.WAITING:
        return False
    mark_failed(tx, run, task_id, task_doc, failure, error, usage, cost, now)
    return True


def _skip_pending_items(store: Store, run_id: str, task_id: str, now: float) -> None:
    """Skips the items of a failed map that have not started (those in flight finish)."""
    for doc in item_docs(store, run_id, task_id):
        if doc.get("status") != Status.PENDING:
            continue
        path = docs.task_run_path(run_id, str(doc["task_run_id"]))

        def skip(current: Doc | None) -> Doc | None:
            if current is None or current.get("status") != Status.PENDING:
                return None
            return {"status": Status.SKIPPED, "finished_at": docs.iso(now)}

        store.update_if(path, skip)


def _items_totals(items: Sequence[Mapping[str, Any]]) -> tuple[Doc, float]:
    usage = run_pb2.TokenUsage()
    cost = 0.0
    for doc in items:
        add_usage(usage, docs.record_from_doc(doc.get("usage") or {}, run_pb2.TokenUsage))
        cost += float(doc.get("cost_usd") or 0.0)
    return docs.record_to_doc(usage), cost


@lock_free
def collect(
    store: Store, run: RunConfig, task: config_pb2.TaskConfig, total: int
) -> tuple[dict[str, Any], Doc, float]:
    """A ready map's outputs (each name a list in item order, or keyed by variation), usage, cost.

    Args:
        store: Where the run lives.
        run: The run's config.
        task: The map task.
        total: Its number of items (``items_total``).

    Raises:
        RuntimeError: An item is missing or did not succeed (the map was not ready).
    """
    items = item_docs(store, run.run_id, task.task_id)
    succeeded = [doc for doc in items if doc.get("status") == Status.SUCCEEDED]
    if len(succeeded) != total or [int(d["item_index"]) for d in items] != list(range(total)):
        raise RuntimeError(
            f"map task {task.task_id!r}: {len(succeeded)} of {total} items succeeded; "
            "collected before its items were done"
        )
    outputs_of = [
        dict(blobs.inline(store, doc, f"task run {doc.get('task_run_id')!r}").get("outputs") or {})
        for doc in succeeded
    ]
    collected = [
        task_items.Item(
            int(doc["item_index"]),
            str(doc.get("task_run_id")),
            "",
            {},
            str(doc.get("variation") or ""),
        )
        for doc in succeeded
    ]
    outputs = task_items.collect_outputs(task, collected, outputs_of)
    usage, cost = _items_totals(succeeded)
    return outputs, usage, cost

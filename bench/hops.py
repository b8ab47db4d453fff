"""W4: event-driven hops, a chain of one-step tasks through a store and dispatcher processes.

``python -m bench.hops measure --store=sqlite|firestore --sizes=JSON`` runs, for each worker
count, two phases, each on a fresh store (SQLite file or emulator project) with that many fresh
dispatcher processes (each runs one task at a time), started and ready before anything is
submitted: one chain, then several chains at once. A phase stops after
``Sizes.hop_budget_seconds``; its figures then cover the task runs finished by then. It prints
one JSON line with, per worker count:

- ``hop_ms``: the median time from one task's commit (``finished_at``) to the claim of the next
  (``started_at``), read from the task-run documents;
- ``tasks_per_s``: task runs per second on the single chain (first start to last finish);
- ``multi_tasks_per_s``: the same over ``hop_chains`` chains run at once.

A chain is sequential, so more workers cannot speed one chain up (they race for each claim);
they serve several chains at once. Steps use the in-process offline model, so a hop is the
store and dispatcher only. ``python -m bench.hops worker --store-url=URL`` is one dispatcher
process; it stops when its stdin closes. The Firestore store needs ``FIRESTORE_EMULATOR_HOST``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import jobs
from bench.sizes import Sizes
from llm_scheduler import ModelClient, ModelRegistry, RunContext
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import FINISHED, RUNNABLE, Status
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import Store, open_store
from llm_scheduler.v1 import config_pb2

__all__ = ["main", "measure"]

_POLL_SECONDS = 0.05


def _time(value: str) -> float:
    return datetime.datetime.fromisoformat(value).timestamp()


def _chain_times(store: Store, run_id: str) -> list[tuple[float, float]]:
    """``(started, finished)`` of each finished task run of a chain, in chain order."""
    task_docs = store.list(docs.task_runs_collection(run_id))
    return [
        (_time(doc["started_at"]), _time(doc["finished_at"]))
        for _, doc in task_docs
        if doc.get("finished_at")
    ]


def _hops_ms(times: list[tuple[float, float]]) -> list[float]:
    return [(times[i + 1][0] - times[i][1]) * 1000 for i in range(len(times) - 1)]


def _wait_finished(store: Store, run_ids: list[str], budget: float) -> bool:
    """Waits until the runs finish (True) or ``budget`` seconds pass (False)."""
    deadline = time.monotonic() + budget
    pending = set(run_ids)
    while pending:
        for run_id in list(pending):
            doc = store.get(docs.job_run_path(run_id)) or {}
            if doc.get("status") in FINISHED:
                if doc["status"] != Status.SUCCEEDED:
                    raise RuntimeError(f"run {run_id} ended {doc['status']}: {doc.get('error')}")
                pending.discard(run_id)
        if pending and time.monotonic() > deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


class _Pool:
    """``count`` dispatcher processes on the store at ``url``, ready once started."""

    def __init__(self, url: str, count: int) -> None:
        command = [sys.executable, "-m", "bench.hops", "worker", f"--store-url={url}"]
        self.processes = [
            subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(count)
        ]
        try:
            for process in self.processes:
                assert process.stdout is not None
                if process.stdout.readline().strip() != "ready":
                    raise RuntimeError("a dispatcher process failed to start")
        except BaseException:
            self.stop(grace=0)
            raise

    def stop(self, grace: float) -> None:
        """Closes their stdin (their signal to stop); kills those still running after ``grace``."""
        for process in self.processes:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _phase(url: str, workers: int, job: config_pb2.JobConfig, chains: int, budget: float) -> Any:
    """Runs ``chains`` copies of a chain on a fresh store with its own dispatcher processes.

    Returns each chain's task times and whether every chain finished within the budget.
    """
    store = open_store(url)
    pool = _Pool(url, workers)
    done = False
    try:
        run_ids = [submit_job(store, job) for _ in range(chains)]
        done = _wait_finished(store, run_ids, budget)
    finally:
        # A phase cut short leaves work behind on a store that is thrown away: no need to wait.
        pool.stop(grace=10.0 if done else 0.5)
    try:
        return [_chain_times(store, run_id) for run_id in run_ids], done
    finally:
        store.close()


def _measure_workers(
    new_url: Callable[[], str], workers: int, tasks: int, sizes: Sizes, registry: ModelRegistry
) -> dict[str, float]:
    job = jobs.hop_chain_job(tasks, registry)
    budget = sizes.hop_budget_seconds
    [times], single_done = _phase(new_url(), workers, job, 1, budget)
    many, many_done = _phase(new_url(), workers, job, sizes.hop_chains, budget)
    # A phase cut short (a loaded machine) may leave too few task runs for some figures: those
    # are left out, and the report shows a dash.
    figures: dict[str, float] = {
        "tasks_done": len(times),
        "complete": float(single_done),
        "multi_complete": float(many_done),
    }
    hops = _hops_ms(times)
    if hops:
        figures["hop_ms"] = statistics.median(hops)
        figures["hop_ms_p90"] = statistics.quantiles(hops, n=10)[-1] if len(hops) > 1 else hops[0]
        figures["hop_ms_max"] = max(hops)
        figures["tasks_per_s"] = len(times) / (times[-1][1] - times[0][0])
    if times:
        figures["task_ms"] = statistics.median([(f - s) * 1000 for s, f in times])
    multi_hops = [h for chain in many for h in _hops_ms(chain)]
    if multi_hops:
        figures["multi_hop_ms"] = statistics.median(multi_hops)
    spans = [t for chain in many for t in chain]
    figures["multi_tasks_done"] = len(spans)
    if len(spans) > 1:
        first, last = min(s for s, _ in spans), max(f for _, f in spans)
        figures["multi_tasks_per_s"] = len(spans) / (last - first)
    return figures


def measure(store_kind: str, sizes: Sizes) -> dict[str, Any]:
    """Runs W4 on a fresh SQLite file or Firestore-emulator project per phase."""
    results: dict[str, dict[str, float]] = {}
    tasks = sizes.hop_tasks if store_kind == "sqlite" else sizes.firestore_hop_tasks
    with tempfile.TemporaryDirectory(prefix="llm-scheduler-bench-") as folder:
        names = itertools.count()

        def new_url() -> str:
            if store_kind == "sqlite":
                return f"sqlite:///{pathlib.Path(folder) / f'hops-{next(names)}.db'}"
            return f"firestore://bench-{uuid.uuid4().hex[:12]}"

        registry = ModelRegistry()
        for workers in sizes.hop_workers:
            results[str(workers)] = _measure_workers(new_url, workers, tasks, sizes, registry)
    return {
        "variant": f"w4_{store_kind}",
        "tasks": tasks,
        "chains": sizes.hop_chains,
        "workers": results,
        # The largest dispatcher process (children are waited for, so they are counted).
        "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


async def _work(url: str) -> None:
    store = open_store(url)
    context = RunContext(models=ModelClient(offline=False, credentials={}))
    dispatcher = Dispatcher(store, context, workers=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_on_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)
        store.interrupt_wait()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    # Connect (and for Firestore, authenticate) before saying ready.
    await asyncio.to_thread(store.find, "task_runs", "status", list(RUNNABLE))
    print("ready", flush=True)
    try:
        await dispatcher.run(stop=stop)
    finally:
        await context.models.aclose()
        store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="W4: event-driven hops.")
    commands = parser.add_subparsers(dest="command", required=True)
    measure_parser = commands.add_parser("measure")
    measure_parser.add_argument("--store", choices=["sqlite", "firestore"], required=True)
    measure_parser.add_argument("--sizes", required=True, help="a Sizes object as JSON")
    worker_parser = commands.add_parser("worker")
    worker_parser.add_argument("--store-url", required=True)
    args = parser.parse_args(argv)
    if args.command == "worker":
        asyncio.run(_work(args.store_url))
    else:
        print(json.dumps(measure(args.store, Sizes.from_json(args.sizes))), flush=True)


if __name__ == "__main__":
    main()

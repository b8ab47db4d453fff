"""Follows an event-driven run live from its recorded progress events, or replays its timeline.

Usage:
    run_watcher --run_id=ID [--store=URL]                     # live progress until it finishes
    run_watcher --run_id=ID [--store=URL] --replay_timeline   # the recorded events, timed

Following prints progress on stderr (a status bar on a terminal, plain lines otherwise) and a
JSON summary on stdout; it exits 0 when the run succeeded and 1 when it failed or was cancelled.
"""

from __future__ import annotations

import sys
from typing import Any

from absl import flags as absl_flags

from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.engine.records import add_usage
from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.events import event_from_record, follow_events, read_events
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter, describe_event
from llm_scheduler.store import Store
from llm_scheduler.store.base import Doc
from llm_scheduler.v1 import run_pb2

__all__ = ["main", "run"]

REPLAY_TIMELINE = absl_flags.DEFINE_bool(
    "replay_timeline",
    False,
    "Print the run's recorded events with their times since the first one, instead of "
    "following it.",
)


def _watch() -> int:
    run_id = flags.RUN_ID.value
    if not run_id:
        raise UserError("--run_id is required: the job run to watch")
    with common.open_store_from_flags() as store:
        if store.get(docs.job_run_path(run_id)) is None:
            raise UserError(f"no job run {run_id!r} in {store.url}")
        if REPLAY_TIMELINE.value:
            return _replay(store, run_id)
        return _follow(store, run_id)


def _follow(store: Store, run_id: str) -> int:
    printer = ProgressPrinter(quiet=flags.QUIET.value)
    counts = {"events": 0, "cache_hits": 0, "steps_reused": 0}
    for record in follow_events(store, run_id):
        counts["events"] += 1
        counts["cache_hits"] += record.kind == EventKind.CACHE_HIT.value
        counts["steps_reused"] += record.kind == EventKind.STEP_REUSED.value
        event = event_from_record(record)
        if event is not None:
            printer.event(event)
    job_run, doc = _job_run(store, run_id)
    status = docs.status_name(run_pb2.RunStatus.Name(job_run.status))
    name = job_run.config.name or job_run.job_id
    printer.event(EngineEvent(EventKind.JOB_FINISHED, name=name, detail=status))
    succeeded, total = int(doc.get("tasks_succeeded", 0)), int(doc.get("tasks_total", 0))
    summary: dict[str, Any] = {
        "run_id": run_id,
        "status": run_pb2.RunStatus.Name(job_run.status).removeprefix("RUN_STATUS_"),
        "tasks_succeeded": succeeded,
        "tasks_total": total,
        "usage": common.message_dict(job_run.usage),
        "cost_usd": job_run.cost_usd,
        **counts,
    }
    if job_run.error.message:
        summary["error"] = job_run.error.message
    common.print_json(summary)
    print(
        f"run {run_id} in {store.url}: {status}, {succeeded}/{total} tasks succeeded"
        f"; {common.describe_usage(job_run.usage, job_run.cost_usd)}; "
        f"{counts['cache_hits']} cache hits, {counts['steps_reused']} steps reused",
        file=sys.stderr,
    )
    return common.status_exit_code(job_run.status)


def _replay(store: Store, run_id: str) -> int:
    events = [record for _, record in read_events(store, run_id)]
    job_run, _ = _job_run(store, run_id)
    workers = sorted({e.worker_id for e in events})
    print(
        f"run {run_id}: {len(events)} events from {len(workers)} worker(s)",
        file=sys.stderr,
    )
    start = min((_seconds(e) for e in events), default=0.0)
    for record in events:
        event = event_from_record(record)
        line = describe_event(event) if event is not None else f"{record.kind} {record.detail}"
        if record.kind == EventKind.STEP_FINISHED.value:
            tokens = record.usage.input_tokens + record.usage.output_tokens
            line += f", {tokens:,} tok, ${record.cost_usd:.6f}"
        if len(workers) > 1:
            line += f"  <{record.worker_id}>"
        print(f"{_seconds(record) - start:9.3f}s {line}")
    if not job_run.HasField("finished_at"):
        print(f"run {run_id} is still running: this is its timeline so far", file=sys.stderr)
        return common.EXIT_OK
    return common.status_exit_code(job_run.status)


def _job_run(store: Store, run_id: str) -> tuple[run_pb2.JobRun, Doc]:
    """The job run's record and its document (which holds the task counters)."""
    doc = store.get(docs.job_run_path(run_id))
    if doc is None:
        raise UserError(f"no job run {run_id!r} in {store.url}")
    job_run = docs.record_from_doc(doc, run_pb2.JobRun)
    if doc.get("status") == docs.Status.CANCELLED:
        # A cancelled run keeps no totals: they are its tasks' sums (as read_job_run gives).
        for _, task in store.list(docs.task_runs_collection(run_id)):
            usage = docs.record_from_doc(task.get("usage") or {}, run_pb2.TokenUsage)
            add_usage(job_run.usage, usage)
            job_run.cost_usd += float(task.get("cost_usd") or 0.0)
    return job_run, doc


def _seconds(record: run_pb2.RunEvent) -> float:
    return record.time.seconds + record.time.nanos / 1e9


main = common.main_for(_watch)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

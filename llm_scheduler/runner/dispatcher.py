"""Runs the task runs committed to a store, as the cloud function would, on this machine.

Usage:
    dispatcher [--store=URL] [--workers=N] [--lease_seconds=S] [--until_idle] [--offline]
    dispatcher --target_url=http://127.0.0.1:8080   # POST CloudEvents to functions-framework

Several dispatchers may watch the same store; a task never runs twice.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from absl import flags as absl_flags

from llm_scheduler.execution.dispatcher import Dispatcher, DispatchStats
from llm_scheduler.execution.protocol import DEFAULT_LEASE_SECONDS, Outcome
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.telemetry import with_telemetry

__all__ = ["main", "run"]

WORKERS = absl_flags.DEFINE_integer("workers", 4, "Task runs handled at once.", lower_bound=1)
LEASE_SECONDS = absl_flags.DEFINE_float(
    "lease_seconds",
    DEFAULT_LEASE_SECONDS,
    "How long a claim lasts without renewal; a dead worker's tasks are picked up after it.",
    lower_bound=0.1,
)
UNTIL_IDLE = absl_flags.DEFINE_bool(
    "until_idle", False, "Exit once no task run is pending or running under a lease."
)
TARGET_URL = absl_flags.DEFINE_string(
    "target_url",
    None,
    "POST each runnable task run as a Firestore CloudEvent to this functions-framework URL "
    "instead of running it here.",
)


def _dispatch() -> int:
    registry = common.models_registry()
    progress = ProgressPrinter(quiet=flags.QUIET.value)
    context = common.build_context(registry, progress=progress)
    sender = None
    if TARGET_URL.value:
        from llm_scheduler.execution.cloudevents import cloudevent_sender

        sender = cloudevent_sender(TARGET_URL.value)

    def report(path: str, outcome: Outcome) -> None:
        detail = f": {outcome.detail}" if outcome.detail else ""
        line = f"{path}: {outcome.action}{detail}"
        if outcome.action in ("failed", "released", "error"):
            print(line, file=sys.stderr, flush=True)  # failures show even with --quiet
        else:
            common.report(line)

    with common.open_store_from_flags() as store:
        dispatcher = Dispatcher(
            store,
            context,
            workers=WORKERS.value,
            lease_seconds=LEASE_SECONDS.value,
            sender=sender,
            on_outcome=report,
        )
        mode = f"posting to {TARGET_URL.value}" if sender else f"{WORKERS.value} workers"
        common.report(f"dispatching {store.url} ({mode})")
        stats = asyncio.run(_run(dispatcher))
    common.report(f"handled: {stats.handled}")
    if stats.reconciled:
        common.report(f"finished or repaired stalled runs: {', '.join(stats.reconciled)}")
    return common.EXIT_OK


async def _run(dispatcher: Dispatcher) -> DispatchStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        return await dispatcher.run(until_idle=UNTIL_IDLE.value, stop=stop)
    finally:
        await dispatcher.context.models.aclose()


# Exports runs when the OTEL_* environment asks for it (docs/observability.md).
main = common.main_for(with_telemetry(_dispatch))


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

"""Progress lines on stderr for the command-line tools."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.models.client import RetryEvent

__all__ = ["ProgressPrinter"]


class ProgressPrinter:
    """Prints one line per step and task event, prefixed with the time since the start.

    Lines go to stderr so stdout keeps only results. ``quiet`` keeps failures and retries only.
    """

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self._out = out or sys.stderr
        self._quiet = quiet
        self._started = time.perf_counter()
        self._lock = threading.Lock()

    def event(self, event: EngineEvent) -> None:
        """Prints an engine event."""
        kind = event.kind
        where = f"[{event.task_id}] " if event.task_id else ""
        if kind is EventKind.STEP_STARTED:
            line = f"{where}step {event.step_index + 1}/{event.step_count} {event.name} ..."
        elif kind is EventKind.STEP_FINISHED:
            line = (
                f"{where}step {event.step_index + 1}/{event.step_count} {event.name} "
                f"done in {event.detail}"
            )
        elif kind is EventKind.STEP_FAILED:
            line = f"{where}step {event.step_index + 1}/{event.step_count} {event.name} FAILED: "
            line += event.detail
        elif kind is EventKind.TASK_STARTED:
            line = f"{where}task started"
        elif kind is EventKind.TASK_FINISHED:
            line = f"{where}task {event.detail}"
        elif kind is EventKind.TASK_SKIPPED:
            line = f"{where}task skipped (an upstream task failed)"
        elif kind is EventKind.JOB_STARTED:
            line = f"job {event.name} started"
        elif kind is EventKind.JOB_FINISHED:
            line = f"job {event.name} {event.detail}"
        else:
            line = f"{where}{kind.value} {event.detail}"
        important = kind in {EventKind.STEP_FAILED, EventKind.TASK_SKIPPED}
        if not self._quiet or important:
            self._write(line)

    def retry(self, event: RetryEvent) -> None:
        """Prints a retry notice."""
        self._write(
            f"{event.model_key}: {event.error} - retry {event.retry} in {event.delay_seconds:.1f}s"
        )

    def _write(self, line: str) -> None:
        elapsed = time.perf_counter() - self._started
        with self._lock:
            print(f"{elapsed:7.2f}s {line}", file=self._out, flush=True)

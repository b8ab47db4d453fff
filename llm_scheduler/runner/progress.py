"""Progress on stderr for the command-line tools: plain lines, or a status bar on a terminal."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import threading
import time
from typing import TextIO

from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.models.client import RetryEvent

__all__ = ["ProgressPrinter", "describe_event"]

_BAR_WIDTH = 10
# Erases the terminal's current line (carriage return, then ANSI "erase to end of line").
_CLEAR = "\r\x1b[K"
# On a terminal, these events get a permanent line; the status line stands for the others.
_PERMANENT = frozenset(
    {
        EventKind.JOB_STARTED,
        EventKind.JOB_FINISHED,
        EventKind.TASK_FINISHED,
        EventKind.TASK_SKIPPED,
        EventKind.STEP_FAILED,
    }
)
_IMPORTANT = frozenset({EventKind.STEP_FAILED, EventKind.TASK_SKIPPED})


def describe_event(event: EngineEvent) -> str:
    """One line describing an event, e.g. ``[draft] step 1/2 outline done in 0.52s``."""
    kind = event.kind
    where = f"[{event.task_id}] " if event.task_id else ""
    step = f"{where}step {event.step_index + 1}/{event.step_count} {event.name}"
    if kind is EventKind.STEP_STARTED:
        return f"{step} ..."
    if kind is EventKind.STEP_FINISHED:
        return f"{step} done in {event.detail}"
    if kind is EventKind.STEP_FAILED:
        return f"{step} FAILED: {event.detail}"
    if kind is EventKind.TASK_STARTED:
        return f"{where}task started"
    if kind is EventKind.TASK_FINISHED:
        return f"{where}task {event.detail}"
    if kind is EventKind.TASK_SKIPPED:
        return f"{where}task skipped (an upstream task failed)"
    if kind is EventKind.JOB_STARTED:
        return f"job {event.name} started"
    if kind is EventKind.JOB_FINISHED:
        return f"job {event.name} {event.detail}"
    return f"{where}{kind.value} {event.detail}"


@dataclasses.dataclass
class _Tally:
    """What the status line counts, since the printer started."""

    steps_done: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    steps_total: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # Steps in flight, by (run, task, index); their tasks are shown as "task done/total".
    in_flight: dict[tuple[str, str, int], None] = dataclasses.field(default_factory=dict)
    running_tasks: int = 0
    tasks_done: int = 0
    tasks_failed: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    cache_hits: int = 0
    steps_reused: int = 0

    def add(self, event: EngineEvent) -> None:
        kind = event.kind
        task = (event.run_id, event.task_id)
        if kind is EventKind.STEP_STARTED:
            self.steps_total[task] = max(self.steps_total.get(task, 0), event.step_count)
            self.steps_done.setdefault(task, 0)
            self.in_flight[(*task, event.step_index)] = None
        elif kind is EventKind.STEP_FINISHED:
            # A resumed task starts after its persisted steps: they count as done.
            self.steps_done[task] = max(self.steps_done.get(task, 0), event.step_index + 1)
            self.tokens += event.usage.input_tokens + event.usage.output_tokens
            self.cost_usd += event.cost_usd
            self.in_flight.pop((*task, event.step_index), None)
        elif kind is EventKind.STEP_FAILED:
            self.in_flight.pop((*task, event.step_index), None)
        elif kind is EventKind.TASK_STARTED:
            self.running_tasks += 1
        elif kind is EventKind.TASK_FINISHED:
            self.running_tasks = max(self.running_tasks - 1, 0)
            self.tasks_done += event.detail == "succeeded"
            self.tasks_failed += event.detail == "failed"
        elif kind is EventKind.CACHE_HIT:
            self.cache_hits += 1
        elif kind is EventKind.STEP_REUSED:
            self.steps_reused += 1

    @property
    def running(self) -> bool:
        return bool(self.running_tasks or self.in_flight)

    def counts(self, elapsed: float) -> str:
        done = sum(self.steps_done.values())
        parts = [
            f"{done}/{sum(self.steps_total.values())} steps",
            f"{self.tasks_done} tasks done",
        ]
        if self.tasks_failed:
            parts.append(f"{self.tasks_failed} failed")
        parts += [f"{self.tokens:,} tok", f"${self.cost_usd:.4f}", f"{elapsed:.1f}s"]
        if self.cache_hits:
            parts.append(f"{self.cache_hits} cached")
        if self.steps_reused:
            parts.append(f"{self.steps_reused} reused")
        return "  ".join(parts)

    def status_line(self, elapsed: float) -> str:
        done = sum(self.steps_done.values())
        total = sum(self.steps_total.values())
        filled = _BAR_WIDTH * done // total if total else 0
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        line = f"[{bar}] {self.counts(elapsed)}"
        tasks = dict.fromkeys((run, task) for run, task, _ in self.in_flight)
        if tasks:
            line += "  | " + ", ".join(
                f"{task or 'step'} {self.steps_done.get((run, task), 0)}/"
                f"{self.steps_total.get((run, task), 0)}"
                for run, task in tasks
            )
        return line


class ProgressPrinter:
    """Reports progress events on stderr, so stdout keeps only results.

    Not on a terminal (CI, pipes, tests): one line per step and task event, prefixed with the
    time since the start. On a terminal: one status line redrawn in place (a bar of the steps
    done, tasks done, tokens, cost, time, cache hits and reused steps, the tasks in flight), and
    permanent lines for tasks finishing, failures and retries; the status line is erased
    whenever nothing runs, so other output never lands on it. ``quiet`` keeps failures and
    retries only.
    """

    def __init__(self, out: TextIO | None = None, *, quiet: bool = False) -> None:
        self._out = out or sys.stderr
        self._quiet = quiet
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        self._live = not quiet and _is_terminal(self._out)
        self._tally = _Tally()
        self._status_shown = False

    def event(self, event: EngineEvent) -> None:
        """Reports an engine event."""
        line = describe_event(event)
        if not self._live:
            if not self._quiet or event.kind in _IMPORTANT:
                self._write(line)
            return
        with self._lock:
            self._tally.add(event)
            if event.kind is EventKind.JOB_FINISHED:
                line += f"  ({self._tally.counts(self._elapsed())})"
            self._redraw(line if event.kind in _PERMANENT else None)

    def retry(self, event: RetryEvent) -> None:
        """Reports a retry."""
        line = (
            f"{event.model_key}: {event.error} - retry {event.retry} in {event.delay_seconds:.1f}s"
        )
        if not self._live:
            self._write(line)
            return
        with self._lock:
            self._redraw(line)

    def _elapsed(self) -> float:
        return time.perf_counter() - self._started

    def _write(self, line: str) -> None:
        elapsed = self._elapsed()
        with self._lock:
            print(f"{elapsed:7.2f}s {line}", file=self._out, flush=True)

    def _redraw(self, permanent: str | None) -> None:
        """Prints a permanent line above the status line, and redraws or erases the latter."""
        text = _CLEAR if self._status_shown else ""
        if permanent is not None:
            text += f"{self._elapsed():7.2f}s {permanent}\n"
        self._status_shown = self._tally.running
        if self._status_shown:
            # Never wider than the terminal: a wrapped line cannot be redrawn in place.
            width = max(shutil.get_terminal_size().columns - 1, 20)
            text += self._tally.status_line(self._elapsed())[:width]
        if text:
            self._out.write(text)
            self._out.flush()


def _is_terminal(stream: TextIO) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False

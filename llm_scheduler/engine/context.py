"""What a run needs besides its config: models, functions, limits and a progress listener."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.client import ModelClient

__all__ = ["EngineEvent", "EventKind", "RunContext"]


class EventKind(enum.Enum):
    """What happened."""

    JOB_STARTED = "job_started"
    JOB_FINISHED = "job_finished"
    TASK_STARTED = "task_started"
    TASK_FINISHED = "task_finished"
    TASK_SKIPPED = "task_skipped"
    STEP_STARTED = "step_started"
    STEP_FINISHED = "step_finished"
    STEP_FAILED = "step_failed"
    STEP_RETRYING = "step_retrying"


@dataclasses.dataclass(frozen=True)
class EngineEvent:
    """A progress event.

    Attributes:
        kind: What happened.
        task_id: The task concerned, if any.
        step_index: The step's position in its task, if a step is concerned.
        step_count: The number of steps in the task, if a step is concerned.
        name: The step's or job's display name.
        detail: A short human-readable detail (timing, error).
    """

    kind: EventKind
    task_id: str = ""
    step_index: int = -1
    step_count: int = 0
    name: str = ""
    detail: str = ""


@dataclasses.dataclass
class RunContext:
    """The services a run uses.

    Attributes:
        models: Sends model requests (resolution, retries, limits, cost).
        functions: The functions function-call steps may call.
        max_concurrency: How many tasks of a job may run at once.
        on_event: Receives progress events; must not block.
    """

    models: ModelClient = dataclasses.field(default_factory=ModelClient)
    functions: FunctionRegistry = dataclasses.field(default_factory=default_registry)
    max_concurrency: int = 8
    on_event: Callable[[EngineEvent], None] | None = None

    def emit(self, event: EngineEvent) -> None:
        """Passes an event to the listener, if there is one."""
        if self.on_event is not None:
            self.on_event(event)

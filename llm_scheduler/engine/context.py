"""What a run needs besides its config: models, functions, limits and a progress listener."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from llm_scheduler.engine.budget import Budget
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.base import EmbeddingResponse, ModelResponse, Usage
from llm_scheduler.models.client import ModelClient
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["EngineEvent", "EventKind", "ResponseCache", "RunContext"]


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
    CACHE_HIT = "cache_hit"
    STEP_REUSED = "step_reused"


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
        run_id: The job run concerned, when there is one.
        usage: For step_finished: the step's token usage.
        cost_usd: For step_finished: the step's cost.
    """

    kind: EventKind
    task_id: str = ""
    step_index: int = -1
    step_count: int = 0
    name: str = ""
    detail: str = ""
    run_id: str = ""
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0


class ResponseCache(Protocol):
    """Where model responses and embeddings are kept by request (see `llm_scheduler.cache`)."""

    def lookup(self, key: str) -> ModelResponse | None:
        """The response stored for a request key, if any."""

    def store(self, key: str, response: ModelResponse) -> None:
        """Stores a response for a request key."""

    def lookup_embedding(self, key: str) -> EmbeddingResponse | None:
        """The embedding stored for a request key, if any."""

    def store_embedding(self, key: str, response: EmbeddingResponse) -> None:
        """Stores an embedding for a request key."""


@dataclasses.dataclass
class RunContext:
    """The services a run uses.

    Attributes:
        models: Sends model requests (resolution, retries, limits, cost).
        functions: The functions function-call steps may call.
        max_concurrency: How many tasks of a job may run at once.
        on_event: Receives progress events; must not block.
        cache: The response cache, if any.
        default_cache_policy: The policy of steps whose ``cache`` is DEFAULT.
        replay: A recorded run whose unchanged steps are reused instead of run.
        child_runs: Where sub-job steps put their child runs' records; each `run_job` gives
            its context a list of its own and moves them into its record's ``children``.
        child_runner: How sub-job steps run their child runs (`engine.sub_job.ChildRunner`:
            a `ChildRequest` and this context in, the child's record out); None: nested, in
            this process. Event-driven runs submit the child to the store instead.
        budget: The run's budget ledger (`engine.budget`), if it has a budget: model and
            embedding calls reserve their estimated cost there first, and are refused when
            it could take the run over.
    """

    models: ModelClient = dataclasses.field(default_factory=ModelClient)
    functions: FunctionRegistry = dataclasses.field(default_factory=default_registry)
    max_concurrency: int = 8
    on_event: Callable[[EngineEvent], None] | None = None
    cache: ResponseCache | None = None
    default_cache_policy: config_pb2.CachePolicy = config_pb2.CACHE_POLICY_OFF
    replay: ReplaySource | None = None
    child_runs: list[run_pb2.JobRun] = dataclasses.field(default_factory=list)
    child_runner: Callable[[Any, RunContext], Awaitable[run_pb2.JobRun]] | None = None
    budget: Budget | None = None

    def cache_policy(self, step: config_pb2.StepConfig) -> config_pb2.CachePolicy:
        """The effective cache policy of a step (OFF when there is no cache)."""
        if self.cache is None:
            return config_pb2.CACHE_POLICY_OFF
        if step.cache == config_pb2.CACHE_POLICY_DEFAULT:
            return self.default_cache_policy
        return step.cache

    def emit(self, event: EngineEvent) -> None:
        """Passes an event to the listener, if there is one."""
        if self.on_event is not None:
            self.on_event(event)

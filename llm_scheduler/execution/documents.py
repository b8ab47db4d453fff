"""The document model of event-driven runs: paths, statuses, and records as readable maps.

Layout (the same in SQLite and Firestore)::

    jobs/{job_id}                                   the job definition (JobConfig map)
    job_runs/{run_id}                               a JobRun without its tasks, plus counters
    job_runs/{run_id}/task_runs/{task_id}           a TaskRun without its steps, plus its lease
    job_runs/{run_id}/task_runs/{task_id}/step_runs/{i}
                                                    one completed StepRun (i zero-padded)

Records are stored in the proto JSON mapping with snake_case names, so they read naturally in the
Firestore console; control fields (lease, counters) sit beside them at the top level.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.execution import codec
from llm_scheduler.store.base import Doc
from llm_scheduler.v1 import config_pb2

__all__ = [
    "FINISHED",
    "RUNNABLE",
    "RunConfig",
    "Status",
    "iso",
    "job_definition_path",
    "job_run_path",
    "parse_task_run_path",
    "record_from_doc",
    "record_to_doc",
    "run_config_of",
    "step_run_path",
    "step_runs_collection",
    "task_run_path",
    "task_runs_collection",
]

M = TypeVar("M", bound=Message)


class Status:
    """Status values as stored (the `RunStatus` enum names)."""

    PENDING = "RUN_STATUS_PENDING"
    RUNNING = "RUN_STATUS_RUNNING"
    SUCCEEDED = "RUN_STATUS_SUCCEEDED"
    FAILED = "RUN_STATUS_FAILED"
    SKIPPED = "RUN_STATUS_SKIPPED"
    # A placeholder a resume left behind for a formerly skipped task: treated as absent.
    RESET = "RUN_STATUS_UNSPECIFIED"


RUNNABLE = (Status.PENDING, Status.RUNNING)
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED)


def job_definition_path(job_id: str) -> str:
    """The path of a job definition."""
    return f"jobs/{job_id}"


def job_run_path(run_id: str) -> str:
    """The path of a job run."""
    return f"job_runs/{run_id}"


def task_runs_collection(run_id: str) -> str:
    """The collection holding a job run's task runs."""
    return f"job_runs/{run_id}/task_runs"


def task_run_path(run_id: str, task_id: str) -> str:
    """The path of a task run; the task id is the document id (deterministic)."""
    return f"{task_runs_collection(run_id)}/{task_id}"


def step_runs_collection(run_id: str, task_id: str) -> str:
    """The collection holding a task run's completed steps."""
    return f"{task_run_path(run_id, task_id)}/step_runs"


def step_run_path(run_id: str, task_id: str, index: int) -> str:
    """The path of a completed step (zero-padded so ids sort in step order)."""
    return f"{step_runs_collection(run_id, task_id)}/{index:05d}"


def parse_task_run_path(path: str) -> tuple[str, str] | None:
    """``(run_id, task_id)`` of a task-run path (a trailing document prefix is ignored)."""
    parts = path.split("/")
    for start in range(len(parts) - 3):
        if (
            parts[start] == "job_runs"
            and parts[start + 2] == "task_runs"
            and len(parts) == start + 4
        ):
            return parts[start + 1], parts[start + 3]
    return None


def record_to_doc(record: Message) -> Doc:
    """A record or config as a readable map (proto JSON mapping, snake_case; see `codec`)."""
    return codec.message_to_doc(record)


def record_from_doc(doc: Doc, message_type: type[M]) -> M:
    """A record read back from a document; control fields beside it are ignored (see `codec`)."""
    return codec.doc_to_message(doc, message_type)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """A job run's config and what the protocol derives from it, shared for the whole run.

    Attributes:
        job: The job config (shared: never modify it).
        graph: Its task graph.
        tasks: Its tasks by id.
    """

    job: config_pb2.JobConfig
    graph: TaskGraph
    tasks: Mapping[str, config_pb2.TaskConfig]


_RUN_CONFIGS: collections.OrderedDict[str, RunConfig] = collections.OrderedDict()
_RUN_CONFIGS_LOCK = threading.Lock()


def run_config_of(run_id: str, job_doc: Doc) -> RunConfig:
    """The config of a job run with its graph, built once per run (a run's config never changes).

    Building the graph of a large job inside every completing transaction (which holds the
    write lock) was measurable, as was parsing the config on every claim.
    """
    with _RUN_CONFIGS_LOCK:
        cached = _RUN_CONFIGS.get(run_id)
        if cached is not None:
            _RUN_CONFIGS.move_to_end(run_id)
            return cached
    job = record_from_doc(job_doc["config"], config_pb2.JobConfig)
    config = RunConfig(
        job=job,
        graph=TaskGraph.from_job(job),
        tasks={task.task_id: task for task in job.tasks},
    )
    with _RUN_CONFIGS_LOCK:
        _RUN_CONFIGS[run_id] = config
        while len(_RUN_CONFIGS) > 64:
            _RUN_CONFIGS.popitem(last=False)
    return config


def iso(timestamp: float) -> str:
    """An RFC 3339 UTC timestamp, as the proto JSON mapping writes them."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_name(status: Any) -> str:
    """A stored status without its prefix, lower case (for messages)."""
    return str(status).removeprefix("RUN_STATUS_").lower()

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
import datetime
import threading
from typing import Any, TypeVar

from google.protobuf.message import Message

from llm_scheduler.execution import codec
from llm_scheduler.store.base import Doc
from llm_scheduler.v1 import config_pb2

__all__ = [
    "FINISHED",
    "RUNNABLE",
    "Status",
    "iso",
    "job_config_of",
    "job_definition_path",
    "job_run_path",
    "parse_task_run_path",
    "record_from_doc",
    "record_to_doc",
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


_JOB_CONFIGS: collections.OrderedDict[str, config_pb2.JobConfig] = collections.OrderedDict()
_JOB_CONFIGS_LOCK = threading.Lock()


def job_config_of(run_id: str, job_doc: Doc) -> config_pb2.JobConfig:
    """The job config of a job run, parsed once per run (a run's config never changes).

    Returns a shared message: callers must not modify it.
    """
    with _JOB_CONFIGS_LOCK:
        cached = _JOB_CONFIGS.get(run_id)
        if cached is not None:
            _JOB_CONFIGS.move_to_end(run_id)
            return cached
    config = record_from_doc(job_doc["config"], config_pb2.JobConfig)
    with _JOB_CONFIGS_LOCK:
        _JOB_CONFIGS[run_id] = config
        while len(_JOB_CONFIGS) > 64:
            _JOB_CONFIGS.popitem(last=False)
    return config


def iso(timestamp: float) -> str:
    """An RFC 3339 UTC timestamp, as the proto JSON mapping writes them."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def status_name(status: Any) -> str:
    """A stored status without its prefix, lower case (for messages)."""
    return str(status).removeprefix("RUN_STATUS_").lower()

"""The document model of event-driven runs: paths, statuses, and records as readable maps.

Layout (the same in SQLite and Firestore)::

    jobs/{job_id}                                   a saved job definition
    tasks/{task_id}                                 a saved task definition
    job_runs/{run_id}                               a JobRun without its tasks (small)
    job_runs/{run_id}/task_runs/{task_id}           a TaskRun without its steps, plus its lease:
                                                    the document whose writes trigger work, so
                                                    it stays small whatever the data
    job_runs/{run_id}/task_runs/{task_id}/step_runs/{i}
                                                    one completed StepRun (i zero-padded)
    job_runs/{run_id}/joins/{task_id}/arrived/{predecessor}
                                                    a predecessor of a join that has succeeded
    job_runs/{run_id}/budget/ledger                 a budgeted run's spending (budget_ledger)

Records are stored in the proto JSON mapping with snake_case names, so they read naturally in the
Firestore console; control fields (lease, attempts) sit beside them at the top level. A value
that may be large (a config, inputs, outputs, an error's step) is stored in the document only
when it is small (`INLINE_FIELD_BYTES`), and otherwise as a content-addressed blob
(`llm_scheduler.execution.blobs`), so no document, and no trigger event, grows with the data.

Every id that becomes a path segment is checked (`path_segment`): an id can never change a
path's shape.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import re
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf.message import Message

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.errors import UserError
from llm_scheduler.execution import codec
from llm_scheduler.store.base import Doc
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "FINISHED",
    "INLINE_FIELD_BYTES",
    "MAX_ERROR_MESSAGE_CHARS",
    "MAX_ID_BYTES",
    "RUNNABLE",
    "RunConfig",
    "Status",
    "arrival_path",
    "arrivals_collection",
    "cached_run_config",
    "iso",
    "job_definition_path",
    "job_run_path",
    "parse_task_run_path",
    "path_segment",
    "record_from_doc",
    "record_into",
    "record_to_doc",
    "run_config_from",
    "step_run_path",
    "step_runs_collection",
    "task_definition_path",
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
    # Stopped by `llm_scheduler.execution.cancel.cancel_run`; a resume runs it again.
    CANCELLED = "RUN_STATUS_CANCELLED"
    # A placeholder a resume left behind for a formerly skipped task: treated as absent.
    RESET = "RUN_STATUS_UNSPECIFIED"
    # A map task waiting for its items (`llm_scheduler.execution.map_runs`): not claimable.
    WAITING = "RUN_STATUS_WAITING"


# A task run that a worker may claim (or is running).
RUNNABLE = (Status.PENDING, Status.RUNNING)
# A task run that nothing runs again (until a resume requeues a failed or cancelled one).
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.SKIPPED, Status.CANCELLED)

# A field of a run document holding data (inputs, outputs, a config, a failed step) stays in
# the document up to this much JSON, and goes to a blob beyond. A task-run document then stays
# under ~70 KB, so the update event that carries its old and new versions stays far below
# Eventarc's 512 KB, whatever the prompts, inputs and outputs hold.
INLINE_FIELD_BYTES = 16 * 1024
# Error messages kept in run documents are cut to this many characters.
MAX_ERROR_MESSAGE_CHARS = 4000
# Firestore's document ids are at most 1,500 bytes; ours far less.
MAX_ID_BYTES = 256


# ``~`` separates a map task's id from its item's index (``T~000003``); validation keeps it out
# of task ids, so an item's id never collides with a task's.
_SAFE_ID = re.compile(rf"[A-Za-z0-9_.~\-]{{1,{MAX_ID_BYTES}}}")


def path_segment(kind: str, value: str) -> str:
    """``value`` checked as one segment of a document path: it can never change the path's shape.

    Config ids are checked with their field path by validation; this is the last line, for ids
    from command lines, events and documents.

    Raises:
        UserError: It is empty, holds a ``/`` or a control character, is ``.`` or ``..``, has
            Firestore's reserved ``__name__`` form, or is longer than `MAX_ID_BYTES`.
    """
    if _SAFE_ID.fullmatch(value) and value not in (".", "..") and not value.startswith("__"):
        return value
    problem = ""
    if not value:
        problem = "is empty"
    elif "/" in value:
        problem = "contains '/'"
    elif value in (".", ".."):
        problem = "is '.' or '..'"
    elif len(value) > 4 and value.startswith("__") and value.endswith("__"):
        problem = "has the form __name__, which Firestore reserves"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a control character"
    elif len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        problem = f"is longer than {MAX_ID_BYTES} bytes"
    if problem:
        raise UserError(
            f"invalid {kind} {value[:80]!r}: it {problem} (ids become store paths: use "
            "letters, digits, '_', '-' and '.')"
        )
    return value


def job_definition_path(job_id: str) -> str:
    """The path of a job definition."""
    return f"jobs/{path_segment('job id', job_id)}"


def task_definition_path(task_id: str) -> str:
    """The path of a task config saved by submitting it (a ``next_task`` may name it later)."""
    return f"tasks/{path_segment('task id', task_id)}"


def job_run_path(run_id: str) -> str:
    """The path of a job run."""
    return f"job_runs/{path_segment('run id', run_id)}"


def task_runs_collection(run_id: str) -> str:
    """The collection holding a job run's task runs."""
    return f"{job_run_path(run_id)}/task_runs"


def task_run_path(run_id: str, task_id: str) -> str:
    """The path of a task run; the task id is the document id (deterministic)."""
    return f"{task_runs_collection(run_id)}/{path_segment('task id', task_id)}"


def step_runs_collection(run_id: str, task_id: str) -> str:
    """The collection holding a task run's completed steps."""
    return f"{task_run_path(run_id, task_id)}/step_runs"


def arrivals_collection(run_id: str, join_id: str) -> str:
    """The collection recording which predecessors of a join task have succeeded."""
    return f"{job_run_path(run_id)}/joins/{path_segment('task id', join_id)}/arrived"


def arrival_path(run_id: str, join_id: str, predecessor: str) -> str:
    """The arrival of one predecessor at a join (each predecessor writes only its own)."""
    return f"{arrivals_collection(run_id, join_id)}/{path_segment('task id', predecessor)}"


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


def record_into(message: Message, doc: Doc) -> None:
    """`record_from_doc` into an empty message in place (one inside another, not copied)."""
    codec.fill_message(message, doc)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What never changes in a job run, and what the protocol derives from it, shared per run.

    Attributes:
        run_id: The run.
        job: The job config (shared: never modify it).
        graph: Its task graph.
        tasks: Its tasks by id.
        start: The task the run starts from.
        reachable: The tasks reachable from ``start`` (the ones the run can run).
        inputs: The job's input variables.
        needed: For each task the run can reach, the predecessors it waits for (those the run
            can reach too).
        offline: Whether every model step answers with the offline model (the submitter's
            ``--offline``, honoured by every worker).
        default_cache_policy: The `CachePolicy` name for steps whose ``cache`` is DEFAULT.
        replay: For a replay, the recorded (possibly edited) run whose unchanged steps are
            reused; shared by the run's tasks in this process, as in a run in process.
        budget_run_id: The run whose budget ledger its calls spend from (itself, or a sub-job
            caller's); "" for a run without a budget (`execution.budget_ledger`).
        traceparent: The W3C trace context the run's spans join (`llm_scheduler.telemetry`),
            stored at submit; empty for a trace derived from the run id.
    """

    run_id: str
    job: config_pb2.JobConfig
    graph: TaskGraph
    tasks: Mapping[str, config_pb2.TaskConfig]
    start: str
    reachable: frozenset[str]
    inputs: Mapping[str, Any]
    needed: Mapping[str, tuple[str, ...]]
    offline: bool = False
    default_cache_policy: str = ""
    replay: ReplaySource | None = None
    budget_run_id: str = ""
    traceparent: str = ""


_RUN_CONFIGS: collections.OrderedDict[str, RunConfig] = collections.OrderedDict()
_RUN_CONFIGS_LOCK = threading.Lock()


def cached_run_config(run_id: str) -> RunConfig | None:
    """The config of a run built before in this process, if it is still cached."""
    with _RUN_CONFIGS_LOCK:
        cached = _RUN_CONFIGS.get(run_id)
        if cached is not None:
            _RUN_CONFIGS.move_to_end(run_id)
        return cached


def run_config_from(run_id: str, job_doc: Doc) -> RunConfig:
    """The config of a job run from its document (blobs read back), built once per run.

    A run's config and inputs never change, so the result is cached by run id: parsing the
    config and building the graph of a large job on every claim was measurable.
    """
    cached = cached_run_config(run_id)
    if cached is not None:
        return cached
    job = record_from_doc(job_doc.get("config") or {}, config_pb2.JobConfig)
    graph = TaskGraph.from_job(job)
    start = str(job_doc.get("start_task") or job.start_task or graph.roots[0])
    reachable = frozenset(graph.reachable_from(start))
    config = RunConfig(
        run_id=run_id,
        job=job,
        graph=graph,
        tasks={task.task_id: task for task in job.tasks},
        start=start,
        reachable=reachable,
        inputs=dict(job_doc.get("inputs") or {}),
        needed={
            task_id: tuple(p for p in graph.predecessors[task_id] if p in reachable)
            for task_id in reachable
        },
        offline=bool(job_doc.get("offline")),
        default_cache_policy=str(job_doc.get("default_cache_policy") or ""),
        replay=_replay_source(job_doc),
        budget_run_id=str(job_doc.get("budget_run_id") or ""),
        traceparent=str(job_doc.get("traceparent") or ""),
    )
    with _RUN_CONFIGS_LOCK:
        _RUN_CONFIGS[run_id] = config
        while len(_RUN_CONFIGS) > 64:
            _RUN_CONFIGS.popitem(last=False)
    return config


def _replay_source(job_doc: Doc) -> ReplaySource | None:
    recorded = job_doc.get("replay_source")
    if not recorded:
        return None
    return ReplaySource(record_from_doc(recorded, run_pb2.JobRun))


def iso(timestamp: float) -> str:
    """An RFC 3339 UTC timestamp, as the proto JSON mapping writes them."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    # Not strftime: glibc's looks at the time zone file on every call (~10 µs here, a few per
    # task run). The same text: six fraction digits, "Z" for "+00:00".
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


def status_name(status: Any) -> str:
    """A stored status without its prefix, lower case (for messages)."""
    return str(status).removeprefix("RUN_STATUS_").lower()

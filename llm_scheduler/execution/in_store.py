"""What event-driven runs (a store and its dispatchers) cannot run yet, refused up front.

Maps (`TaskConfig.for_each`) run in process only until the store protocol of
docs/design/graphs_that_grow.md is built: every way into a store (`submit_job`, run requests,
the web UI, ``job_submitter``, ``job_runner --store``) refuses a job with a map, so nothing
half-works in a store.
"""

from __future__ import annotations

from llm_scheduler.config.maps import is_map
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

__all__ = ["check_runs_in_store", "store_problems"]

MAPS_IN_PROCESS_HINT = (
    "maps run in process for now: run the job with job_runner without --store (event-driven "
    "maps, in a store and in the cloud, are not built yet)"
)


def store_problems(job: config_pb2.JobConfig, file: str = "") -> list[ConfigProblem]:
    """What keeps a (valid) job from running in a store, each at its field path."""
    return [
        ConfigProblem(
            f"tasks[{index}].for_each",
            f"task {task.task_id!r} is a map, which an event-driven run cannot run yet",
            MAPS_IN_PROCESS_HINT,
            file,
        )
        for index, task in enumerate(job.tasks)
        if is_map(task)
    ]


def check_runs_in_store(job: config_pb2.JobConfig, file: str = "") -> None:
    """Refuses a job that an event-driven run cannot run yet.

    Raises:
        ConfigError: A `UserError` listing the job's maps (run them with ``job_runner``
            without ``--store``).
    """
    problems = store_problems(job, file)
    if problems:
        raise ConfigError(problems)

"""What event-driven runs (a store and its dispatchers) cannot run yet, refused up front.

Sub-job steps (step type 3) run in process only until the store protocol of
docs/design/graphs_that_grow.md ("A sub-job step that waits in the store") is built: every way
into a store (`submit_job`, so ``job_runner --store`` and stored replays; run requests; the web
UI; ``job_submitter``) refuses a job with a sub-job step, so nothing half-works in a store.
"""

from __future__ import annotations

from llm_scheduler.config.sub_jobs import sub_job_steps
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

__all__ = ["SUB_JOBS_IN_PROCESS_HINT", "check_runs_in_store", "store_problems"]

SUB_JOBS_IN_PROCESS_HINT = (
    "sub-job steps run in process for now: run the job with job_runner without --store "
    "(event-driven sub-jobs, in a store and in the cloud, are not built yet)"
)


def store_problems(job: config_pb2.JobConfig, file: str = "") -> list[ConfigProblem]:
    """What keeps a (valid) job from running in a store, each at its field path."""
    return [
        ConfigProblem(
            f"{path}.sub_job_config",
            "a sub-job step, which an event-driven run cannot run yet",
            SUB_JOBS_IN_PROCESS_HINT,
            file,
        )
        for path, _ in sub_job_steps(job)
    ]


def check_runs_in_store(job: config_pb2.JobConfig, file: str = "") -> None:
    """Refuses a job that an event-driven run cannot run yet.

    Raises:
        ConfigError: A `UserError` listing the job's sub-job steps (run them with
            ``job_runner`` without ``--store``).
    """
    problems = store_problems(job, file)
    if problems:
        raise ConfigError(problems)

"""Sub-job steps (step type 3) in configs: their child jobs, read from files and inlined.

A sub-job step names its child job by a file path relative to the config file that holds the
step (``sub_job_config.job_path``) or inline (``sub_job_config.job``). Loading a config from a
file (`formats.load`) reads every child file, recursively, and inlines it into ``job``, so a run
(and its record) is self-contained; the path stays for display. A job that includes itself,
directly or through other files, is a config error naming the cycle of files.
"""

from __future__ import annotations

import copy
import pathlib
from collections.abc import Iterator
from typing import TypeVar

from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

__all__ = ["as_written", "inline_sub_jobs", "is_sub_job", "sub_job_steps"]

C = TypeVar("C", bound=config_pb2.JobConfig | config_pb2.TaskConfig)


def is_sub_job(step: config_pb2.StepConfig) -> bool:
    """Whether a step is a sub-job step."""
    return step.step_type == config_pb2.STEP_TYPE_SUB_JOB


def sub_job_steps(
    config: config_pb2.JobConfig | config_pb2.TaskConfig,
) -> Iterator[tuple[str, config_pb2.StepConfig]]:
    """Each sub-job step of a job or task (not of its children), with its field path."""
    tasks = (
        [("", config)]
        if isinstance(config, config_pb2.TaskConfig)
        else [(f"tasks[{index}].", task) for index, task in enumerate(config.tasks)]
    )
    for prefix, task in tasks:
        for index, step in enumerate(task.steps):
            if is_sub_job(step):
                yield f"{prefix}steps[{index}]", step


def inline_sub_jobs(
    config: config_pb2.JobConfig | config_pb2.TaskConfig, file: str | pathlib.Path
) -> None:
    """Reads the child job of every sub-job step with a ``job_path`` into its ``job``, in place.

    Children are read recursively; each path is relative to the file that names it.

    Args:
        config: A job or task config loaded from ``file``.
        file: The config's file.

    Raises:
        ConfigError: A child file is missing or not a valid job config, a step sets both
            ``job_path`` and ``job``, or the files form a cycle (named). Each problem names the
            file holding the step and the step's field path in it.
    """
    problems: list[ConfigProblem] = []
    _inline(config, pathlib.Path(file), [pathlib.Path(file).resolve()], problems)
    if problems:
        raise ConfigError(problems)


def as_written(config: C) -> C:
    """A copy of a loaded config without the child jobs `inline_sub_jobs` read into it.

    What tools that print or convert a config write (`config_reader`, `proto_decoder`): a step
    with a ``job_path`` keeps only its path, so the written config loads again (a step with
    both is a config error) and still follows edits to the child's file.
    """
    written = copy.deepcopy(config)
    for _, step in sub_job_steps(written):
        if step.sub_job_config.job_path:
            step.sub_job_config.ClearField("job")
    return written


def _inline(
    config: config_pb2.JobConfig | config_pb2.TaskConfig,
    file: pathlib.Path,
    chain: list[pathlib.Path],
    problems: list[ConfigProblem],
) -> None:
    from llm_scheduler.config import formats  # formats.load calls this module

    for path, step in sub_job_steps(config):
        sub = step.sub_job_config
        field = f"{path}.sub_job_config"
        if not sub.job_path:
            continue
        if sub.HasField("job"):
            problems.append(
                ConfigProblem(
                    field,
                    "both job_path and job are set",
                    "keep one: the child job's file (job_path) or the job inline (job)",
                    str(file),
                )
            )
            continue
        child_file = file.parent / sub.job_path
        resolved = child_file.resolve()
        if resolved in chain:
            cycle = [*chain[chain.index(resolved) :], resolved]
            problems.append(
                ConfigProblem(
                    f"{field}.job_path",
                    f"the sub-jobs form a cycle: {' -> '.join(str(p) for p in cycle)}",
                    "a job cannot include itself, directly or through other jobs; remove one "
                    "of these sub-job steps",
                    str(file),
                )
            )
            continue
        try:
            data = formats.read_bytes(child_file)
            child = formats.loads(
                data,
                config_pb2.JobConfig,
                formats.format_for_path(child_file, data),
                file=str(child_file),
            )
        except ConfigError as error:
            first = error.problems[0]
            where = f"{first.path}: " if first.path else ""
            problems.append(
                ConfigProblem(
                    f"{field}.job_path",
                    f"cannot load the sub-job {str(child_file)!r}: {where}{first.message}",
                    first.hint or "check the path (it is relative to this config file)",
                    str(file),
                )
            )
            problems.extend(error.problems[1:])
            continue
        before = len(problems)
        _inline(child, child_file, [*chain, resolved], problems)
        if len(problems) == before:
            sub.job.CopyFrom(child)

"""Any config as a job: a step is a one-task job, tasks are a job of their ``next_task`` chain.

The original executor meant task configs to be committed and run on their own ("Task executions
will be triggered based on commits of task configurations to a database"); event-driven runs
execute jobs, so what is submitted is first made into one here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from llm_scheduler.config.graph import successors_of
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.v1 import config_pb2

__all__ = ["SubmittedConfig", "job_of"]

SubmittedConfig = config_pb2.StepConfig | config_pb2.TaskConfig | config_pb2.JobConfig


def job_of(
    configs: Sequence[tuple[str, SubmittedConfig]],
    find_task: Callable[[str], config_pb2.TaskConfig | None] = lambda _: None,
) -> config_pb2.JobConfig:
    """The job that runs ``configs`` (each with the file it came from).

    - One job config is returned as it is.
    - A step config becomes a job of one task (``task_id`` and ``job_id`` from the step's id).
    - Task configs become one job starting at the first. Tasks name their successors with
      ``next_task``/``next_tasks``; a name not among the given tasks is looked up with
      ``find_task`` (e.g. tasks saved in a store), recursively. When no given task names a
      successor, the tasks run in the order given, each receiving the outputs of the one
      before it (as ``task_runner`` runs several files).

    Raises:
        ConfigError: A job mixed with other configs, or a successor found nowhere (each
            problem names the file and the field).
    """
    jobs = [config for _, config in configs if isinstance(config, config_pb2.JobConfig)]
    if jobs:
        if len(configs) > 1:
            raise ConfigError(
                [
                    ConfigProblem(
                        "",
                        "a job config cannot be submitted together with other configs",
                        "submit it alone (a job already names all its tasks)",
                        file=configs[0][0],
                    )
                ]
            )
        return jobs[0]
    tasks: list[tuple[str, config_pb2.TaskConfig]] = []
    for path, config in configs:
        task = config_pb2.TaskConfig()
        if isinstance(config, config_pb2.StepConfig):
            task.task_id = _id_of(config)
            task.name = config.name
            task.steps.append(config)
        elif isinstance(config, config_pb2.TaskConfig):
            task.CopyFrom(config)  # the given configs are not changed
        tasks.append((path, task))
    job = config_pb2.JobConfig(job_id=tasks[0][1].task_id or "task")
    if not any(successors_of(task) for _, task in tasks):
        for (_, task), (_, after) in itertools.pairwise(tasks):
            task.next_task = after.task_id
    job.start_task = tasks[0][1].task_id
    known = {task.task_id for _, task in tasks}
    problems: list[ConfigProblem] = []
    queue = list(tasks)
    while queue:
        path, task = queue.pop(0)
        job.tasks.append(task)
        for field, name in _links(task):
            if name in known:
                continue
            found = find_task(name)
            if found is None:
                problems.append(
                    ConfigProblem(
                        field,
                        f"no task {name!r} in the given files or saved in the store",
                        "pass its file too (--input_path=a.json,b.json), or submit it first "
                        "so that it is saved",
                        file=path,
                    )
                )
                continue
            known.add(name)
            queue.append((f"{path} -> saved task {name!r}", found))
    if problems:
        raise ConfigError(problems)
    return job


def _id_of(step: config_pb2.StepConfig) -> str:
    return f"step-{step.id}" if step.id else "step"


def _links(task: config_pb2.TaskConfig) -> list[tuple[str, str]]:
    links = [("next_task", task.next_task)] if task.next_task else []
    links += [(f"next_tasks[{i}]", name) for i, name in enumerate(task.next_tasks)]
    return links

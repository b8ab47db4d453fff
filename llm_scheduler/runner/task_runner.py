"""Runs one task config, or several in a row, and prints the outputs.

Usage: task_runner --input_path=task.json[,task2.json ...] [--var name=value ...] [--offline]

With several files, each task receives the outputs of the one before it.
"""

from __future__ import annotations

import sys

from llm_scheduler.config import dataflow, formats
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.validation import Validator, tasks_model_keys
from llm_scheduler.engine import records
from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.items import has_items
from llm_scheduler.engine.job import new_run_id
from llm_scheduler.engine.map import run_map
from llm_scheduler.engine.task import run_task
from llm_scheduler.engine.values import task_variables
from llm_scheduler.errors import ConfigError
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.telemetry import RunTelemetry, with_telemetry
from llm_scheduler.telemetry import hooks as telemetry_hooks
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["main", "run", "run_tasks"]


async def run_tasks(
    tasks: list[config_pb2.TaskConfig], variables: dict[str, object], context: RunContext
) -> list[run_pb2.TaskRun]:
    """Runs tasks in order, each receiving the previous one's outputs; stops at a failure."""
    runs: list[run_pb2.TaskRun] = []
    upstream: list[tuple[str, dict[str, object]]] = []
    for task in tasks:
        # A map or strategy task runs once per item, as in a job.
        run_one = run_map if has_items(task) else run_task
        task_run = await run_one(
            task,
            task_variables(variables, task, upstream),
            context,
            predecessors=[name for name, _ in upstream],
        )
        runs.append(task_run)
        if task_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
            break
        upstream = [(task.task_id, struct_to_dict(task_run.outputs))]
    return runs


def _run_tasks() -> int:
    paths = common.require_input_paths()
    tasks = [formats.load(path, config_pb2.TaskConfig) for path in paths]
    registry = common.models_registry()
    context = common.build_context(
        registry, progress=ProgressPrinter(quiet=flags.QUIET.value), response_cache=True
    )
    variables = common.parse_vars(flags.VARS.value)
    validator = Validator(registry, context.functions)
    problems = []
    upstream: set[str] = set()
    for path, task in zip(paths, tasks, strict=True):
        validator.file = path
        try:
            validator.check_tasks([task], set(variables) | upstream)
        except ConfigError as error:
            problems += error.problems
        upstream = set(dataflow.task_output_names(task))
    if problems:
        raise ConfigError(problems)
    context.models.check_credentials(tasks_model_keys(tasks))
    runs = common.run_async(context, run_tasks(tasks, variables, context))
    if telemetry_hooks.active is not None:
        _report(telemetry_hooks.active, runs)
    last = runs[-1]
    usage = run_pb2.TokenUsage()
    cost = 0.0
    for task_run in runs:
        records.add_usage(usage, task_run.usage)
        cost += task_run.cost_usd
    common.report(common.describe_usage(usage, cost) + common.describe_cache_hits(runs))
    if last.status != run_pb2.RUN_STATUS_SUCCEEDED:
        print(f"task {last.task_id!r} failed: {last.error.message}", file=sys.stderr)
    if flags.PRINT_RECORD.value:
        common.print_json([common.message_dict(task_run) for task_run in runs])
    else:
        common.print_json(struct_to_dict(last.outputs))
    return common.status_exit_code(last.status)


# Exports runs when the OTEL_* environment asks for it (docs/observability.md).
def _report(telemetry: RunTelemetry, runs: list[run_pb2.TaskRun]) -> None:
    """Exports the tasks as one run of a job named ``task_runner`` (one trace)."""
    run_id = new_run_id("task_runner")
    traceparent = telemetry.run_started(run_id)
    job = run_pb2.JobRun(run_id=run_id, job_id="task_runner", status=runs[-1].status)
    job.started_at.CopyFrom(runs[0].started_at)
    job.finished_at.CopyFrom(runs[-1].finished_at)
    for task_run in runs:
        telemetry.task_finished(run_id, traceparent, task_run, with_steps=True)
        records.add_usage(job.usage, task_run.usage)
        job.cost_usd += task_run.cost_usd
    telemetry.job_finished(job, traceparent)


main = common.main_for(with_telemetry(_run_tasks))


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

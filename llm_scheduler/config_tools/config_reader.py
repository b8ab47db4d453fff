"""Validates a config and prints it; for jobs it also draws the task graph.

Usage: config_reader --input_path=job.json [--config_type=step|task|job|models|...]

The config goes to stdout (JSON by default, or --output_format=textproto); the verdict and the
graph go to stderr, so stdout can be piped into another tool.
"""

from __future__ import annotations

import sys
from typing import cast

from llm_scheduler.config import formats
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.kinds import message_type
from llm_scheduler.config.validation import Validator
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.registry import load_models_file
from llm_scheduler.runner import common, flags
from llm_scheduler.v1 import config_pb2

__all__ = ["describe", "main", "run"]


def main(argv: list[str]) -> int:
    """Entry point after flag parsing."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}; use --flags", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    return common.run_cli(_read)


def describe(config_type: str, message: object) -> str:
    """A one-paragraph description of a valid config (and the graph for jobs)."""
    if config_type == "job":
        job = cast(config_pb2.JobConfig, message)
        graph = TaskGraph.from_job(job)
        steps = sum(len(task.steps) for task in job.tasks)
        counts = {task.task_id: len(task.steps) for task in job.tasks}
        return (
            f"valid job {job.job_id!r}: {len(job.tasks)} tasks, {steps} steps\n"
            f"{graph.render_text(counts)}"
        )
    if config_type == "task":
        task = cast(config_pb2.TaskConfig, message)
        return f"valid task {task.task_id!r}: {len(task.steps)} steps"
    return f"valid {config_type}"


def _read() -> int:
    path = common.require_input_path()
    config_type = flags.CONFIG_TYPE.value or common.guess_config_type(path)
    message = formats.load(path, message_type(config_type))
    registry = common.models_registry()
    functions = default_registry()
    functions.load_modules(flags.FUNCTION_MODULES.value)
    validator = Validator(registry, functions, file=path)
    if isinstance(message, config_pb2.StepConfig):
        validator.check_step(message)
    elif isinstance(message, config_pb2.TaskConfig):
        validator.check_tasks([message])
    elif isinstance(message, config_pb2.JobConfig):
        validator.check_job(message)
    elif isinstance(message, config_pb2.ModelsConfig):
        load_models_file(path)
    fmt = formats.ConfigFormat(flags.OUTPUT_FORMAT.value)
    if fmt is formats.ConfigFormat.BINARY:
        print("error: config_reader prints text; use proto_decoder for binary", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    sys.stdout.write(formats.dumps(message, fmt).decode("utf-8"))
    sys.stdout.flush()
    print(describe(config_type, message), file=sys.stderr)
    return common.EXIT_OK


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

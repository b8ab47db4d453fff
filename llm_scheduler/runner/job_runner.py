"""Runs a job config in process and prints the outputs of its final tasks.

Usage: job_runner --input_path=job.json [--trace_out=trace.json] [--var name=value ...] [--offline]
"""

from __future__ import annotations

import pathlib
import sys

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, model_keys_of
from llm_scheduler.engine.job import run_job
from llm_scheduler.errors import UserError
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["main", "run"]

TRACE_OUT = absl_flags.DEFINE_string(
    "trace_out", None, "Write the run's trace (the JobRun record) to this JSON file."
)


def main(argv: list[str]) -> int:
    """Entry point after flag parsing."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}; use --flags", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    return common.run_cli(_run_job)


def _run_job() -> int:
    path = common.require_input_path()
    job = formats.load(path, config_pb2.JobConfig)
    registry = common.models_registry()
    context = common.build_context(registry, progress=ProgressPrinter(quiet=flags.QUIET.value))
    variables = common.parse_vars(flags.VARS.value)
    Validator(registry, context.functions, file=path).check_job(job, variables)
    context.models.check_credentials(model_keys_of(s for t in job.tasks for s in t.steps))
    job_run = common.run_async(context, run_job(job, context, inputs=variables))
    if TRACE_OUT.value:
        _write_trace(job_run, TRACE_OUT.value)
    print(
        f"run {job_run.run_id}: {common.describe_usage(job_run.usage, job_run.cost_usd)}",
        file=sys.stderr,
    )
    if job_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
        print(f"job failed: {job_run.error.message}", file=sys.stderr)
    common.print_json(job_run if flags.PRINT_RECORD.value else common.outputs_of(job_run))
    return common.status_exit_code(job_run.status)


def _write_trace(job_run: run_pb2.JobRun, path: str) -> None:
    try:
        pathlib.Path(path).write_bytes(formats.dumps(job_run, formats.ConfigFormat.JSON))
    except OSError as error:
        raise UserError(f"--trace_out {path}: cannot write: {error.strerror or error}") from None
    print(f"trace written to {path}", file=sys.stderr)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

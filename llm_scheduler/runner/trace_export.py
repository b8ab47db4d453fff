"""Exports a run from a store as a trace file, to read, edit or replay (see docs/traces.md).

Usage: trace_export --run_id=ID --output=trace.json [--store=URL]
"""

from __future__ import annotations

from absl import flags as absl_flags

from llm_scheduler.errors import UserError
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.runner import common, flags
from llm_scheduler.trace import write_trace

__all__ = ["main", "run"]

OUTPUT = absl_flags.DEFINE_string("output", None, "The trace file to write (JSON).")


def _export() -> int:
    run_id = flags.RUN_ID.value
    if not run_id:
        raise UserError("--run_id is required: the job run to export")
    if not OUTPUT.value:
        raise UserError("--output is required: the trace file to write")
    with common.open_store_from_flags() as store:
        job_run = read_job_run(store, run_id)
        url = store.url
    if job_run is None:
        raise UserError(f"no job run {run_id!r} in {url}")
    try:
        write_trace(OUTPUT.value, job_run)
    except OSError as error:
        raise UserError(
            f"--output {OUTPUT.value}: cannot write: {error.strerror or error}"
        ) from None
    steps = sum(len(task.steps) for task in job_run.tasks)
    common.report(
        f"trace of run {run_id} ({len(job_run.tasks)} tasks, {steps} steps) written to "
        f"{OUTPUT.value}"
    )
    return common.EXIT_OK


main = common.main_for(_export)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

"""Runs a job config and prints the outputs of its final tasks.

Usage:
    job_runner --input_path=job.json [--trace_out=trace.json] [--var name=value ...] [--offline]
    job_runner --input_path=job.json --budget_usd=0.50    # refuse calls past $0.50 (docs/costs.md)
    job_runner --replay=trace.json [--input_path=edited_job.json]    # reuse unchanged steps
    job_runner --replay_run_id=ID --store=URL                         # replay a stored run
    job_runner --replay_run_id=ID --store=URL --edits=edits.json --plan  # what would re-run
    job_runner --input_path=job.json --store=URL     # through the store: crash-safe, resumable
    job_runner --resume=ID --store=URL               # continue a failed or interrupted run
    job_runner --cancel=ID --store=URL               # stop a run (resume it later)
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.validation import Validator, tasks_model_keys
from llm_scheduler.engine.job import run_job
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.replay_plan import ReplayPlan, plan_replay
from llm_scheduler.engine.what_if import Edit, apply_edits, edits_from_json
from llm_scheduler.errors import UserError
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.local_run import resume_in_store, run_in_store
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.runner import common, flags
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.telemetry import with_telemetry
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["main", "run"]

TRACE_OUT = absl_flags.DEFINE_string(
    "trace_out",
    None,
    "Write the run's trace (see docs/traces.md) to this JSON file, to read, edit and --replay.",
)
REPLAY = absl_flags.DEFINE_string(
    "replay",
    None,
    "Replay an exported trace: steps whose fingerprint is unchanged reuse the recorded response; "
    "edits in the trace (responses, outputs, inputs, config) re-run what they change. "
    "--input_path, when given, replaces the trace's config.",
)
REPLAY_RUN_ID = absl_flags.DEFINE_string(
    "replay_run_id", None, "Replay a run read from --store, like --replay does a trace file."
)
EDITS = absl_flags.DEFINE_string(
    "edits",
    None,
    "With --replay or --replay_run_id: a JSON file holding a list of what-if edits to apply to "
    "the recorded run first (see docs/traces.md, 'What-if edits').",
)
PLAN = absl_flags.DEFINE_bool(
    "plan",
    False,
    "With --replay or --replay_run_id: print which steps the replay would reuse and which it "
    "would run again, with their estimated cost, and stop without calling anything.",
)
RESUME = absl_flags.DEFINE_string(
    "resume",
    None,
    "Continue the failed or interrupted run with this id in --store after its last completed step.",
)
CANCEL = absl_flags.DEFINE_string(
    "cancel",
    None,
    "Cancel the run with this id in --store: no task of it starts again, running tasks stop "
    "after their step in flight (within a third of the lease), and --resume continues it.",
)


def _cancel() -> int:
    if RESUME.value:
        raise UserError("--cancel and --resume name one run each: give only one of them")
    run_id = CANCEL.value or ""
    with common.open_store_from_flags() as store:
        stopped = cancel_run(store, run_id)
        url = store.url
    common.print_json({"run_id": run_id, "status": "CANCELLED", "stopped": stopped})
    common.report(
        f"run {run_id} in {url} cancelled: stopped {', '.join(stopped) or 'nothing'}"
        f" (continue it with --resume={run_id})"
    )
    return common.EXIT_OK


def _run_job() -> int:
    if CANCEL.value is not None:
        return _cancel()
    budget_usd = common.budget_from_flags()
    registry = common.models_registry()
    context = common.build_context(
        registry, progress=ProgressPrinter(quiet=flags.QUIET.value), response_cache=True
    )
    variables = common.parse_vars(flags.VARS.value)
    if RESUME.value:
        store = common.open_store_from_flags()
        with store:
            job_run = common.run_async(
                context, resume_in_store(store, RESUME.value, context, budget_usd=budget_usd)
            )
        return _report(job_run)
    source: run_pb2.JobRun | None = None
    if REPLAY.value or REPLAY_RUN_ID.value:
        source = _replay_source()
        if EDITS.value:
            source = apply_edits(source, _read_edits(EDITS.value))
        variables = {**struct_to_dict(source.inputs), **variables}
        context.replay = ReplaySource(source)
    elif EDITS.value or PLAN.value:
        raise UserError("--edits and --plan go with --replay or --replay_run_id")
    path = flags.INPUT_PATH.value or ""
    if path:
        job = formats.load(common.check_input_file(path), config_pb2.JobConfig)
    elif source is not None:
        job, path = source.config, REPLAY.value or f"run {REPLAY_RUN_ID.value}"
    else:
        path = common.require_input_path()
        job = config_pb2.JobConfig()
    Validator(registry, context.functions, file=path).check_job(job, variables)
    if source is not None and PLAN.value:
        return _print_plan(plan_replay(job, source, context, inputs=variables))
    context.models.check_credentials(tasks_model_keys(job.tasks))
    if flags.STORE.value:
        if source is not None:
            context.replay = None  # the run's workers take it from the stored run
            source.config.CopyFrom(job)
        with common.open_store_from_flags() as store:
            job_run = common.run_async(
                context,
                run_in_store(
                    store,
                    job,
                    context,
                    inputs=variables,
                    replay_source=source,
                    budget_usd=budget_usd,
                ),
            )
    else:
        job_run = common.run_async(
            context, run_job(job, context, inputs=variables, budget_usd=budget_usd)
        )
    if source is not None:
        job_run.parent_run_id = source.run_id
        # A map's steps are its items'.
        task_runs = [r for t in job_run.tasks for r in (t, *t.items)]
        reused = sum(bool(s.reused_from_run_id) for t in task_runs for s in t.steps)
        total = sum(len(t.steps) for t in task_runs)
        common.report(
            f"replay of {source.run_id}: {reused} of {total} steps reused, {total - reused} run"
        )
    return _report(job_run)


def _replay_source() -> run_pb2.JobRun:
    if REPLAY.value:
        from llm_scheduler.trace import read_trace

        return read_trace(common.check_input_file(REPLAY.value, "--replay"))
    with common.open_store_from_flags() as store:
        found = read_job_run(store, REPLAY_RUN_ID.value or "")
        url = store.url
    if found is None:
        raise UserError(f"--replay_run_id: no job run {REPLAY_RUN_ID.value!r} in {url}")
    return found


def _read_edits(path: str) -> list[Edit]:
    text = formats.decode_text(formats.read_bytes(common.check_input_file(path, "--edits")), path)
    try:
        return edits_from_json(json.loads(text))
    except json.JSONDecodeError as error:
        raise UserError(f"--edits {path}: not JSON: {error}") from None
    except UserError as error:
        raise UserError(f"--edits {path}: {error}") from None


def _print_plan(plan: ReplayPlan) -> int:
    for step in plan.steps:
        cost = "" if step.action == "reuse" else _estimate(step.estimated_cost_usd)
        print(
            f"{step.action:5}  {step.task_id} #{step.step_index} {step.name}: {step.reason}{cost}",
            file=sys.stderr,
        )
    common.report(f"replay plan of {plan.source_run_id}: {plan.summary()}")
    common.print_json(plan.to_json())
    return 0


def _estimate(cost: float | None) -> str:
    return " (no recorded cost)" if cost is None else f" (~${cost:.6f})"


def _report(job_run: run_pb2.JobRun) -> int:
    if TRACE_OUT.value:
        _write_trace(job_run, TRACE_OUT.value)
    budget = f" (budget ${job_run.budget_usd:g})" if job_run.budget_usd else ""
    common.report(
        f"run {job_run.run_id}: {common.describe_usage(job_run.usage, job_run.cost_usd)}"
        f"{budget}{common.describe_cache_hits(job_run.tasks)}"
    )
    if job_run.status == run_pb2.RUN_STATUS_CANCELLED:
        print(f"job cancelled: {job_run.error.message}", file=sys.stderr)
    elif job_run.status != run_pb2.RUN_STATUS_SUCCEEDED:
        print(f"job failed: {job_run.error.message}", file=sys.stderr)
    common.print_json(job_run if flags.PRINT_RECORD.value else common.outputs_of(job_run))
    return common.status_exit_code(job_run.status)


def _write_trace(job_run: run_pb2.JobRun, path: str) -> None:
    from llm_scheduler.trace import write_trace

    try:
        write_trace(pathlib.Path(path), job_run)
    except OSError as error:
        raise UserError(f"--trace_out {path}: cannot write: {error.strerror or error}") from None
    common.report(f"trace written to {path}")


# Exports runs when the OTEL_* environment asks for it (docs/observability.md).
main = common.main_for(with_telemetry(_run_job))


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

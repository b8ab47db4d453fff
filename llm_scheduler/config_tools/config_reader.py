"""Validates a config and prints it (for jobs it also draws the task graph), or reads runs.

Usage:
    config_reader --input_path=job.json [--config_type=step|task|job|models|...]
    config_reader --run_id=ID [--store=URL] [--print_record] [--show_items]
    config_reader --run_id=ID --compare=TASK [--compare_with=OTHER_RUN_ID] [--json] [--store=URL]
    config_reader --list_runs [--job_id=ID] [--status=FAILED] [--limit=50] [--cursor=C]
                  [--store=URL] [--output_format=json]

The config goes to stdout (JSON by default, or --output_format=textproto); the verdict and the
graph go to stderr, so stdout can be piped into another tool. Map tasks are listed with their
list and bindings; with --run_id, with their items' counts by status (and each item when there
are few, or with --show_items). Sub-job steps are listed with their routed inputs and their
child job's graph indented under them; with --run_id, each child run follows its caller's run,
indented, and the JSON holds its summary in ``children``. --list_runs prints a table of job
runs, newest first (JSON with --output_format=json), and on stderr the --cursor of the next
page. Strategy tasks are listed with every variation by name before a run; --compare=TASK
prints a strategy task's variations side by side (parameters, status, output shortened, tokens,
cost, latency; JSON with --json), and --compare_with=OTHER_RUN_ID each variation in both runs
and what changed.
"""

from __future__ import annotations

import datetime
import sys
from collections.abc import Iterable
from typing import cast

from absl import flags as absl_flags

from llm_scheduler.config import formats
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.kinds import message_type
from llm_scheduler.config.maps import is_map
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.sub_jobs import as_written
from llm_scheduler.config.validation import Validator
from llm_scheduler.config_tools import map_view, strategy_view, sub_job_view
from llm_scheduler.engine.strategy_compare import compare_strategy_runs, variation_rows
from llm_scheduler.errors import UserError
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.run_list import MAX_LIMIT, STATUSES, RunSummary, list_runs
from llm_scheduler.function_steps import default_registry
from llm_scheduler.models.registry import load_models_file
from llm_scheduler.runner import common, flags
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "describe",
    "describe_run",
    "describe_step",
    "main",
    "run",
    "run_table",
    "summarize_run",
]

LIST_RUNS = absl_flags.DEFINE_bool(
    "list_runs", False, "List the job runs in --store, newest first, a page at a time."
)
JOB_ID = flags.JOB_ID  # shared with the schedule tool
STATUS = absl_flags.DEFINE_string(
    "status", "", f"With --list_runs: only runs in this status ({', '.join(STATUSES)})."
)
LIMIT = absl_flags.DEFINE_integer(
    "limit", 50, f"With --list_runs: at most this many runs (1 to {MAX_LIMIT})."
)
CURSOR = absl_flags.DEFINE_string(
    "cursor", "", "With --list_runs: the page after the one that printed this cursor."
)
_LIST_FLAGS = (JOB_ID, STATUS, LIMIT, CURSOR)
SHOW_ITEMS = absl_flags.DEFINE_bool(
    "show_items",
    False,
    f"With --run_id: list every item of a map task (without it, only up to "
    f"{map_view.ITEM_LINES} items are listed).",
)
COMPARE = absl_flags.DEFINE_string(
    "compare",
    "",
    "With --run_id: print the variations of this strategy task side by side (parameters, "
    "status, output, tokens, cost, latency).",
)
COMPARE_WITH = absl_flags.DEFINE_string(
    "compare_with",
    "",
    "With --compare: another run of the same strategy; prints each variation in both runs and "
    "what changed (the --run_id run is the later one).",
)


def describe(config_type: str, message: object) -> str:
    """A one-paragraph description of a valid config (and the graph for jobs).

    Embedding steps are listed with their model key and dimensions, as a step config is;
    map tasks with their list and bindings (`map_view.describe_for_each`); sub-job steps with
    their routed inputs and their child job expanded (`sub_job_view.sub_jobs_preview`).
    """
    if config_type == "job":
        job = cast(config_pb2.JobConfig, message)
        graph = TaskGraph.from_job(job)
        steps = sum(len(task.steps) for task in job.tasks)
        counts = {task.task_id: len(task.steps) for task in job.tasks}
        return (
            f"valid job {job.job_id!r}: {len(job.tasks)} tasks, {steps} steps\n"
            f"{graph.render_text(counts)}{_embeddings(job.tasks)}"
            f"{map_view.maps_preview(job.tasks)}{strategy_view.strategies_preview(job.tasks)}"
            f"{sub_job_view.sub_jobs_preview(job.tasks)}"
        )
    if config_type == "task":
        task = cast(config_pb2.TaskConfig, message)
        return (
            f"valid task {task.task_id!r}: {len(task.steps)} steps{_embeddings([task])}"
            f"{map_view.maps_preview([task])}{strategy_view.strategies_preview([task])}"
            f"{sub_job_view.sub_jobs_preview([task])}"
        )
    if config_type == "step":
        step = cast(config_pb2.StepConfig, message)
        return f"valid step {step.id!r}: {describe_step(step)}"
    return f"valid {config_type}"


def describe_step(step: config_pb2.StepConfig) -> str:
    """What a step does in a few words.

    ``model query · GEMINI_FLASH``, ``function call · json_parse()``,
    ``embedding · OPENAI_EMBEDDING_SMALL, 256 dimensions`` or
    ``sub-job · child.json: section <- %topic%``.
    """
    if step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        return f"function call · {step.function_call_config.function_name}()"
    if step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        config = step.embedding_config
        size = f"{config.dimensions} dimensions" if config.dimensions else "the model's dimensions"
        return f"embedding · {config.model_key}, {size}"
    if step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
        return f"sub-job · {sub_job_view.describe_sub_job(step)}"
    return f"model query · {step.model_query_config.model_key}"


def _embeddings(tasks: Iterable[config_pb2.TaskConfig]) -> str:
    """One line per embedding step, for the description of a task or job."""
    lines = [
        f"\n  task {task.task_id!r} step {step.name or step.id or str(index)!r}: "
        f"{describe_step(step)}"
        for task in tasks
        for index, step in enumerate(task.steps)
        if step.step_type == config_pb2.STEP_TYPE_EMBEDDING
    ]
    return "\nembedding steps:" + "".join(lines) if lines else ""


def _read() -> int:
    if SHOW_ITEMS.value and not flags.RUN_ID.value:
        raise UserError("--show_items goes with --run_id")
    if COMPARE.value and not flags.RUN_ID.value:
        raise UserError("--compare goes with --run_id: config_reader --run_id=ID --compare=TASK")
    if (COMPARE_WITH.value or flags.JSON.value) and not COMPARE.value:
        raise UserError("--compare_with and --json go with --compare=TASK")
    if LIST_RUNS.value:
        return _list_runs()
    for holder in _LIST_FLAGS:
        if absl_flags.FLAGS[holder.name].present:
            raise UserError(f"--{holder.name} goes with --list_runs")
    if COMPARE.value:
        return _compare(flags.RUN_ID.value or "", COMPARE.value, COMPARE_WITH.value)
    if flags.RUN_ID.value:
        return _read_run(flags.RUN_ID.value)
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
    # The config as its file holds it: sub-job steps keep their job_path, not the child read
    # from it (the description below expands the child).
    written = (
        as_written(message)
        if isinstance(message, (config_pb2.JobConfig, config_pb2.TaskConfig))
        else message
    )
    sys.stdout.write(formats.dumps(written, fmt).decode("utf-8"))
    sys.stdout.flush()
    common.report(describe(config_type, message))
    return common.EXIT_OK


def _read_run(run_id: str) -> int:
    with common.open_store_from_flags() as store:
        job_run = read_job_run(store, run_id)
        url = store.url
    if job_run is None:
        raise UserError(f"no job run {run_id!r} in {url}")
    if flags.PRINT_RECORD.value:
        common.print_json(job_run)
    else:
        common.print_json(summarize_run(job_run))
    common.report(describe_run(job_run, url, every_item=SHOW_ITEMS.value))
    return common.EXIT_OK


def _compare(run_id: str, task_id: str, other_id: str) -> int:
    with common.open_store_from_flags() as store:
        runs = {wanted: read_job_run(store, wanted) for wanted in (run_id, other_id) if wanted}
        url = store.url
    for wanted, found in runs.items():
        if found is None:
            raise UserError(f"no job run {wanted!r} in {url}")
    after = runs[run_id]
    assert after is not None
    if other_id:
        before = runs[other_id]
        assert before is not None
        changes = compare_strategy_runs(before, after, task_id)
        if flags.JSON.value:
            common.print_json([change.to_json() for change in changes])
        else:
            sys.stdout.write(strategy_view.change_table(changes))
            sys.stdout.flush()
        changed = sum(1 for change in changes if change.changed)
        common.report(
            f"task {task_id!r}: {len(changes)} variations in runs {other_id} (before) and "
            f"{run_id} (after); {changed} changed"
        )
        return common.EXIT_OK
    rows = variation_rows(after, task_id)
    if flags.JSON.value:
        common.print_json([row.to_json() for row in rows])
    else:
        sys.stdout.write(strategy_view.variation_table(rows))
        sys.stdout.flush()
    done = sum(1 for row in rows if row.status == "SUCCEEDED")
    common.report(f"task {task_id!r} of run {run_id}: {done}/{len(rows)} variations succeeded")
    return common.EXIT_OK


def describe_run(job_run: run_pb2.JobRun, url: str, *, every_item: bool = False) -> str:
    """The summary of a run: its status, tasks succeeded and usage, then each map's items.

    Then each child run (of a sub-job step), named with the task run and step that ran it and
    summarized the same way, indented under its caller's run, recursively.

    Args:
        job_run: The run's record.
        url: Where the run was read from, for the first line.
        every_item: List each item of every map, however many (see `map_view.describe_items`).
    """
    first = f"run {job_run.run_id} in {url}: {_run_status(job_run)}"
    return "\n".join([first, *_run_details(job_run, every_item=every_item)])


def _run_status(job_run: run_pb2.JobRun) -> str:
    """``succeeded, 2/3 tasks succeeded; tokens: ...``."""
    status = run_pb2.RunStatus.Name(job_run.status).removeprefix("RUN_STATUS_").lower()
    done = sum(t.status == run_pb2.RUN_STATUS_SUCCEEDED for t in job_run.tasks)
    return (
        f"{status}, {done}/{len(job_run.config.tasks)} tasks succeeded; "
        f"{common.describe_usage(job_run.usage, job_run.cost_usd)}"
    )


def _run_details(job_run: run_pb2.JobRun, *, every_item: bool) -> list[str]:
    """The lines under a run's first one: its maps' items, then its child runs, indented."""
    lines: list[str] = []
    configs = {task.task_id: task for task in job_run.config.tasks}
    for task_run in job_run.tasks:
        if map_view.is_map_run(task_run, configs.get(task_run.task_id)):
            lines += (
                f"  {line}" for line in map_view.describe_items(task_run, every_item=every_item)
            )
    if job_run.children:
        lines.append("  child runs:")
    for child in job_run.children:
        lines.append(
            f"    {sub_job_view.caller_label(job_run, child)}: run {child.run_id}: "
            f"{_run_status(child)}"
        )
        lines += (
            f"{sub_job_view.INDENT}{line}" for line in _run_details(child, every_item=every_item)
        )
    return lines


def _list_runs() -> int:
    if flags.RUN_ID.value or flags.INPUT_PATH.value:
        raise UserError("--list_runs lists runs: leave out --run_id and --input_path")
    as_json = absl_flags.FLAGS["output_format"].present
    if as_json and flags.OUTPUT_FORMAT.value != "json":
        raise UserError("--list_runs prints a table, or JSON with --output_format=json")
    with common.open_store_from_flags() as store:
        page = list_runs(
            store,
            job_id=JOB_ID.value,
            status=STATUS.value,
            limit=LIMIT.value,
            cursor=CURSOR.value,
        )
        url = store.url
    if as_json:
        common.print_json(page.to_json())
    else:
        sys.stdout.write(run_table(page.runs))
        sys.stdout.flush()
    count = f"{len(page.runs)} run{'s' if len(page.runs) != 1 else ''} in {url}"
    if page.next_cursor:
        common.report(f"{count}; next page: --cursor={page.next_cursor}")
    else:
        common.report(f"{count}; no more")
    return common.EXIT_OK


_COLUMNS = ("RUN ID", "JOB", "STATUS", "STARTED (UTC)", "DURATION", "TOKENS IN/OUT", "COST")


def run_table(runs: list[RunSummary]) -> str:
    """Runs as a text table: one line each, columns padded to their widest cell."""
    rows = [_COLUMNS, *(_row(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "".join(line.rstrip() + "\n" for line in lines)


def _row(run: RunSummary) -> tuple[str, ...]:
    return (
        run.run_id,
        run.job_id or "-",
        run.status or "-",
        _moment(run.started_at),
        _duration(run.duration_seconds),
        f"{run.input_tokens}/{run.output_tokens}",
        f"${run.cost_usd:.6f}",
    )


def _moment(text: str) -> str:
    if not text:
        return "-"
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def summarize_run(job_run: run_pb2.JobRun) -> dict[str, object]:
    """Each task's status and outputs (and error), and the job's outputs.

    A map task's entry also holds its ``for_each`` (defaults filled in), ``items_total``,
    ``item_counts`` by status and ``items`` (each one's index, task run id, status, outputs).
    ``children`` holds the summaries of the run's child runs (of its sub-job steps), the same
    shape recursively, each with its ``caller_run_id``, ``caller_task_run_id`` and
    ``caller_step_index``.
    """
    configs = {task.task_id: task for task in job_run.config.tasks}
    tasks: list[dict[str, object]] = []
    for task_run in job_run.tasks:
        entry: dict[str, object] = {
            "task_id": task_run.task_id,
            "status": run_pb2.RunStatus.Name(task_run.status).removeprefix("RUN_STATUS_"),
            "outputs": struct_to_dict(task_run.outputs),
        }
        if task_run.error.message:
            entry["error"] = task_run.error.message
        config = configs.get(task_run.task_id)
        if map_view.is_map_run(task_run, config):
            if config is not None and is_map(config):
                entry["for_each"] = map_view.for_each_json(config.for_each)
            entry["items_total"] = task_run.items_total
            entry["item_counts"] = map_view.item_counts(task_run)
            entry["items"] = map_view.items_json(task_run)
        tasks.append(entry)
    summary: dict[str, object] = {
        "run_id": job_run.run_id,
        "job_id": job_run.job_id,
        "status": run_pb2.RunStatus.Name(job_run.status).removeprefix("RUN_STATUS_"),
        "tasks": tasks,
        "outputs": struct_to_dict(job_run.outputs),
        "children": [summarize_run(child) for child in job_run.children],
    }
    if job_run.caller_run_id:
        summary.update(sub_job_view.caller_json(job_run))
    return summary


main = common.main_for(_read)


def run() -> None:
    """Console-script entry point."""
    common.start(main)


if __name__ == "__main__":
    run()

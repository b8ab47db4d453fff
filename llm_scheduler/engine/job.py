"""Running a job in process: the task graph, independent tasks in parallel, bounded."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import secrets
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.structs import fill_struct, struct_to_dict, to_struct
from llm_scheduler.engine import records
from llm_scheduler.engine.budget import BudgetLedger, check_budget
from llm_scheduler.engine.context import EngineEvent, EventKind, RunContext
from llm_scheduler.engine.items import has_items
from llm_scheduler.engine.map import run_map
from llm_scheduler.engine.plans import reserve_plans, task_plan
from llm_scheduler.engine.task import run_task
from llm_scheduler.engine.values import task_variables
from llm_scheduler.heap import frozen_heap
from llm_scheduler.telemetry import hooks as telemetry_hooks
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["new_run_id", "run_job", "run_job_sync"]


def new_run_id(job_id: str) -> str:
    """A readable, unique run id: ``<job id>-<UTC time>-<random>``."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{job_id or 'job'}-{stamp}-{secrets.token_hex(3)}"


async def run_job(
    job: config_pb2.JobConfig,
    context: RunContext,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str = "",
    budget_usd: float = 0.0,
) -> run_pb2.JobRun:
    """Runs a job: each task starts once all its predecessors succeeded.

    Independent tasks run concurrently, at most ``context.max_concurrency`` at once. When a task
    fails, the tasks that depend on it are skipped; independent branches still finish. The job
    fails if any task failed.

    Args:
        job: The job config (validated).
        context: Models, functions, limits and the progress listener.
        inputs: Job input variables, overriding the job's ``input_config``.
        run_id: The run's id; a new one by default.
        budget_usd: A budget in US dollars for the run's model and embedding calls (its
            sub-jobs' included): a call that could take the run's cost over it fails its step
            with `BudgetExceededError` before it is made (see `llm_scheduler.engine.budget`).
            0 for none (or the budget ``context.budget`` holds already).

    Returns:
        The job's run record: every task's record in the job's task order, and the outputs of
        its final tasks keyed by task id; the runs of its sub-job steps in ``children``.

    Raises:
        UserError: ``budget_usd`` is negative or not a finite number.
    """
    if budget_usd:
        context = dataclasses.replace(context, budget=BudgetLedger(check_budget(budget_usd)))
    with frozen_heap():
        return await _run_job(job, context, inputs, run_id, budget_usd)


def run_job_sync(
    job: config_pb2.JobConfig,
    context: RunContext,
    *,
    inputs: Mapping[str, Any] | None = None,
    run_id: str = "",
    budget_usd: float = 0.0,
) -> run_pb2.JobRun:
    """`run_job` for code that is not async: runs it in a new event loop and returns its record.

    The context's model connections are closed afterwards (the client opens new ones if it
    is used again). Prefer this to ``asyncio.run(run_job(...))`` for large jobs: on Python
    3.11, `asyncio.run` formats the repr of its main task's result, and the repr of a run record
    is its whole text format (about 0.9 s for a 10,000-task run); here the record is handed out
    without it.

    Args:
        job: The job config (validated).
        context: Models, functions, limits and the progress listener.
        inputs: Job input variables, overriding the job's ``input_config``.
        run_id: The run's id; a new one by default.
        budget_usd: The run's budget in US dollars (see `run_job`); 0 for none.

    Returns:
        The job's run record (see `run_job`).

    Raises:
        RuntimeError: Called from a running event loop (await `run_job` there instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # none is running: the expected case
    else:
        raise RuntimeError(
            "run_job_sync was called from a running event loop; await run_job(...) there instead"
        )
    record: list[run_pb2.JobRun] = []

    async def main() -> None:  # returns nothing: see the docstring
        try:
            record.append(
                await run_job(job, context, inputs=inputs, run_id=run_id, budget_usd=budget_usd)
            )
        finally:
            await context.models.aclose()

    asyncio.run(main())
    return record[0]


async def _run_job(
    job: config_pb2.JobConfig,
    context: RunContext,
    inputs: Mapping[str, Any] | None,
    run_id: str,
    budget_usd: float,
) -> run_pb2.JobRun:
    graph = TaskGraph.from_job(job)
    reserve_plans(sum(len(task.steps) for task in job.tasks))
    # The run's sub-job steps put their child runs here (a nested run has a list of its own).
    context = dataclasses.replace(context, child_runs=[])
    # A validated job's task ids are unique: a task's config (in `job.tasks`) and its record
    # (in `run.tasks`) are at its position. Positions, not the messages: a message held per task
    # (a Python object over it) cost ~0.2 KB per task of a wide job until the run's end.
    position = {task_id: index for index, task_id in enumerate(graph.task_ids)}
    job_input = {**dataflow.payload(job.input_config), **(inputs or {})}
    run = run_pb2.JobRun(
        run_id=run_id or new_run_id(job.job_id),
        job_id=job.job_id,
        status=run_pb2.RUN_STATUS_RUNNING,
        config=job,
        started_at=records.now(),
        budget_usd=budget_usd,
    )
    run.inputs.CopyFrom(to_struct(job_input))
    # Telemetry (when on) gets each task's record as it ends, and the job's at its end.
    telemetry = telemetry_hooks.active
    traceparent = telemetry.run_started(run.run_id) if telemetry is not None else ""
    context.emit(EngineEvent(EventKind.JOB_STARTED, name=job.name or job.job_id))
    start = job.start_task or graph.roots[0]
    reachable = graph.reachable_from(start)
    finished: dict[str, int] = {}  # the status of each task that ran
    # Every task's record has its place in the job's record from the start, in the job's task
    # order, and is filled in place: task records (with all their steps) are never copied.
    for _ in graph.task_ids:
        run.tasks.add()

    outputs_of: dict[str, dict[str, Any]] = {}
    unread: dict[str, int] = {}  # successors yet to read a task's converted outputs

    def outputs(task_id: str) -> dict[str, Any]:
        # Converted once per task, however many successors it has (a fresh top-level dict each),
        # and dropped once the last of them has its copy.
        converted = outputs_of.get(task_id)
        if converted is None:
            converted = outputs_of[task_id] = struct_to_dict(run.tasks[position[task_id]].outputs)
            unread[task_id] = sum(1 for s in graph.successors[task_id] if s in reachable)
        unread[task_id] -= 1
        if unread[task_id] <= 0:
            del outputs_of[task_id], unread[task_id]
        return dict(converted)

    async def execute(task_id: str) -> bool:
        preds = [p for p in graph.predecessors[task_id] if p in reachable]
        upstream = [(p, outputs(p)) for p in preds]
        index = position[task_id]
        task = job.tasks[index]
        plan = task_plan(task)
        variables = task_variables(job_input, task, upstream, plan=plan)
        if has_items(task):
            task_run = await run_map(
                task,
                variables,
                context,
                job_run_id=run.run_id,
                predecessors=preds,
                record=run.tasks[index],
            )
        else:
            task_run = await run_task(
                task,
                variables,
                context,
                job_run_id=run.run_id,
                predecessors=preds,
                record=run.tasks[index],
                plan=plan,
            )
        status = finished[task_id] = task_run.status
        if telemetry is not None:
            telemetry.task_finished(run.run_id, traceparent, task_run, with_steps=True)
        return status == run_pb2.RUN_STATUS_SUCCEEDED

    # Ready tasks wait in a queue and run on at most `limit` workers: at most `limit` tasks
    # (and their coroutines, variables and records in progress) exist at once, however wide
    # the job. A worker runs ready tasks one after another until none is left, so a task's
    # successor usually runs on the worker that finished it: no asyncio task, done callback
    # or loop round trip per task (and no asyncio.wait over every running task, whose cost
    # per wake-up grows with the tasks in flight).
    limit = max(context.max_concurrency, 1)
    ready: collections.deque[str] = collections.deque()
    workers: set[asyncio.Task[None]] = set()
    busy = 0  # workers that have not finished their loop
    crashed: list[Exception] = []
    idle = asyncio.Event()

    # How many of each task's reachable predecessors have not succeeded yet: a task is ready
    # when its count reaches zero (one decrement per edge: a join of N costs N, not N^2).
    waiting = {
        task_id: sum(1 for p in graph.predecessors[task_id] if p in reachable)
        for task_id in reachable
    }

    def on_success(task_id: str) -> None:
        for successor in graph.successors[task_id]:
            if successor in reachable:
                waiting[successor] -= 1
                if not waiting[successor]:
                    ready.append(successor)

    async def work() -> None:
        nonlocal busy
        try:
            while ready and not crashed:
                task_id = ready.popleft()
                if await execute(task_id):  # succeeded
                    on_success(task_id)
                    start_workers(ready_for_me=1)
        except Exception as error:  # a bug, not a failed task (those are records): re-raised
            crashed.append(error)
        finally:
            busy -= 1
            if not busy or crashed:
                idle.set()  # done; or at once after a crash: the other workers are cancelled

    def start_workers(ready_for_me: int = 0) -> None:
        """Starts a worker per ready task, up to `limit` (a worker calling counts itself)."""
        nonlocal busy
        wanted = min(limit - busy, len(ready) - ready_for_me)
        for _ in range(wanted):
            busy += 1
            worker = asyncio.create_task(work())
            workers.add(worker)
            worker.add_done_callback(workers.discard)

    ready.extend(
        task_id for task_id in graph.task_ids if task_id in reachable and not waiting[task_id]
    )
    start_workers()
    try:
        if busy:
            await idle.wait()
        if crashed:
            raise crashed[0]
    finally:
        for worker in list(workers):
            worker.cancel()
    # Usage and cost are summed here and written once (the same additions, in the same order,
    # as adding each task's into the record).
    input_tokens = output_tokens = cached_input_tokens = cache_write_input_tokens = 0
    cost_usd = 0.0
    first_failed: run_pb2.TaskRun | None = None
    for task_id, task_run in zip(graph.task_ids, run.tasks, strict=True):
        status = finished.get(task_id)
        if status is None:
            task_run.CopyFrom(_skipped(job.tasks[position[task_id]], run.run_id))
            context.emit(EngineEvent(EventKind.TASK_SKIPPED, task_id))
            continue  # a skipped task has no usage nor cost
        if status == run_pb2.RUN_STATUS_FAILED and first_failed is None:
            first_failed = task_run
        usage = task_run.usage
        input_tokens += usage.input_tokens
        output_tokens += usage.output_tokens
        cached_input_tokens += usage.cached_input_tokens
        cache_write_input_tokens += usage.cache_write_input_tokens
        cost_usd += task_run.cost_usd
    records.add_usage(
        run.usage,
        run_pb2.TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_write_input_tokens=cache_write_input_tokens,
        ),
    )
    run.cost_usd = cost_usd
    run.children.extend(sorted(context.child_runs, key=lambda child: child.run_id))
    if first_failed is not None:
        run.status = run_pb2.RUN_STATUS_FAILED
        run.error.CopyFrom(first_failed.error)
        run.error.message = f"task {first_failed.task_id!r} failed: {first_failed.error.message}"
    else:
        run.status = run_pb2.RUN_STATUS_SUCCEEDED
        # What `to_struct({sink: outputs(sink)})` gives, filled in place one sink at a time: no
        # dict of every sink's outputs, nor a `Struct` of them to copy.
        run.outputs.Clear()  # set, however empty
        fields = run.outputs.fields
        for t in graph.sinks:
            if t in reachable and t in finished:
                fill_struct(fields[t].struct_value, struct_to_dict(run.tasks[position[t]].outputs))
    records.stamp(run.finished_at)
    if telemetry is not None:
        telemetry.job_finished(run, traceparent)
    outcome = run_pb2.RunStatus.Name(run.status).removeprefix("RUN_STATUS_").lower()
    context.emit(EngineEvent(EventKind.JOB_FINISHED, name=job.name or job.job_id, detail=outcome))
    return run


def _skipped(task: config_pb2.TaskConfig, run_id: str) -> run_pb2.TaskRun:
    return run_pb2.TaskRun(
        task_run_id=task.task_id,
        task_id=task.task_id,
        job_run_id=run_id,
        status=run_pb2.RUN_STATUS_SKIPPED,
        config=task,
    )

"""Running one job through a store from a single process: submit or resume, dispatch, read back.

This is what ``job_runner --store`` and ``job_runner --resume`` do: the same event-driven
protocol as the cloud, with this process as the only worker, so a run that is killed half-way
can be resumed from its persisted steps.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import StoreError
from llm_scheduler.execution.budget_ledger import set_budget
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.resume import resume_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store.base import Store
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["resume_in_store", "run_in_store"]


async def run_in_store(
    store: Store,
    job: config_pb2.JobConfig,
    context: RunContext,
    *,
    inputs: Mapping[str, Any] | None = None,
    workers: int = 4,
    replay_source: run_pb2.JobRun | None = None,
    budget_usd: float = 0.0,
) -> run_pb2.JobRun:
    """Submits a (validated) job to the store and runs it here until nothing is left to run.

    With ``replay_source`` the run is a replay of that recorded run, with ``budget_usd`` a
    budgeted run (see `submit_job`).
    """
    parent = replay_source.run_id if replay_source is not None else ""
    run_id = submit_job(
        store,
        job,
        inputs=inputs,
        parent_run_id=parent,
        replay_source=replay_source,
        budget_usd=budget_usd,
    )
    print(
        f"run {run_id} stored in {store.url} (resume it with --resume={run_id})",
        file=sys.stderr,
        flush=True,
    )
    return await _dispatch(store, run_id, context, workers)


async def resume_in_store(
    store: Store, run_id: str, context: RunContext, *, workers: int = 4, budget_usd: float = 0.0
) -> run_pb2.JobRun:
    """Requeues a failed or interrupted run (see `resume_run`) and runs it here to the end.

    With ``budget_usd``, the budget of a budgeted run is set to it first (`set_budget`: what
    the run spent stays spent).
    """
    if budget_usd:
        set_budget(store, run_id, budget_usd)
    requeued = resume_run(store, run_id)
    print(f"resuming run {run_id}: requeued {', '.join(requeued) or 'nothing'}", file=sys.stderr)
    return await _dispatch(store, run_id, context, workers)


async def _dispatch(store: Store, run_id: str, context: RunContext, workers: int) -> run_pb2.JobRun:
    await Dispatcher(store, context, workers=workers).run(until_idle=True)
    job_run = read_job_run(store, run_id)
    if job_run is None:
        raise StoreError(f"run {run_id} vanished from {store.url}")
    return job_run

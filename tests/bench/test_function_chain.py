"""W1 with function steps computes what its bare loop computes (speed is not checked)."""

from __future__ import annotations

import asyncio

from bench import baseline, jobs
from llm_scheduler import ModelClient, ModelRegistry, RunContext, run_job, struct_to_dict
from llm_scheduler.v1 import run_pb2


def test_the_function_chain_ends_where_the_bare_loop_does() -> None:
    registry = ModelRegistry()
    job = jobs.function_chain_job(6, registry)
    context = RunContext(models=ModelClient(registry, offline=True, credentials={}))

    run = asyncio.run(run_job(job, context))

    assert run.status == run_pb2.RUN_STATUS_SUCCEEDED, run.error.message
    assert len(run.tasks[0].steps) == 6
    assert struct_to_dict(run.outputs)["chain"]["v6"] == baseline.bare_function_chain(6, jobs.SEED)

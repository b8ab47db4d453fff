"""The cloud function loads a custom model provider from LLM_SCHEDULER_FUNCTION_MODULES.

A real functions-framework server runs ``on_task_run`` with the echo provider's module
(`tests.models.echo_provider`) and a models file naming it; a dispatcher posts it the task runs.
"""

from __future__ import annotations

import asyncio
import os
import pathlib

from llm_scheduler import ModelClient, ModelRegistry, RunContext, Validator
from llm_scheduler.execution.cloudevents import cloudevent_sender
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from tests.conftest import REPO_ROOT
from tests.execution.functions_server import Server
from tests.models.test_custom_providers import (
    assert_echo_chain_recorded,
    chain_job,
    write_echo_models,
)


def test_the_cloud_function_runs_a_custom_provider_from_its_module(
    tmp_path: pathlib.Path,
) -> None:
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    models = write_echo_models(tmp_path)
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {
        "LLM_SCHEDULER_STORE": store_url,
        "LLM_SCHEDULER_OFFLINE": "",
        "LLM_SCHEDULER_MODELS_FILE": str(models),
        "LLM_SCHEDULER_FUNCTION_MODULES": "tests.models.echo_provider",
        "PYTHONPATH": python_path,  # functions-framework does not put the cwd on sys.path
    }
    server = Server("on_task_run", "cloudevent", env, tmp_path / "on_task_run.log")
    try:
        server.wait_ready()
        job = chain_job()
        # This process has the provider too (the test imported it): the submitter validates.
        Validator(ModelRegistry.with_models_file(models)).check_job(job)
        with open_store(store_url) as store:
            run_id = submit_job(store, job)
            # The dispatcher only posts: the function runs the steps, with its own registry.
            context = RunContext(models=ModelClient(offline=True))
            dispatcher = Dispatcher(store, context, sender=cloudevent_sender(server.url))
            stats = asyncio.run(asyncio.wait_for(dispatcher.run(until_idle=True), 60))
            record = read_job_run(store, run_id)
    finally:
        server.stop()
    assert stats.handled.get("post_failed", 0) == 0, server.log.read_text()
    assert record is not None
    assert_echo_chain_recorded(record)

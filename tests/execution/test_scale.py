"""Large jobs through a store: a 10,000-task job submits, wide jobs run to the end.

Speed is measured in bench/ (`python -m bench.contention --store=sqlite --tasks=10000`), never
here; these tests check that size changes nothing but time.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import Any

from llm_scheduler import ModelClient, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.v1 import config_pb2
from tests.clitools import run_tool


def wide_job(branches: int) -> dict[str, Any]:
    """A start task, ``branches`` function-step tasks, and a join of all of them."""

    def task(task_id: str, text: str, **links: Any) -> dict[str, Any]:
        return {
            "task_id": task_id,
            "steps": [
                {
                    "step_type": "STEP_TYPE_FUNCTION_CALL",
                    "function_call_config": {
                        "function_name": "template",
                        "request": {"text": text},
                    },
                    "output_config": {"payload": {f"{task_id}_out": "%response%"}},
                }
            ],
            **links,
        }

    names = [f"b{i:05d}" for i in range(branches)]
    tasks = [task("start", "go %topic%", next_tasks=names)]
    tasks += [task(name, f"{name} after %start_out%", next_task="join") for name in names]
    tasks.append(task("join", "joined %b00000_out%"))
    return {"job_id": "wide", "input_config": {"payload": {"topic": "owls"}}, "tasks": tasks}


def test_a_10000_task_job_is_submitted_with_small_documents(tmp_path: pathlib.Path) -> None:
    # Its config is 1.2 MB of JSON: more than one document holds, so it goes to a blob.
    job_file = tmp_path / "wide.json"
    job_file.write_text(json.dumps(wide_job(9998)))
    url = f"sqlite:///{tmp_path / 'state.db'}"
    submitted = run_tool("job_submitter", f"--input_path={job_file}", f"--store={url}")
    assert submitted.code == 0, submitted.stderr
    run_id = submitted.stdout.strip()
    with SqliteStore(tmp_path / "state.db") as store:
        job_doc = store.get(docs.job_run_path(run_id))
        assert job_doc is not None and job_doc["tasks_total"] == 10000
        assert "config" in job_doc["$blobs"]
        assert len(json.dumps(job_doc)) < 2 * docs.INLINE_FIELD_BYTES
        saved = store.get(docs.job_definition_path("wide"))
        assert saved is not None and "config" in saved["$blobs"]
    read = run_tool("config_reader", f"--run_id={run_id}", f"--store={url}")
    assert read.code == 0, read.stderr
    assert json.loads(read.stdout)["status"] == "PENDING"


def test_a_wide_job_runs_to_the_end_with_several_dispatchers(tmp_path: pathlib.Path) -> None:
    job = loads(json.dumps(wide_job(400)), config_pb2.JobConfig, ConfigFormat.JSON)

    async def dispatch(url: str) -> None:
        stores = [open_store(url) for _ in range(3)]
        try:
            await asyncio.gather(
                *(
                    Dispatcher(store, RunContext(models=ModelClient(offline=True))).run(
                        until_idle=True
                    )
                    for store in stores
                )
            )
        finally:
            for store in stores:
                store.close()

    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        run_id = submit_job(store, job)
    asyncio.run(dispatch(url))
    with open_store(url) as store:
        final = store.get(docs.job_run_path(run_id))
        assert final is not None and final["status"] == docs.Status.SUCCEEDED
        assert final["tasks_succeeded"] == 402
        assert final["outputs"] == {"join": {"join_out": "joined b00000 after go owls"}}

"""Maps and sub-jobs through the cloud function: functions-framework, CloudEvents, Firestore."""

from __future__ import annotations

import asyncio
import json
import pathlib
import random
import uuid
from collections.abc import Iterator

import pytest

from llm_scheduler import ModelRegistry, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import RunContext
from llm_scheduler.execution.cloudevents import cloudevent_sender
from llm_scheduler.execution.dispatcher import Dispatcher, Sender
from llm_scheduler.execution.protocol import Outcome
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.client import ModelClient
from llm_scheduler.store import Doc, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS
from tests.engine.test_sub_job import plan_sections, sub_job_map
from tests.execution.functions_server import Server
from tests.execution.test_map_runs import assert_mapped, map_job, plan_with, task_of


@pytest.fixture
def firestore_url(
    firestore_emulator: FirestoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    yield f"firestore://test-{uuid.uuid4().hex[:12]}"


def function_server(
    tmp_path: pathlib.Path, store_url: str, emulator: FirestoreEmulator, **env: str
) -> Server:
    server = Server(
        "on_task_run",
        "cloudevent",
        {
            "LLM_SCHEDULER_STORE": store_url,
            "FIRESTORE_EMULATOR_HOST": emulator.host,
            **env,
        },
        tmp_path / "on_task_run.log",
    )
    server.wait_ready()
    return server


def twice(send: Sender) -> Sender:
    """A sender that delivers every event twice at once (Eventarc delivers at least once)."""

    async def send_twice(path: str, doc: Doc) -> Outcome:
        first, _ = await asyncio.gather(send(path, doc), send(path, doc))
        return first

    return send_twice


def dispatch_through(server: Server, store_url: str, *, workers: int, duplicate: bool) -> None:
    send = cloudevent_sender(server.url)
    sender = twice(send) if duplicate else send

    async def body() -> None:
        with open_store(store_url) as store:
            context = RunContext(models=ModelClient(offline=True))
            dispatcher = Dispatcher(store, context, sender=sender, workers=workers)
            stats = await asyncio.wait_for(dispatcher.run(until_idle=True), 800)
            assert stats.handled.get("post_failed", 0) == 0, server.log.read_text()[-3000:]

    asyncio.run(body())


@pytest.mark.timeout(180)
def test_a_map_runs_through_the_function_with_every_event_delivered_twice(
    tmp_path: pathlib.Path,
    firestore_url: str,
    firestore_emulator: FirestoreEmulator,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
) -> None:
    count = random.randint(5, 10)
    plan_with(fake_server, count)
    fake_server.latency_seconds = 0.02
    server = function_server(
        tmp_path,
        firestore_url,
        firestore_emulator,
        LLM_SCHEDULER_MODELS_FILE=str(models_file),
        **FAKE_CREDENTIALS,
    )
    try:
        with open_store(firestore_url) as store:
            run_id = submit_job(store, map_job())
            dispatch_through(server, firestore_url, workers=4, duplicate=True)
            assert_mapped(store, run_id, count)
    finally:
        server.stop()
    assert fake_server.count() == 1 + count + 1
    log = server.log.read_text()
    assert '"action": "waiting"' in log and "Traceback" not in log


@pytest.mark.timeout(180)
def test_a_sub_graph_per_item_runs_through_the_function_with_every_event_twice(
    tmp_path: pathlib.Path,
    firestore_url: str,
    firestore_emulator: FirestoreEmulator,
    fake_server: FakeProviderServer,
    models_file: pathlib.Path,
    fake_registry: ModelRegistry,
) -> None:
    """A map over a sub-job step: each item's task waits in the store for its child run."""
    count = 3
    plan_sections(fake_server, count)
    job = sub_job_map()
    Validator(fake_registry).check_job(job)
    server = function_server(
        tmp_path,
        firestore_url,
        firestore_emulator,
        LLM_SCHEDULER_MODELS_FILE=str(models_file),
        **FAKE_CREDENTIALS,
    )
    try:
        with open_store(firestore_url) as store:
            run_id = submit_job(store, job)
            dispatch_through(server, firestore_url, workers=4, duplicate=True)
            job_run = read_job_run(store, run_id)
    finally:
        server.stop()
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    assert fake_server.count() == 1 + 2 * count + 1
    ids = [f"{run_id}~write~{i:06d}~0" for i in range(count)]
    write = task_of(job_run, "write")
    assert [item.steps[0].child_run_id for item in write.items] == ids
    assert [child.run_id for child in job_run.children] == ids
    expected = [f"wrote Polish wrote Draft s{i}" for i in range(count)]
    assert struct_to_dict(write.outputs) == {"summary": expected}
    assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize(
    "count", [50, pytest.param(1000, marks=[pytest.mark.scale, pytest.mark.timeout(900)])]
)
def test_a_wide_map_completes_through_the_function_on_firestore(
    tmp_path: pathlib.Path, firestore_url: str, firestore_emulator: FirestoreEmulator, count: int
) -> None:
    """Item completions do not serialise on the map's document: no lock timeouts.

    1,000 items take minutes on the emulator (about 0.2 s per task run on 2 cores, as for any
    wide job there), so that size runs with ``make scale-test``.
    """
    job = loads(
        json.dumps(
            {
                "job_id": "wide_map",
                "input_config": {"payload": {"rows": [f"row {i}" for i in range(count)]}},
                "tasks": [
                    {
                        "task_id": "each",
                        "next_task": "total",
                        "for_each": {"items": "%rows%"},
                        "steps": [
                            {
                                "model_query_config": {
                                    "model_key": "OFFLINE",
                                    "user_prompt": "Echo %index%: %item%",
                                },
                                "output_config": {"payload": {"answer": ""}},
                            }
                        ],
                    },
                    {
                        "task_id": "total",
                        "steps": [
                            {
                                "step_type": "STEP_TYPE_FUNCTION_CALL",
                                "function_call_config": {
                                    "function_name": "length",
                                    "request": {"value": "%answer%"},
                                },
                                "output_config": {"payload": {"n": "%response%"}},
                            }
                        ],
                    },
                ],
            }
        ),
        config_pb2.JobConfig,
        ConfigFormat.JSON,
    )
    Validator().check_job(job)
    server = function_server(tmp_path, firestore_url, firestore_emulator, LLM_SCHEDULER_OFFLINE="1")
    try:
        with open_store(firestore_url) as store:
            run_id = submit_job(store, job)
            dispatch_through(server, firestore_url, workers=16, duplicate=False)
            job_run = read_job_run(store, run_id, steps=False)
    finally:
        server.stop()
    assert job_run is not None
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED, job_run.error.message
    each = task_of(job_run, "each")
    assert each.items_total == count == len(each.items)
    assert {item.status for item in each.items} == {run_pb2.RUN_STATUS_SUCCEEDED}
    assert struct_to_dict(task_of(job_run, "total").outputs) == {"n": count}
    log = server.log.read_text()
    assert "Traceback" not in log and "ABORTED" not in log and "lock" not in log.lower()

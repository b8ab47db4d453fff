"""Google Cloud's limits, which the emulator does not enforce, measured on every write of a run.

Eventarc delivers at most 512 KB per event, and a Firestore ``written`` event carries the
document before and after the write; a document holds at most 1 MiB. A run whose inputs and
outputs are 1 MB each must stay far inside both, on every backend.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from llm_scheduler import ModelClient, RunContext, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.store.base import MAX_DOCUMENT_BYTES
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.execution.recording import RecordingStore

MB = 1_000_000
# Far below Eventarc's 512 KB, so that no data size can push a trigger over it.
EVENT_BUDGET_BYTES = 160 * 1024


def _function(name: str, request: Any, outputs: dict[str, str]) -> dict[str, Any]:
    return {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": name, "request": request},
        "output_config": {"payload": outputs},
    }


def big_data_job(branches: int) -> config_pb2.JobConfig:
    """A 1 MB job input, fanned out to branches that each make 1 MB outputs, joined."""
    names = [f"b{i}" for i in range(branches)]
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [_function("template", {"text": "%big%"}, {"copy": "%response%"})],
            "next_tasks": names,
        }
    ]
    for name in names:
        tasks.append(
            {
                "task_id": name,
                "steps": [
                    {
                        "model_query_config": {
                            "model_key": "GEMINI_FLASH",
                            "user_prompt": f"Summarise for {name}: %copy%",
                        },
                        "output_config": {"payload": {f"{name}_summary": ""}},
                    },
                    _function(
                        "template", {"text": f"{name}:%copy%"}, {f"{name}_text": "%response%"}
                    ),
                ],
                "next_task": "join",
            }
        )
    tasks.append(
        {
            "task_id": "join",
            "steps": [
                _function(
                    "join",
                    {"items": [f"%{name}_text%" for name in names], "separator": "|"},
                    {"joined": "%response%"},
                )
            ],
        }
    )
    text = json.dumps(
        {"job_id": "big", "tasks": tasks, "input_config": {"payload": {"big": "x" * MB}}}
    )
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


def test_every_write_of_a_run_with_1_mb_values_fits_eventarc_and_firestore(store_url: str) -> None:
    branches = 3
    with open_store(store_url) as inner:
        store = RecordingStore(inner)
        run_id = submit_job(store, big_data_job(branches))
        context = RunContext(models=ModelClient(offline=True))
        asyncio.run(Dispatcher(store, context, workers=4).run(until_idle=True))

        job_run = read_job_run(store, run_id)
        assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
        joined = struct_to_dict(job_run.outputs)["join"]["joined"]
        assert len(joined) == branches * (MB + 3) + branches - 1
        assert len(struct_to_dict(job_run.inputs)["big"]) == MB

    task_writes = [w for w in store.writes if docs.parse_task_run_path(w.path)]
    # Every task run was created, claimed and completed: all of those writes were measured.
    assert len(task_writes) >= 3 * (branches + 2)
    largest_event = max(w.event_bytes() for w in task_writes)
    assert largest_event <= EVENT_BUDGET_BYTES, f"a task-run event of {largest_event} bytes"
    for write in store.writes:
        assert write.document_bytes() <= MAX_DOCUMENT_BYTES, write.path
    # The job run too stays small: its data went to blobs.
    job_writes = [w for w in store.writes if w.path == docs.job_run_path(run_id)]
    assert max(w.document_bytes() for w in job_writes) <= 4 * docs.INLINE_FIELD_BYTES


def test_concurrent_completions_do_not_write_the_job_run(store_url: str) -> None:
    # The job run is written when the run is submitted, started and finished, never by the
    # completion of a task: concurrent completions have no document in common to queue on.
    branches = 10
    tasks: list[dict[str, Any]] = [
        {
            "task_id": "start",
            "steps": [_function("template", {"text": "go"}, {"go": "%response%"})],
            "next_tasks": [f"b{i}" for i in range(branches)],
        }
    ]
    tasks += [
        {
            "task_id": f"b{i}",
            "steps": [_function("template", {"text": f"%go% {i}"}, {f"o{i}": "%response%"})],
            "next_task": "join",
        }
        for i in range(branches)
    ]
    tasks.append(
        {
            "task_id": "join",
            "steps": [_function("length", {"value": "%o0%"}, {"n": "%response%"})],
        }
    )
    job = loads(
        json.dumps({"job_id": "wide", "tasks": tasks}), config_pb2.JobConfig, ConfigFormat.JSON
    )
    with open_store(store_url) as inner:
        store = RecordingStore(inner)
        run_id = submit_job(store, job)
        context = RunContext(models=ModelClient(offline=True))
        asyncio.run(Dispatcher(store, context, workers=8).run(until_idle=True))
        final = store.get(docs.job_run_path(run_id))
    assert final is not None and final["status"] == docs.Status.SUCCEEDED
    assert (final["tasks_succeeded"], final["tasks_failed"], final["tasks_skipped"]) == (12, 0, 0)
    job_writes = [w for w in store.writes if w.path == docs.job_run_path(run_id)]
    assert len(job_writes) == 3  # submitted, started, finished
    # Each branch wrote only its own documents: its task run and its own arrival at the join.
    arrivals = [w.path for w in store.writes if "/joins/join/arrived/" in w.path]
    assert sorted(arrivals) == sorted(
        docs.arrival_path(run_id, "join", f"b{i}") for i in range(branches)
    )

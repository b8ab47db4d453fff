"""Out-of-line blobs on every store backend: large step fields are stored whole, once."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from typing import Any

import pytest

from llm_scheduler import ModelClient, ModelRegistry, RetryPolicy, RunContext
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.errors import StoreError
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import MAX_DOCUMENT_BYTES, Store, open_store
from llm_scheduler.testing import FakeProviderServer
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.conftest import FAKE_CREDENTIALS

STEP = "job_runs/r/task_runs/t/step_runs/00000"


def big_text(size: int) -> str:
    """Text of about ``size`` bytes with multi-byte characters, quotes and control characters,
    so chunks must split on character boundaries and count JSON escapes."""
    unit = 'réponse "quoted" \\ 😀 line\n\t\x01 '
    return (unit * (size // len(unit.encode("utf-8")) + 1))[: size // 2] + "x" * (size // 2)


def step_doc(**fields: Any) -> dict[str, Any]:
    return {
        "step_id": "1",
        "index": 0,
        "status": "RUN_STATUS_SUCCEEDED",
        "model_key": "FAKE_OPENAI",
        **fields,
    }


def json_size(doc: Any) -> int:
    return len(json.dumps(doc, ensure_ascii=False).encode("utf-8"))


def test_a_3mb_response_round_trips_exactly(store_url: str) -> None:
    response = big_text(3_000_000)
    doc = step_doc(user_prompt="short", response_text=response, outputs={"answer": response})
    original = copy.deepcopy(doc)
    with open_store(store_url) as store:
        assert blobs.put_step(store, STEP, doc)
        assert doc == original  # the caller's document is not modified
        stored = store.get(STEP)
        assert stored is not None
        sha = hashlib.sha256(response.encode("utf-8")).hexdigest()
        assert stored["response_text"] == "" and stored["outputs"] == {}
        assert stored["user_prompt"] == "short"
        assert stored[blobs.BLOBS_FIELD]["response_text"] == sha
        assert json_size(stored) < 1000

        parent = store.get(f"blobs/{sha}")
        assert parent is not None and "content" not in parent
        assert parent["size"] == len(response.encode("utf-8"))
        chunks = store.list(f"blobs/{sha}/chunks")
        assert [path.rsplit("/", 1)[1] for path, _ in chunks] == [
            f"{i:05d}" for i in range(parent["chunks"])
        ]
        assert parent["chunks"] >= 4
        assert all(json_size(chunk) < MAX_DOCUMENT_BYTES for _, chunk in chunks)

        inlined = blobs.inline(store, stored)
        assert inlined == original
        record = docs.record_from_doc(inlined, run_pb2.StepRun)
        assert record.response_text == response


def test_small_documents_are_untouched(store_url: str) -> None:
    # At the threshold exactly: the JSON string, quotes included, is BLOB_THRESHOLD_BYTES.
    doc = step_doc(user_prompt="hi", response_text="x" * (blobs.BLOB_THRESHOLD_BYTES - 2))
    with open_store(store_url) as store:
        assert blobs.put_step(store, STEP, doc)
        stored = store.get(STEP)
        assert stored == doc
        assert blobs.inline(store, stored) is stored
        assert store.list("blobs") == []
        assert not blobs.put_step(store, STEP, step_doc(response_text="other"))
        assert store.get(STEP) == doc  # create-if-absent: the first write stands
        over = step_doc(response_text="x" * (blobs.BLOB_THRESHOLD_BYTES - 1))
        assert blobs.put_step(store, STEP.replace("00000", "00001"), over)
        assert len(store.list("blobs")) == 1


def test_identical_content_is_stored_once(store_url: str) -> None:
    prompt = "p" * 100_000
    with open_store(store_url) as store:
        for index in range(3):
            path = f"job_runs/r{index}/task_runs/t/step_runs/00000"
            assert blobs.put_step(store, path, step_doc(user_prompt=prompt, response_text="ok"))
        assert len(store.list("blobs")) == 1
        for index in range(3):
            stored = store.get(f"job_runs/r{index}/task_runs/t/step_runs/00000")
            assert stored is not None
            assert blobs.inline(store, stored)["user_prompt"] == prompt


def test_json_fields_go_out_of_line_and_come_back_as_json(store_url: str) -> None:
    rows = [{"id": i, "text": f"row {i} ✓", "ok": i % 2 == 0, "none": None} for i in range(4000)]
    doc = step_doc(
        step_type="STEP_TYPE_FUNCTION_CALL",
        function_name="json_parse",
        inputs={"rows": rows},
        function_request=rows,
        function_response={"rows": rows, "count": 4000},
        outputs={"parsed": {"rows": rows}},
    )
    with open_store(store_url) as store:
        assert blobs.put_step(store, STEP, doc)
        stored = store.get(STEP)
        assert stored is not None
        assert set(stored[blobs.BLOBS_FIELD]) == {
            "inputs",
            "outputs",
            "function_request",
            "function_response",
        }
        assert "function_request" not in stored and "function_response" not in stored
        assert stored["inputs"] == {} and stored["outputs"] == {}
        assert blobs.inline(store, stored) == doc


def test_a_missing_blob_or_chunk_is_an_error_naming_it(store_url: str) -> None:
    with open_store(store_url) as store:
        missing = "0" * 64
        with pytest.raises(StoreError, match=f"blob blobs/{missing} is missing.*'response_text'"):
            blobs.inline(store, step_doc(**{blobs.BLOBS_FIELD: {"response_text": missing}}))
        sha = hashlib.sha256(b"two parts").hexdigest()
        store.set(f"blobs/{sha}", {"size": 9, "chunks": 2})
        store.set(f"blobs/{sha}/chunks/00000", {"content": "two "})
        with pytest.raises(StoreError, match=f"blob chunk blobs/{sha}/chunks/00001 is missing"):
            blobs.read_blob(store, sha)
        store.set(f"blobs/{sha}/chunks/00001", {"content": "parts"})
        assert blobs.read_blob(store, sha) == "two parts"
        store.set(f"blobs/{sha}/chunks/00001", {"content": "PARTS"})
        with pytest.raises(StoreError, match="does not match its hash"):
            blobs.read_blob(store, sha)


def test_a_200kb_response_through_the_protocol_is_read_back_whole(
    store_url: str, fake_server: FakeProviderServer, fake_registry: ModelRegistry
) -> None:
    response = big_text(200_000)
    fake_server.responder = lambda provider, body: response
    job = config_pb2.JobConfig(job_id="big")
    task = job.tasks.add(task_id="only")
    for index, (prompt, output) in enumerate([("go", "answer"), ("again: %answer%", "final")]):
        step = task.steps.add(id=str(index + 1))
        step.model_query_config.model_key = "FAKE_OPENAI"
        step.model_query_config.user_prompt = prompt
        step.output_config.payload.update({output: ""})
    task.output_config.payload.update({"final": ""})
    client = ModelClient(
        fake_registry,
        offline=False,
        credentials=FAKE_CREDENTIALS,
        retry_policy=RetryPolicy(max_attempts=1),
    )
    context = RunContext(models=client)

    async def deliver(store: Store, run_id: str) -> str:
        try:
            return (await handle_task_run(store, run_id, "only", context)).action
        finally:
            await client.aclose()

    with open_store(store_url) as store:
        run_id = submit_job(store, job)
        assert asyncio.run(deliver(store, run_id)) == "succeeded"
        stored = store.get(docs.step_run_path(run_id, "only", 0))
        assert stored is not None and stored["response_text"] == ""
        assert "response_text" in stored[blobs.BLOBS_FIELD]
        second = store.get(docs.step_run_path(run_id, "only", 1))
        assert second is not None
        assert {"user_prompt", "response_text"} <= set(second[blobs.BLOBS_FIELD])
        job_run = read_job_run(store, run_id)
    assert job_run is not None and job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    steps = job_run.tasks[0].steps
    assert [s.response_text for s in steps] == [response, response]
    assert steps[1].user_prompt == f"again: {response}"
    assert fake_server.requests[1].body["messages"][-1]["content"] == f"again: {response}"
    assert struct_to_dict(job_run.outputs) == {"only": {"final": response}}

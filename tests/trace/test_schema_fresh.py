"""docs/trace.schema.json is generated from the protobuf descriptors and must be up to date."""

from __future__ import annotations

import subprocess
import sys

import jsonschema

from llm_scheduler.trace.schema import render_trace_json_schema, trace_json_schema
from llm_scheduler.v1 import run_pb2
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "trace.schema.json"
REGENERATE = "python -m llm_scheduler.trace.schema > docs/trace.schema.json"


def test_checked_in_schema_is_fresh() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_trace_json_schema(), (
        f"docs/trace.schema.json is stale: run {REGENERATE}"
    )


def test_the_module_prints_the_schema() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "llm_scheduler.trace.schema"],
        capture_output=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert printed.stdout.decode("utf-8") == render_trace_json_schema()
    assert printed.stderr == b""


def test_schema_is_a_valid_draft_2020_12_schema_covering_every_message() -> None:
    schema = trace_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    defs = schema["$defs"]
    for message in (run_pb2.JobRun, run_pb2.TaskRun, run_pb2.StepRun):
        desc = message.DESCRIPTOR
        entry = defs[desc.full_name]
        assert entry["additionalProperties"] is False
        assert set(entry["properties"]) == {field.name for field in desc.fields}
    assert "llm_scheduler.v1.JobConfig" in defs and "llm_scheduler.v1.RunStatus" in defs


def test_schema_follows_the_proto_json_mapping() -> None:
    validator = jsonschema.Draft202012Validator(trace_json_schema())
    header = {"schema": "llm-scheduler.trace", "schema_version": 1}

    def ok(job_run: object) -> bool:
        return validator.is_valid({**header, "job_run": job_run})

    assert ok({"usage": {"input_tokens": "12"}}) and ok({"usage": {"input_tokens": 12}})
    assert not ok({"usage": {"input_tokens": "twelve"}})
    assert ok({"status": "RUN_STATUS_FAILED"}) and ok({"status": 4})
    assert not ok({"status": "FAILED"})
    assert ok({"started_at": "2026-01-01T00:00:00Z", "cost_usd": 0.5})
    assert not ok({"cost_usd": "cheap"})
    assert ok({"inputs": {"any": ["json", {"at": 1}]}})
    assert not ok({"inputs": ["not", "an", "object"]})
    assert ok({"tasks": [{"steps": [{"function_response": [1, "two", None]}]}]})
    assert not ok({"tasks": {"not": "a list"}})
    assert not validator.is_valid({"schema": "llm-scheduler.trace", "job_run": {}})

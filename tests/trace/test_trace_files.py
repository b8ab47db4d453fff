"""Trace files: round trip, the JSON Schema, strict reading, and the version checks."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jsonschema
import pytest

import llm_scheduler.trace
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.errors import ConfigError
from llm_scheduler.trace import TRACE_SCHEMA, TRACE_SCHEMA_VERSION, read_trace, write_trace
from llm_scheduler.v1 import run_pb2
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "trace.schema.json"
FANOUT_JOB = REPO_ROOT / "examples" / "sample_fanout_job_config.json"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A real trace: job_runner --offline --trace_out on the fan-out sample."""
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    result = run_tool(
        "job_runner", f"--input_path={FANOUT_JOB}", "--offline", f"--trace_out={path}"
    )
    assert result.code == 0, result.stderr
    assert f"trace written to {path}" in result.stderr
    return path


def validate(tree: Any) -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(tree)


def edited(source: pathlib.Path, target: pathlib.Path, change: Any) -> pathlib.Path:
    tree = json.loads(source.read_text())
    change(tree)
    target.write_text(json.dumps(tree, indent=2))
    return target


def problem_paths(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [problem.path for problem in error.value.problems]


def test_public_api_is_complete() -> None:
    exported_names = set(llm_scheduler.trace.__all__)
    public = {n for n in vars(llm_scheduler.trace) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(llm_scheduler.trace, n)).__name__ == "module"}
    assert public - modules == exported_names


def test_exported_trace_has_the_header_and_validates_against_the_schema(
    exported: pathlib.Path,
) -> None:
    tree = json.loads(exported.read_text(encoding="utf-8"))
    assert tree["schema"] == TRACE_SCHEMA == "llm-scheduler.trace"
    assert tree["schema_version"] == TRACE_SCHEMA_VERSION == 1
    assert tree["exported_at"].endswith("Z")
    validate(tree)
    job_run = read_trace(exported)
    assert job_run.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert [t.task_id for t in job_run.tasks] == ["outline", "pros", "cons", "verdict"]
    assert all(step.fingerprint for t in job_run.tasks for step in t.steps)


def test_schema_rejects_a_typo_and_a_wrong_type(exported: pathlib.Path) -> None:
    tree = json.loads(exported.read_text())
    tree["job_run"]["tasks"][0]["steps"][0]["respnse_text"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="respnse_text"):
        validate(tree)
    tree = json.loads(exported.read_text())
    tree["job_run"]["status"] = "DONE"
    with pytest.raises(jsonschema.ValidationError):
        validate(tree)
    tree = json.loads(exported.read_text())
    tree["schema_version"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate(tree)


def test_round_trip_keeps_every_field(exported: pathlib.Path, tmp_path: pathlib.Path) -> None:
    original = read_trace(exported)
    original.tasks[0].steps[0].response_text = "ünïcödé ✓ " + "x" * 100_000
    again = tmp_path / "again.json"
    write_trace(again, original)
    assert read_trace(again) == original
    assert "ünïcödé ✓" in again.read_text(encoding="utf-8")  # UTF-8, not \u escapes
    validate(json.loads(again.read_text(encoding="utf-8")))


def test_comments_are_allowed_and_edits_are_read(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    tree = json.loads(exported.read_text())
    tree["job_run"]["inputs"]["idea"] = "an edited idea"
    text = "// edited by hand\n" + json.dumps(tree, indent=2)
    path = tmp_path / "commented.json"
    path.write_text(text)
    assert struct_to_dict(read_trace(path).inputs) == {"idea": "an edited idea"}


def test_a_typo_field_is_an_error_naming_its_path(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    def typo(tree: Any) -> None:
        step = tree["job_run"]["tasks"][1]["steps"][0]
        step["respnse_text"] = step.pop("response_text")

    path = edited(exported, tmp_path / "typo.json", typo)
    with pytest.raises(ConfigError) as error:
        read_trace(path)
    assert problem_paths(error) == ["job_run.tasks[1].steps[0].respnse_text"]
    assert "did you mean 'response_text'" in str(error.value)
    assert str(path) in str(error.value)


def test_a_bad_value_is_an_error_naming_its_path(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    def bad(tree: Any) -> None:
        tree["job_run"]["tasks"][0]["steps"][0]["attempts"] = "many"

    with pytest.raises(ConfigError) as error:
        read_trace(edited(exported, tmp_path / "bad.json", bad))
    assert "attempts" in problem_paths(error)[0]


def test_a_newer_version_is_refused_with_an_upgrade_message(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    def newer(tree: Any) -> None:
        tree["schema_version"] = 2
        tree["job_run"]["a_field_from_the_future"] = True

    with pytest.raises(ConfigError) as error:
        read_trace(edited(exported, tmp_path / "v2.json", newer))
    message = str(error.value)
    assert problem_paths(error) == ["schema_version"]
    assert "version 2" in message and "reads version 1" in message
    assert "upgrade llm-scheduler" in message


@pytest.mark.parametrize("version", [0, None, "one", -1])
def test_an_old_or_unknown_version_is_refused(
    exported: pathlib.Path, tmp_path: pathlib.Path, version: Any
) -> None:
    def older(tree: Any) -> None:
        if version is None:
            del tree["schema_version"]
        else:
            tree["schema_version"] = version

    with pytest.raises(ConfigError) as error:
        read_trace(edited(exported, tmp_path / "old.json", older))
    assert problem_paths(error) == ["schema_version"]
    assert "unknown trace format version" in str(error.value)
    assert "reads version 1" in str(error.value)


def test_a_missing_or_other_schema_is_refused(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    def no_schema(tree: Any) -> None:
        del tree["schema"]

    with pytest.raises(ConfigError, match="not an llm-scheduler trace"):
        read_trace(edited(exported, tmp_path / "none.json", no_schema))

    def other(tree: Any) -> None:
        tree["schema"] = "something.else"

    with pytest.raises(ConfigError, match=r"not an llm-scheduler trace.*'something\.else'"):
        read_trace(edited(exported, tmp_path / "other.json", other))


def test_a_bare_job_run_is_refused_with_the_fix(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(exported.read_text())["job_run"]))
    with pytest.raises(ConfigError) as error:
        read_trace(bare)
    message = str(error.value)
    assert "not an llm-scheduler trace" in message and "bare JobRun" in message
    assert '"schema": "llm-scheduler.trace"' in message and "trace_export" in message


def test_unreadable_and_malformed_files(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        read_trace(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "llm-scheduler.trace",')
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        read_trace(broken)
    empty = tmp_path / "empty.json"
    empty.write_text('{"schema": "llm-scheduler.trace", "schema_version": 1}')
    with pytest.raises(ConfigError) as error:
        read_trace(empty)
    assert problem_paths(error) == ["job_run"]


def test_replay_reads_the_trace_and_refuses_a_newer_one(
    exported: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    replay = run_tool("job_runner", f"--replay={exported}", "--offline")
    assert replay.code == 0, replay.stderr
    assert "4 of 4 steps reused, 0 run" in replay.stderr

    def newer(tree: Any) -> None:
        tree["schema_version"] = 7

    refused = run_tool(
        "job_runner", f"--replay={edited(exported, tmp_path / 'v7.json', newer)}", "--offline"
    )
    assert refused.code == 2
    assert "version 7" in refused.stderr and "upgrade" in refused.stderr

"""The deployment files agree with the code: trigger, indexes, rules, entry points."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import types

import functions_framework._function_registry as ff_registry
import pytest

from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cloudevents import TASK_RUN_EVENT_TYPES
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _trigger() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (DEPLOY / "trigger.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            (values[name.strip()],) = shlex.split(value)
    return values


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # Eventarc path patterns: {name} matches exactly one path segment.
    parts = re.split(r"(\{[^/}]+\})", pattern)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def test_trigger_matches_task_runs_only() -> None:
    trigger = _trigger()
    regex = _pattern_regex(trigger["TRIGGER_PATH_PATTERN"])
    assert regex.fullmatch(docs.task_run_path("R", "T"))
    assert not regex.fullmatch(docs.step_run_path("R", "T", 0))
    assert not regex.fullmatch(docs.job_run_path("R"))
    assert not regex.fullmatch(docs.job_definition_path("J"))
    assert trigger["TRIGGER_EVENT_TYPE"] in TASK_RUN_EVENT_TYPES
    # Handoffs are updates: a created-only trigger would strand them.
    assert trigger["TRIGGER_EVENT_TYPE"].endswith(".written")
    assert trigger["TRIGGER_DATABASE"] == "(default)"


def test_indexes_cover_the_collection_group_status_query() -> None:
    config = json.loads((DEPLOY / "firestore.indexes.json").read_text())
    overrides = [
        o
        for o in config["fieldOverrides"]
        if o["collectionGroup"] == "task_runs" and o["fieldPath"] == "status"
    ]
    assert len(overrides) == 1
    scopes = {(i.get("order"), i["queryScope"]) for i in overrides[0]["indexes"]}
    assert ("ASCENDING", "COLLECTION_GROUP") in scopes
    assert config["indexes"] == []


def test_rules_deny_every_client_access() -> None:
    text = (DEPLOY / "firestore.rules").read_text()
    code = re.sub(r"//[^\n]*", "", text)
    assert re.search(r"rules_version\s*=\s*'2'\s*;", code)
    assert re.search(r"service\s+cloud\.firestore\s*\{", code)
    assert re.search(r"match\s+/databases/\{database\}/documents\s*\{", code)
    assert re.search(r"match\s+/\{document=\*\*\}\s*\{", code)
    allows = re.findall(r"allow\s+([^:;]+?)\s*(?::\s*(.*?))?;", code)
    assert allows == [("read, write", "if false")]
    assert code.count("{") == code.count("}")


def _load_main() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "llm_scheduler_functions_main", REPO_ROOT / "functions" / "main.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as functions-framework does: dataclasses look their module up.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_functions_main_exposes_every_target() -> None:
    main = _load_main()
    assert set(main.__all__) == {"on_task_run", "run_task_http", "sweep_expired_leases"}
    assert isinstance(main.on_task_run, types.FunctionType)
    assert isinstance(main.run_task_http, types.FunctionType)
    assert isinstance(main.sweep_expired_leases, types.FunctionType)
    assert ff_registry.REGISTRY_MAP["on_task_run"] == ff_registry.CLOUDEVENT_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["run_task_http"] == ff_registry.HTTP_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["sweep_expired_leases"] == ff_registry.HTTP_SIGNATURE_TYPE
    assert main.DEFAULT_TIMEOUT_SECONDS == 540


@pytest.fixture(scope="module")
def dry_run() -> list[list[str]]:
    result = subprocess.run(
        ["bash", str(DEPLOY / "deploy.sh")],
        env={
            **os.environ,
            "DRY_RUN": "1",
            "PROJECT": "demo-project",
            "REGION": "europe-west1",
            "TRIGGER_LOCATION": "eur3",
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip()]


def _deploy_command(commands: list[list[str]], entry_point: str) -> list[str]:
    (command,) = [c for c in commands if f"--entry-point={entry_point}" in c]
    assert command[:3] == ["gcloud", "functions", "deploy"]
    return command


def test_deploy_script_uses_the_trigger_file(dry_run: list[list[str]]) -> None:
    trigger = _trigger()
    command = _deploy_command(dry_run, "on_task_run")
    assert f"--trigger-event-filters=type={trigger['TRIGGER_EVENT_TYPE']}" in command
    assert f"--trigger-event-filters=database={trigger['TRIGGER_DATABASE']}" in command
    assert (
        f"--trigger-event-filters-path-pattern=document={trigger['TRIGGER_PATH_PATTERN']}"
        in command
    )
    assert "--trigger-location=eur3" in command
    for flag in ("--gen2", "--retry", "--timeout=540s", "--region=europe-west1"):
        assert flag in command
    (env,) = [a for a in command if a.startswith("--set-env-vars=")]
    assert "LLM_SCHEDULER_STORE=firestore://demo-project/(default)" in env
    (secrets,) = [a for a in command if a.startswith("--set-secrets=")]
    for key in ("OPENAI_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY"):
        assert f"{key}=" in secrets


def test_deploy_script_deploys_the_http_function_and_firestore(dry_run: list[list[str]]) -> None:
    command = _deploy_command(dry_run, "run_task_http")
    assert "--trigger-http" in command
    assert "--no-allow-unauthenticated" in command
    assert any(c[:2] == ["firebase", "deploy"] for c in dry_run)
    assert any(c[:4] == ["python3", "-m", "pip", "wheel"] for c in dry_run)


def test_deploy_script_schedules_the_lease_sweeper(dry_run: list[list[str]]) -> None:
    command = _deploy_command(dry_run, "sweep_expired_leases")
    assert "--trigger-http" in command
    (schedule,) = [c for c in dry_run if c[:4] == ["gcloud", "scheduler", "jobs", "create"]]
    assert "--schedule=* * * * *" in schedule
    assert any(a.startswith("--uri=") and a.endswith("llm-scheduler-sweep") for a in schedule)

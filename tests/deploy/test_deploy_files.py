"""The deployment files agree with the code: triggers, indexes, rules, entry points, pins.

deploy.sh runs against a fake ``gcloud`` (and ``firebase``) on PATH that records every call and
answers the read-only ones (describe) from the environment, so each test deploys into a made-up
project: first deployment, second deployment, missing secrets, database locations.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import types
from typing import Any

import functions_framework._function_registry as ff_registry
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.cloudevents import DOCUMENT_EVENT_TYPES, TASK_RUN_EVENT_TYPES
from llm_scheduler.execution.run_requests import parse_run_request_path, run_request_path
from llm_scheduler.store.sqlite import PAGE_INDEXES
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
SCRIPT = DEPLOY / "deploy.sh"
FUNCTION_REQUIREMENTS = REPO_ROOT / "functions" / "requirements.txt"
SWEEPER = "llm-scheduler-sweeper@demo-project.iam.gserviceaccount.com"
SWEEP_URL = "https://llm-scheduler-sweep-abc123-uc.a.run.app"
ENTRY_POINTS = (
    "on_task_run",
    "on_run_request",
    "run_task_http",
    "sweep_expired_leases",
    "fire_schedules",
)


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
    assert not regex.fullmatch(run_request_path("Q"))
    assert trigger["TRIGGER_EVENT_TYPE"] in TASK_RUN_EVENT_TYPES
    # Handoffs are updates: a created-only trigger would strand them.
    assert trigger["TRIGGER_EVENT_TYPE"].endswith(".written")
    assert trigger["TRIGGER_DATABASE"] == "(default)"


def test_request_trigger_matches_run_requests_only() -> None:
    trigger = _trigger()
    regex = _pattern_regex(trigger["REQUEST_TRIGGER_PATH_PATTERN"])
    assert regex.fullmatch(run_request_path("Q"))
    assert parse_run_request_path(run_request_path("Q")) == "Q"
    assert not regex.fullmatch(docs.task_run_path("R", "T"))
    assert not regex.fullmatch(docs.job_run_path("R"))
    # Handling a request writes its outcome on it: an update must not trigger it again.
    assert trigger["REQUEST_TRIGGER_EVENT_TYPE"] == "google.cloud.firestore.document.v1.created"
    assert trigger["REQUEST_TRIGGER_EVENT_TYPE"] in DOCUMENT_EVENT_TYPES


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


def test_embedding_vectors_are_not_indexed() -> None:
    # Firestore indexes every element of an array by default: a 3,072-number vector would cost
    # 3,072 index entries per write (of 40,000 a document may have), and nothing queries them.
    config = json.loads((DEPLOY / "firestore.indexes.json").read_text())
    exempt = {
        o["collectionGroup"]
        for o in config["fieldOverrides"]
        if o["fieldPath"] == "embedding" and o["indexes"] == []
    }
    assert exempt == {"step_runs", "cache"}


def test_indexes_cover_the_filtered_pages_of_job_runs() -> None:
    # list_runs pages job runs newest first, filtered on job_id and/or status: an equality
    # filter with an order on another field needs a composite index (single-field indexes
    # serve the unfiltered page). SQLite indexes the same pages (PAGE_INDEXES).
    config = json.loads((DEPLOY / "firestore.indexes.json").read_text())
    composite = {
        (
            index["collectionGroup"],
            tuple(sorted(f["fieldPath"] for f in index["fields"][:-1])),
            index["fields"][-1]["fieldPath"],
        )
        for index in config["indexes"]
        if index["queryScope"] == "COLLECTION"
        and all(f["order"] == "ASCENDING" for f in index["fields"][:-1])
        and index["fields"][-1]["order"] == "DESCENDING"
    }
    pages = {(c, tuple(sorted(fields)), key) for c, fields, key in PAGE_INDEXES if fields}
    assert pages == {
        ("job_runs", ("status",), "created_at"),
        ("job_runs", ("job_id",), "created_at"),
        ("job_runs", ("job_id", "status"), "created_at"),
    }
    assert pages <= composite
    assert len(config["indexes"]) == len(composite)


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
    assert set(main.__all__) == set(ENTRY_POINTS)
    for name in ENTRY_POINTS:
        assert isinstance(getattr(main, name), types.FunctionType)
    assert ff_registry.REGISTRY_MAP["on_task_run"] == ff_registry.CLOUDEVENT_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["on_run_request"] == ff_registry.CLOUDEVENT_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["run_task_http"] == ff_registry.HTTP_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["sweep_expired_leases"] == ff_registry.HTTP_SIGNATURE_TYPE
    assert ff_registry.REGISTRY_MAP["fire_schedules"] == ff_registry.HTTP_SIGNATURE_TYPE
    assert main.DEFAULT_TIMEOUT_SECONDS == 540


def test_deploy_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


# -- deploy.sh against a fake gcloud -----------------------------------------------------------

# Records each call (argv as a JSON line) and answers the lookups deploy.sh makes. A functions
# deploy also keeps the requirements.txt it would upload.
_FAKE_GCLOUD = """#!{python}
import json, os, pathlib, shutil, sys

args = sys.argv[1:]
state = pathlib.Path(os.environ["FAKE_STATE"])
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(["gcloud", *args]) + "\\n")
words = [a for a in args if not a.startswith("-")]
env = os.environ.get

def missing():
    print("ERROR: (gcloud) NOT_FOUND", file=sys.stderr)
    sys.exit(1)

if words[:3] == ["config", "get-value", "project"]:
    print(env("FAKE_CONFIG_PROJECT", ""))
elif words[:3] == ["firestore", "databases", "describe"]:
    print(env("FAKE_DB_LOCATION")) if env("FAKE_DB_LOCATION") else missing()
elif words[:2] == ["secrets", "describe"]:
    words[2] in env("FAKE_SECRETS", "").split(",") or missing()
elif words[:3] == ["iam", "service-accounts", "describe"]:
    env("FAKE_ACCOUNT_EXISTS") or missing()
elif words[:3] == ["scheduler", "jobs", "describe"]:
    env("FAKE_JOB_EXISTS") or missing()
elif words[:2] == ["functions", "describe"]:
    print("{sweep_url}")
elif words[:2] == ["functions", "deploy"]:
    (source,) = [a.split("=", 1)[1] for a in args if a.startswith("--source=")]
    shutil.copy(pathlib.Path(source) / "requirements.txt", state / f"{{words[2]}}.requirements")
"""

_FAKE_FIREBASE = """#!{python}
import json, os, pathlib, sys

state = pathlib.Path(os.environ["FAKE_STATE"])
with (state / "calls.jsonl").open("a") as log:
    log.write(json.dumps(["firebase", *sys.argv[1:]]) + "\\n")
config = sys.argv[sys.argv.index("--config") + 1]
(state / "firebase.json").write_text(pathlib.Path(config).read_text())
"""

# Stands in for building the wheel (pip would fetch setuptools from the index); anything else
# goes to the real interpreter.
_FAKE_PYTHON = """#!/usr/bin/env bash
if [[ "$1 $2 $3" == "-m pip wheel" ]]; then
  while [[ $# -gt 0 && "$1" != "--wheel-dir" ]]; do shift; done
  touch "$2/llm_scheduler-0.1.0-py3-none-any.whl"
  exit 0
fi
exec {python} "$@"
"""


@dataclasses.dataclass
class Deployment:
    """What one run of deploy.sh did."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]
    state: pathlib.Path

    def made(self, *prefix: str) -> list[list[str]]:
        """The calls that start with these words."""
        return [c for c in self.calls if c[: len(prefix)] == list(prefix)]

    def printed(self) -> list[list[str]]:
        """The commands a dry run printed."""
        return [shlex.split(line) for line in self.stdout.splitlines() if line.strip()]

    def function(self, entry_point: str, commands: list[list[str]] | None = None) -> list[str]:
        """The deploy command of one function."""
        deploys = [
            c
            for c in (self.calls if commands is None else commands)
            if c[:3] == ["gcloud", "functions", "deploy"]
        ]
        (command,) = [c for c in deploys if f"--entry-point={entry_point}" in c]
        return command


def _deploy(tmp_path: pathlib.Path, **env: str) -> Deployment:
    bin_dir = tmp_path / "bin"
    state = tmp_path / "state"
    bin_dir.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    (state / "calls.jsonl").write_text("")
    fakes = {
        "gcloud": _FAKE_GCLOUD.format(python=sys.executable, sweep_url=SWEEP_URL),
        "firebase": _FAKE_FIREBASE.format(python=sys.executable),
        "python3": _FAKE_PYTHON.format(python=sys.executable),
    }
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    settings = {"PROJECT": "demo-project", "FAKE_DB_LOCATION": "nam5", **env}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_", "SKIP_", "DRY_"))}
    for name in ("REGION", "SECRETS", "DATABASE", "SERVICE_ACCOUNT", "SWEEPER_SERVICE_ACCOUNT"):
        base.pop(name, None)
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={
            **base,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_STATE": str(state),
            "TMPDIR": str(tmp_path),
            **settings,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    return Deployment(result.returncode, result.stdout, result.stderr, calls, state)


def _flag(command: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in command if a.startswith(f"{name}=")]


def test_a_first_deployment(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path, FAKE_SECRETS="gemini-api-key")
    assert deployment.returncode == 0, deployment.stderr
    (enable,) = deployment.made("gcloud", "services", "enable")
    assert {"cloudscheduler.googleapis.com", "eventarc.googleapis.com"} <= set(enable)
    trigger = _trigger()

    on_task_run = deployment.function("on_task_run")
    assert f"--trigger-event-filters=type={trigger['TRIGGER_EVENT_TYPE']}" in on_task_run
    assert "--trigger-event-filters=database=(default)" in on_task_run
    assert (
        f"--trigger-event-filters-path-pattern=document={trigger['TRIGGER_PATH_PATTERN']}"
        in on_task_run
    )
    for flag in ("--gen2", "--retry", "--timeout=540s", "--runtime=python311"):
        assert flag in on_task_run
    (env,) = _flag(on_task_run, "--set-env-vars")
    assert "LLM_SCHEDULER_STORE=firestore://demo-project/(default)" in env
    assert "LLM_SCHEDULER_TIMEOUT_SECONDS=540" in env

    on_run_request = deployment.function("on_run_request")
    assert f"--trigger-event-filters=type={trigger['REQUEST_TRIGGER_EVENT_TYPE']}" in on_run_request
    assert (
        "--trigger-event-filters-path-pattern=document="
        f"{trigger['REQUEST_TRIGGER_PATH_PATTERN']}" in on_run_request
    )
    assert "--retry" in on_run_request

    run_task = deployment.function("run_task_http")
    assert "--trigger-http" in run_task and "--no-allow-unauthenticated" in run_task
    sweep = deployment.function("sweep_expired_leases")
    assert "--trigger-http" in sweep and "--no-allow-unauthenticated" in sweep
    fire = deployment.function("fire_schedules")
    assert "--trigger-http" in fire and "--no-allow-unauthenticated" in fire
    assert fire[3] == "llm-scheduler-fire-schedules"

    # Keys: only the secret that exists, only where models are called.
    for command in (on_task_run, run_task):
        assert _flag(command, "--set-secrets") == ["GEMINI_API_KEY=gemini-api-key:latest"]
    for command in (on_run_request, sweep, fire):
        assert "--clear-secrets" in command and not _flag(command, "--set-secrets")
    assert "openai-api-key (OPENAI_API_KEY)" in deployment.stderr
    assert "anthropic-api-key (ANTHROPIC_API_KEY)" in deployment.stderr

    # Indexes and rules.
    (firebase,) = deployment.made("firebase", "deploy")
    assert firebase[firebase.index("--only") + 1] == "firestore:indexes,firestore:rules"
    config = json.loads((deployment.state / "firebase.json").read_text())
    assert config["firestore"]["indexes"] == "firestore.indexes.json"

    # The sweeper's schedule, with a service account of its own allowed to invoke it.
    (create_account,) = deployment.made("gcloud", "iam", "service-accounts", "create")
    assert create_account[4] == "llm-scheduler-sweeper"
    bindings = deployment.made("gcloud", "run", "services", "add-iam-policy-binding")
    assert [b[4] for b in bindings] == ["llm-scheduler-sweep", "llm-scheduler-fire-schedules"]
    for binding in bindings:
        assert f"--member=serviceAccount:{SWEEPER}" in binding
        assert "--role=roles/run.invoker" in binding
    assert not deployment.made("gcloud", "scheduler", "jobs", "update")
    jobs = deployment.made("gcloud", "scheduler", "jobs", "create", "http")
    # The sweeper's job, then the schedules' (the fake gcloud gives both functions one URL).
    assert [job[5] for job in jobs] == ["llm-scheduler-sweep", "llm-scheduler-fire-schedules"]
    for job in jobs:
        assert "--schedule=* * * * *" in job
        assert f"--uri={SWEEP_URL}" in job
        assert f"--oidc-service-account-email={SWEEPER}" in job
        assert f"--oidc-token-audience={SWEEP_URL}" in job
    assert "appspot" not in json.dumps(deployment.calls)
    # The account exists before it is granted anything, each function before its schedule.
    order = deployment.calls
    assert order.index(create_account) < order.index(bindings[0])
    for function, job in ((sweep, jobs[0]), (fire, jobs[1])):
        assert order.index(function) < order.index(job)


def test_a_second_deployment_updates_what_exists(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(
        tmp_path, FAKE_SECRETS="gemini-api-key", FAKE_ACCOUNT_EXISTS="1", FAKE_JOB_EXISTS="1"
    )
    assert deployment.returncode == 0, deployment.stderr
    assert not deployment.made("gcloud", "scheduler", "jobs", "create")
    jobs = deployment.made("gcloud", "scheduler", "jobs", "update", "http")
    assert len(jobs) == 2
    for job in jobs:
        assert f"--oidc-service-account-email={SWEEPER}" in job
    assert not deployment.made("gcloud", "iam", "service-accounts", "create")
    assert len(deployment.made("gcloud", "run", "services", "add-iam-policy-binding")) == 2


def test_without_any_secret_no_function_gets_keys(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path)
    assert deployment.returncode == 0, deployment.stderr
    for entry_point in ENTRY_POINTS:
        command = deployment.function(entry_point)
        assert "--clear-secrets" in command and not _flag(command, "--set-secrets")
    for name in ("openai-api-key", "gemini-api-key", "anthropic-api-key"):
        assert name in deployment.stderr


def test_every_secret_present(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path, FAKE_SECRETS="openai-api-key,gemini-api-key,anthropic-api-key")
    assert deployment.returncode == 0, deployment.stderr
    (secrets,) = _flag(deployment.function("on_task_run"), "--set-secrets")
    assert secrets.split(",") == [
        "OPENAI_API_KEY=openai-api-key:latest",
        "GEMINI_API_KEY=gemini-api-key:latest",
        "ANTHROPIC_API_KEY=anthropic-api-key:latest",
    ]
    assert "not in Secret Manager" not in deployment.stderr


@pytest.mark.parametrize(
    ("location", "region", "functions_region"),
    [
        ("nam5", "", "us-central1"),
        ("eur3", "", "europe-west4"),
        ("europe-west1", "", "europe-west1"),
        ("nam5", "us-east1", "us-east1"),
    ],
)
def test_triggers_live_where_the_database_is(
    tmp_path: pathlib.Path, location: str, region: str, functions_region: str
) -> None:
    settings = {"FAKE_DB_LOCATION": location, **({"REGION": region} if region else {})}
    deployment = _deploy(tmp_path, **settings)
    assert deployment.returncode == 0, deployment.stderr
    for entry_point in ("on_task_run", "on_run_request"):
        command = deployment.function(entry_point)
        assert _flag(command, "--trigger-location") == [location]
    for entry_point in ENTRY_POINTS:
        assert _flag(deployment.function(entry_point), "--region") == [functions_region]
    for job in deployment.made("gcloud", "scheduler", "jobs", "create", "http"):
        assert f"--location={functions_region}" in job
    (describe,) = deployment.made("gcloud", "firestore", "databases", "describe")
    assert "--database=(default)" in describe


def test_a_database_that_cannot_be_found_stops_before_any_change(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path, FAKE_DB_LOCATION="")
    assert deployment.returncode == 2
    assert "no Firestore database (default) in demo-project" in deployment.stderr
    assert not deployment.made("gcloud", "functions", "deploy")
    other = _deploy(tmp_path, FAKE_DB_LOCATION="nam7")
    assert other.returncode == 2
    assert "set REGION" in other.stderr
    assert not other.made("gcloud", "functions", "deploy")


@pytest.mark.parametrize("variable", ["SKIP_FIRESTORE", "SKIP_FIRESTORE_RULES"])
def test_skipping_firestore_skips_only_the_rules(tmp_path: pathlib.Path, variable: str) -> None:
    deployment = _deploy(tmp_path, **{variable: "1"})
    assert deployment.returncode == 0, deployment.stderr
    (firebase,) = deployment.made("firebase", "deploy")
    assert firebase[firebase.index("--only") + 1] == "firestore:indexes"
    assert "firestore.rules not released" in deployment.stderr


def test_a_dry_run_prints_the_changes_and_makes_none(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path, DRY_RUN="1", FAKE_SECRETS="gemini-api-key")
    assert deployment.returncode == 0, deployment.stderr
    # Only lookups reached gcloud.
    for call in deployment.calls:
        assert call[0] == "gcloud" and ("describe" in call or call[1:3] == ["config", "get-value"])
    printed = deployment.printed()
    assert len([c for c in printed if c[:3] == ["gcloud", "functions", "deploy"]]) == 5
    on_task_run = deployment.function("on_task_run", printed)
    assert "--trigger-location=nam5" in on_task_run
    assert _flag(on_task_run, "--set-secrets") == ["GEMINI_API_KEY=gemini-api-key:latest"]
    assert any(c[:4] == ["gcloud", "scheduler", "jobs", "create"] for c in printed)
    assert any(c[:2] == ["firebase", "deploy"] for c in printed)
    assert any(c[1:4] == ["-m", "pip", "wheel"] for c in printed)


def test_the_project_comes_from_gcloud_when_not_set(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path, PROJECT="", FAKE_CONFIG_PROJECT="configured-project")
    assert deployment.returncode == 0, deployment.stderr
    assert "--project=configured-project" in deployment.function("on_task_run")
    unset = _deploy(tmp_path, PROJECT="")
    assert unset.returncode == 2 and "set PROJECT" in unset.stderr


def test_the_deployed_requirements_are_the_locked_ones(tmp_path: pathlib.Path) -> None:
    deployment = _deploy(tmp_path)
    assert deployment.returncode == 0, deployment.stderr
    staged = (deployment.state / "llm-scheduler-on-task-run.requirements").read_text()
    assert staged == FUNCTION_REQUIREMENTS.read_text() + (
        "./wheels/llm_scheduler-0.1.0-py3-none-any.whl[firestore,cloud,openai,gemini,anthropic,otel]\n"
    )


# -- functions/requirements.txt ----------------------------------------------------------------


def _lock_pins() -> dict[str, str]:
    text = (REPO_ROOT / "requirements_lock.txt").read_text()
    return {
        canonicalize_name(m[1]): m[2]
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)
    }


def _function_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in FUNCTION_REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"not an exact pin: {line}"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_function_requirements_are_generated_from_the_lock() -> None:
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "function_requirements.py"), "--check"],
        check=True,
        timeout=60,
    )
    lock = _lock_pins()
    pins = _function_pins()
    assert pins, "functions/requirements.txt pins nothing"
    for name, version in pins.items():
        assert lock.get(name) == version, f"{name}=={version}, the lock says {lock.get(name)}"


def test_function_requirements_cover_what_the_package_needs() -> None:
    # Independently of the lock's "via" notes: walk the installed metadata of
    # llm-scheduler[firestore,cloud,openai,gemini,anthropic,otel] (installed from the lock) and its
    # dependencies.
    needed: set[str] = set()
    pending: list[tuple[str, frozenset[str]]] = [
        (
            "llm-scheduler",
            frozenset({"firestore", "cloud", "openai", "gemini", "anthropic", "otel"}),
        )
    ]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            environments: list[dict[str, Any]] = [{"extra": e} for e in extras or {""}]
            marker = requirement.marker
            if marker is not None and not any(marker.evaluate(e) for e in environments):
                continue
            key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
            needed.add(key[0])
            if key not in seen:
                seen.add(key)
                pending.append(key)
    assert needed - set(_function_pins()) == set(), "run python3 scripts/function_requirements.py"


def test_the_function_runtime_is_the_python_of_the_lock() -> None:
    header = re.search(
        r"with Python (\d+)\.(\d+)", (REPO_ROOT / "requirements_lock.txt").read_text()
    )
    assert header is not None
    runtime = re.search(r'^RUNTIME="(\w+)"', SCRIPT.read_text(), re.M)
    assert runtime is not None
    assert runtime[1] == f"python{header[1]}{header[2]}"


def test_make_lock_regenerates_the_function_requirements() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text().replace("\\\n", " ")
    recipe = re.search(r"^lock:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert "scripts/function_requirements.py" in recipe[1]


def test_the_readme_describes_every_function() -> None:
    text = (DEPLOY / "README.md").read_text()
    assert "both functions" not in text
    for entry_point in ENTRY_POINTS:
        assert f"`{entry_point}`" in text
    for phrase in (
        "cloudscheduler.googleapis.com",
        "llm-scheduler-sweeper@",
        "roles/run.invoker",
        "SKIP_FIRESTORE_RULES",
        "nam5",
        "requirements_lock.txt",
    ):
        assert phrase in text, phrase

"""Cloud Functions entry points: thin functions-framework edges over `llm_scheduler`.

``on_task_run`` is the Firestore trigger (``google.cloud.firestore.document.v1.written`` on
``job_runs/{run_id}/task_runs/{task_id}``, see ``deploy/``); ``on_run_request`` starts the run a
created ``run_requests/{request_id}`` document asks for (docs/run_requests.md); ``run_task_http``
runs one task config sent over HTTP; ``sweep_expired_leases`` (called on a schedule) requeues
tasks whose invocation died; ``fire_schedules`` (called every minute) starts the runs of due
schedule slots. Each invocation writes one structured log entry (a JSON line on
stdout) with a severity by outcome and the run and task ids as labels. Configuration comes from
the environment:

- ``LLM_SCHEDULER_STORE``: the store URL; ``firestore://$GOOGLE_CLOUD_PROJECT`` by default.
- ``LLM_SCHEDULER_OFFLINE``: ``1`` to answer every model step with the offline model.
- ``LLM_SCHEDULER_MODELS_FILE``: a models file extending the built-in registry.
- ``LLM_SCHEDULER_FUNCTION_MODULES``: comma-separated modules to import first, registering step
  functions (``register_function``) and model providers (``register_provider``).
- ``LLM_SCHEDULER_TIMEOUT_SECONDS``: the function's timeout (540 by default, the maximum for
  event-driven functions); a task with less than a minute left hands itself off.
- ``LLM_SCHEDULER_PENDING_GRACE_SECONDS``: how long a task run may stay PENDING before the sweep
  triggers it again (300 by default).
- ``OPENAI_API_KEY``, ``GEMINI_API_KEY``, ``ANTHROPIC_API_KEY``: provider keys (Secret Manager).
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the other ``OTEL_*`` variables), with the ``otel`` extra
  installed: export spans and metrics (docs/observability.md). Each invocation flushes them
  before it returns, since an idle instance may be frozen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import flask
import functions_framework
from cloudevents.http.event import CloudEvent
from google.protobuf import json_format

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, model_keys_of
from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.task import run_task
from llm_scheduler.errors import ConfigError, MissingApiKeyError, UserError
from llm_scheduler.execution.cloudevents import handle_document_event
from llm_scheduler.execution.log_entries import labels_for_path, severity_of, write_entry
from llm_scheduler.execution.run_requests import handle_run_request_event
from llm_scheduler.execution.schedules import fire_due
from llm_scheduler.execution.sweeper import DEFAULT_PENDING_GRACE_SECONDS, sweep
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.client import ModelClient, offline_from_env
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store import STORE_ENV, Store, open_store
from llm_scheduler.telemetry import flush_telemetry, setup_telemetry
from llm_scheduler.v1 import config_pb2

__all__ = [
    "fire_schedules",
    "on_run_request",
    "on_task_run",
    "run_task_http",
    "sweep_expired_leases",
]

MODELS_FILE_ENV = "LLM_SCHEDULER_MODELS_FILE"
FUNCTION_MODULES_ENV = "LLM_SCHEDULER_FUNCTION_MODULES"
TIMEOUT_ENV = "LLM_SCHEDULER_TIMEOUT_SECONDS"
PENDING_GRACE_ENV = "LLM_SCHEDULER_PENDING_GRACE_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 540.0

T = TypeVar("T")
P = ParamSpec("P")


@dataclasses.dataclass(frozen=True)
class _Services:
    """What every invocation of this process shares (built once, on first use)."""

    models: ModelRegistry
    functions: FunctionRegistry


_lock = threading.Lock()
_services: _Services | None = None
_store: Store | None = None


def _shared_services() -> _Services:
    global _services
    with _lock:
        if _services is None:
            functions = default_registry()
            # First: the modules may register model providers that the models file names.
            functions.load_modules(os.environ.get(FUNCTION_MODULES_ENV, "").split(","))
            models = ModelRegistry.with_models_file(os.environ.get(MODELS_FILE_ENV) or None)
            _services = _Services(models=models, functions=functions)
        return _services


def _flushed(entry_point: Callable[P, T]) -> Callable[P, T]:
    """An entry point that exports its spans and metrics before it returns.

    An idle instance may be frozen, its exporter threads with it. Telemetry is set up on the
    first invocation, not at import: functions-framework imports this module before it forks.
    """

    @functools.wraps(entry_point)
    def invoke(*args: P.args, **kwargs: P.kwargs) -> T:
        setup_telemetry()  # once per process; a check afterwards
        try:
            return entry_point(*args, **kwargs)
        finally:
            flush_telemetry()

    return invoke


def _shared_store() -> Store:
    # Opened lazily: functions-framework imports this module in gunicorn's master process,
    # and a connection must not cross the fork into the workers.
    global _store
    with _lock:
        if _store is None:
            url = os.environ.get(STORE_ENV)
            if not url:
                project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
                if not project:
                    raise UserError(f"set {STORE_ENV} (e.g. firestore://PROJECT)")
                url = f"firestore://{project}"
            _store = open_store(url)
        return _store


def _context(services: _Services) -> RunContext:
    # One model client per invocation: a client belongs to one event loop.
    return RunContext(
        models=ModelClient(services.models, offline=offline_from_env()),
        functions=services.functions,
    )


async def _closing(context: RunContext, work: Awaitable[T]) -> T:
    try:
        return await work
    finally:
        await context.models.aclose()


@functions_framework.cloud_event
@_flushed
def on_task_run(cloud_event: CloudEvent) -> None:
    """Runs the task run a Firestore write names, when it is runnable.

    The event data may be protobuf or JSON. An event that can never succeed (another event
    type, data that does not decode, a document that is not a task run) is logged as a warning
    and acknowledged. Other exceptions propagate, so the platform redelivers the event when
    retries are enabled; the protocol makes redeliveries safe.
    """
    started = time.monotonic()
    deadline = started + float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)
    services = _shared_services()
    store = _shared_store()
    context = _context(services)
    outcome = asyncio.run(
        _closing(
            context,
            handle_document_event(
                cloud_event.data,
                store,
                context,
                event_type=cloud_event.get("type") or "",
                content_type=cloud_event.get("datacontenttype") or "",
                deadline=deadline,
            ),
        )
    )
    _log_outcome(
        cloud_event,
        outcome.action,
        outcome.detail,
        started,
        steps_run=outcome.steps_run,
    )


@functions_framework.cloud_event
@_flushed
def on_run_request(cloud_event: CloudEvent) -> None:
    """Starts the run a created ``run_requests/{request_id}`` document asks for.

    The outcome is recorded on the request (ACCEPTED with the run id, or REJECTED with the
    problems) and logged. Undecodable events are logged as warnings and acknowledged; store
    failures propagate, so the platform redelivers the event.
    """
    started = time.monotonic()
    services = _shared_services()
    outcome = handle_run_request_event(
        cloud_event.data,
        _shared_store(),
        event_type=cloud_event.get("type") or "",
        content_type=cloud_event.get("datacontenttype") or "",
        models=services.models,
        functions=services.functions,
    )
    problems = [{"path": p.path, "message": p.message} for p in outcome.problems]
    _log_outcome(
        cloud_event,
        outcome.action,
        outcome.detail,
        started,
        run_id=outcome.run_id or None,
        problems=problems or None,
    )


def _log_outcome(
    cloud_event: CloudEvent, action: str, detail: str, started: float, **fields: Any
) -> None:
    document = str(cloud_event.get("document") or "")
    subject = str(cloud_event.get("subject") or "")
    write_entry(
        severity_of(action),
        f"{action}: {subject} {detail}".rstrip(),
        labels=labels_for_path(document or subject.removeprefix("documents/")),
        event_id=cloud_event.get("id"),
        event_type=cloud_event.get("type"),
        action=action,
        seconds=round(time.monotonic() - started, 3),
        **{key: value for key, value in fields.items() if value is not None},
    )


@functions_framework.http
@_flushed
def run_task_http(request: flask.Request) -> flask.Response:
    """Runs one task: POST ``{"task": <TaskConfig JSON>, "inputs": {...}}``.

    Returns the TaskRun record (proto JSON mapping, snake_case) with status 200, whether the
    task succeeded or failed; 400 for an invalid task or a missing API key; 405 for a method
    other than POST. ``inputs`` override the task's ``input_config`` defaults.
    """
    if request.method != "POST":
        return _json({"error": "use POST"}, 405, {"Allow": "POST"})
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("task"), dict):
        return _json({"error": 'send a JSON object {"task": {...}, "inputs": {...}}'}, 400)
    inputs = body.get("inputs") or {}
    if not isinstance(inputs, dict):
        return _json({"error": '"inputs" must be a JSON object of variables'}, 400)
    services = _shared_services()
    context = _context(services)
    try:
        task = formats.loads(
            json.dumps(body["task"]), config_pb2.TaskConfig, formats.ConfigFormat.JSON
        )
        Validator(services.models, services.functions).check_tasks([task], inputs)
        context.models.check_credentials(model_keys_of(task.steps))
    except ConfigError as error:
        problems = [{"path": p.path, "message": p.message, "hint": p.hint} for p in error.problems]
        return _json({"error": str(error), "problems": problems}, 400)
    except MissingApiKeyError as error:
        return _json({"error": str(error)}, 400)
    task_run = asyncio.run(_closing(context, run_task(task, inputs, context)))
    record = json_format.MessageToDict(task_run, preserving_proto_field_name=True)
    return _json(record, 200)


@functions_framework.http
@_flushed
def sweep_expired_leases(request: flask.Request) -> flask.Response:
    """Recovers work whose trigger never ran or whose worker died (`execution.sweeper.sweep`).

    Task runs under an expired lease go back to PENDING, task runs PENDING for longer than
    ``LLM_SCHEDULER_PENDING_GRACE_SECONDS`` (300 by default) are triggered again, and runs
    stopped between two writes are repaired or finished. Called every minute by Cloud Scheduler
    (see ``deploy/``); safe to call at any time and from several places at once. Returns what
    it did: ``requeued`` (expired leases), ``retriggered`` and ``reconciled`` (run ids).
    """
    del request  # any method: Cloud Scheduler sends POST, a person may send GET
    grace = float(os.environ.get(PENDING_GRACE_ENV) or DEFAULT_PENDING_GRACE_SECONDS)
    result = sweep(_shared_store(), pending_grace=grace)
    if result.expired:
        write_entry(
            "NOTICE", f"requeued {len(result.expired)} expired leases", paths=result.expired
        )
    if result.stale:
        write_entry(
            "WARNING",
            f"re-triggered {len(result.stale)} task runs whose trigger never ran",
            paths=result.stale,
        )
    if result.reconciled:
        write_entry(
            "WARNING",
            f"repaired or finished {len(result.reconciled)} stalled runs",
            run_ids=result.reconciled,
        )
    return _json(
        {"requeued": result.expired, "retriggered": result.stale, "reconciled": result.reconciled},
        200,
    )


@functions_framework.http
@_flushed
def fire_schedules(request: flask.Request) -> flask.Response:
    """Starts the runs of the due slots of every schedule (`execution.schedules.fire_due`).

    Called every minute by Cloud Scheduler (see ``deploy/``); safe to call at any time and from
    several places at once: each slot starts one run. Returns what it did with each slot it
    looked at: ``fired``, ``skipped`` (the previous run unfinished) and ``failed``, each a list
    of ``{"schedule_id", "slot", "run_id", "detail"}``.
    """
    del request  # any method: Cloud Scheduler sends POST, a person may send GET
    slots = fire_due(_shared_store())
    result: dict[str, list[dict[str, str]]] = {"fired": [], "skipped": [], "failed": []}
    for slot in slots:
        result[slot.action].append(
            {
                "schedule_id": slot.schedule_id,
                "slot": slot.slot.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "run_id": slot.run_id,
                "detail": slot.detail,
            }
        )
    for action, severity in (("fired", "INFO"), ("skipped", "NOTICE"), ("failed", "WARNING")):
        if result[action]:
            write_entry(
                severity, f"{action} {len(result[action])} schedule slots", slots=result[action]
            )
    return _json(result, 200)


def _json(value: Any, status: int, headers: Mapping[str, str] | None = None) -> flask.Response:
    return flask.Response(
        json.dumps(value, ensure_ascii=False),
        status=status,
        headers=dict(headers or {}),
        mimetype="application/json",
    )

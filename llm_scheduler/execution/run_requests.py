"""Run requests: any program starts a run by creating one document.

A program that is not ours (another language, the Firebase console, a plain Firestore client)
starts a run by creating ``run_requests/{request_id}`` with one of ``job_id`` (a job saved at
``jobs/{job_id}``) or ``config`` (a JobConfig in the proto JSON mapping), and optionally
``inputs``, ``offline`` and ``budget_usd``. The format is published in docs/run_requests.md and
docs/run_request.schema.json.

`handle_run_request` validates the request as the CLIs validate a config, submits the run with
the request id as its run id (`submit_job` creates a run only if absent, so a request handled
twice starts one run), and records the outcome on the request document::

    {"status": "ACCEPTED", "run_id": "<request id>", "handled_at": "..."}
    {"status": "REJECTED", "error": "...", "problems": [{"path", "message", "hint"}, ...], ...}

In the cloud the ``on_run_request`` function calls it for each created request (a Firestore
trigger on ``run_requests/{request_id}``); locally a dispatcher calls
`handle_pending_run_requests`, which finds the requests not handled yet (`pending_run_requests`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from llm_scheduler.config import formats
from llm_scheduler.config.validation import Validator, tasks_model_keys
from llm_scheduler.engine.context import RunContext
from llm_scheduler.errors import ConfigError, ConfigProblem, StoreError, UserError
from llm_scheduler.execution import blobs
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.jsonvalue import describe_non_json
from llm_scheduler.models.client import ModelClient
from llm_scheduler.models.registry import ModelRegistry
from llm_scheduler.store.base import Doc, Store, Transaction, lock_free
from llm_scheduler.v1 import config_pb2

__all__ = [
    "REQUEST_FIELDS",
    "RUN_REQUESTS",
    "RequestOutcome",
    "RequestStatus",
    "handle_pending_run_requests",
    "handle_run_request",
    "handle_run_request_event",
    "parse_run_request_path",
    "pending_run_requests",
    "run_request_path",
]

_log = logging.getLogger(__name__)

RUN_REQUESTS = "run_requests"
# The fields a requester writes; `status` may also be written, as PENDING.
REQUEST_FIELDS = ("job_id", "config", "inputs", "offline", "budget_usd")
# The fields the scheduler writes when it handles a request.
_RESULT_FIELDS = ("status", "run_id", "error", "problems", "handled_at")
# Enough to show what is wrong without making the request document large.
_MAX_PROBLEMS = 50
_MAX_ERROR_CHARS = 4000


class RequestStatus:
    """The ``status`` of a run request."""

    PENDING = "PENDING"  # optional: a request without a status is pending too
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


_HANDLED = (RequestStatus.ACCEPTED, RequestStatus.REJECTED)


@dataclasses.dataclass(frozen=True)
class RequestOutcome:
    """What handling a run request (or an event about one) did.

    Attributes:
        action: ``accepted`` (the run is submitted), ``rejected`` (the request is invalid),
            ``noop`` (already handled, or gone) or ``discarded`` (an event that names no run
            request, or does not decode).
        request_id: The request's id (empty when the event named none).
        run_id: The run's id, when accepted.
        detail: The error (rejected) or the reason (noop, discarded).
        problems: Each problem found, when rejected.
    """

    action: str
    request_id: str = ""
    run_id: str = ""
    detail: str = ""
    problems: tuple[ConfigProblem, ...] = ()


def run_request_path(request_id: str) -> str:
    """The path of a run request."""
    return f"{RUN_REQUESTS}/{request_id}"


def parse_run_request_path(path: str) -> str | None:
    """The request id of a run-request path, or None for any other path."""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == RUN_REQUESTS and parts[1]:
        return parts[1]
    return None


def pending_run_requests(store: Store) -> list[str]:
    """The ids of the run requests not handled yet, in id order.

    Reads every request document (unhandled ones have no status to query on): meant for the
    local dispatcher, whose SQLite reads are cheap. In the cloud the trigger hands each request
    over once, on creation.
    """
    return [
        path.rsplit("/", 1)[1]
        for path, doc in store.list(RUN_REQUESTS)
        if doc.get("status") not in _HANDLED
    ]


@lock_free
def handle_pending_run_requests(
    store: Store, context: RunContext | None = None
) -> list[RequestOutcome]:
    """Handles every pending run request (the local dispatcher's counterpart of the trigger).

    A request whose handling fails on a store error is logged and left pending, so a later
    call handles it.

    Args:
        store: The store the requests and runs live in.
        context: Its model registry, functions and model client (for the API-key check) are
            what requests are validated against; the defaults otherwise.
    """
    outcomes = []
    for request_id in pending_run_requests(store):
        try:
            outcomes.append(
                handle_run_request(
                    store,
                    request_id,
                    models=None if context is None else context.models.registry,
                    functions=None if context is None else context.functions,
                    credentials=None if context is None else context.models,
                )
            )
        except StoreError as error:
            _log.warning("run request %s left pending: %s", request_id, error)
    return outcomes


def handle_run_request(
    store: Store,
    request_id: str,
    *,
    models: ModelRegistry | None = None,
    functions: FunctionRegistry | None = None,
    credentials: ModelClient | None = None,
    clock: Callable[[], float] = time.time,
) -> RequestOutcome:
    """Validates a run request, submits its run and records the outcome on the request.

    Idempotent: a request already ACCEPTED or REJECTED is a no-op, the run id is the request id
    and `submit_job` creates a run only if absent, and the outcome is recorded in a transaction
    that writes only to a request not handled yet. When two handlers race, the first outcome
    recorded stays, and a request whose run exists always ends ACCEPTED.

    Args:
        store: The store holding the request, the saved jobs and the runs.
        request_id: The id of the request document (``run_requests/{request_id}``).
        models: The model registry that model keys must resolve in (the built-in one by default).
        functions: The function registry that function steps must resolve in.
        credentials: When given (and not offline), the API keys of the job's models are
            checked with it, as ``job_submitter`` does; leave it out where the environment is not
            the workers' (the ``on_run_request`` function holds no provider keys).
        clock: Wall-clock time, for ``handled_at``.

    Raises:
        StoreError: The store failed; the request is left as it was.
    """
    path = run_request_path(request_id)
    request = store.get(path)
    if request is None:
        return RequestOutcome("noop", request_id, detail=f"no run request at {path}")
    if request.get("status") in _HANDLED:
        return RequestOutcome("noop", request_id, detail=f"already {request['status']}")
    try:
        job, inputs, offline = _read_request(store, request, models, functions, credentials)
        budget_usd = float(request.get("budget_usd") or 0.0)
    except ConfigError as error:
        outcome = RequestOutcome(
            "rejected",
            request_id,
            detail=f"run request {path} is invalid: {error}",
            problems=tuple(error.problems),
        )
    else:
        run_id = submit_job(
            store, job, inputs=inputs, run_id=request_id, offline=offline, budget_usd=budget_usd
        )
        outcome = RequestOutcome("accepted", request_id, run_id=run_id)
    return _record(store, outcome, clock)


def handle_run_request_event(
    data: object,
    store: Store,
    *,
    event_type: str = "",
    content_type: str = "",
    models: ModelRegistry | None = None,
    functions: FunctionRegistry | None = None,
) -> RequestOutcome:
    """What the run-request trigger does with one delivery: handle the request it names.

    An event that can never succeed (not a Firestore document event, data that does not
    decode, a document that is not a run request) is ``discarded``; store failures raise, so
    that the platform delivers the event again.

    Args:
        data: The event data (see `decode_document_event`).
        store: The store holding the requests.
        event_type: The CloudEvent ``type``; not checked when empty.
        content_type: The CloudEvent ``datacontenttype``.
        models: See `handle_run_request`.
        functions: See `handle_run_request`.
    """
    # Imported here: cloudevents imports the dispatcher, which calls this module.
    from llm_scheduler.execution.cloudevents import DOCUMENT_EVENT_TYPES, decode_document_event

    if event_type and event_type not in DOCUMENT_EVENT_TYPES:
        return RequestOutcome(
            "discarded", detail=f"not a Firestore document event: type {event_type!r}"
        )
    try:
        event = decode_document_event(data, content_type)
    except ValueError as error:
        return RequestOutcome("discarded", detail=str(error))
    request_id = parse_run_request_path(event.path)
    if request_id is None:
        return RequestOutcome(
            "discarded",
            detail=f"not a run request: {event.path} (the trigger's path pattern must be "
            f"{RUN_REQUESTS}/{{request_id}})",
        )
    if event.deleted:
        return RequestOutcome("noop", request_id, detail="run request deleted")
    return handle_run_request(store, request_id, models=models, functions=functions)


def _read_request(
    store: Store,
    request: Doc,
    models: ModelRegistry | None,
    functions: FunctionRegistry | None,
    credentials: ModelClient | None,
) -> tuple[config_pb2.JobConfig, dict[str, Any], bool]:
    """The job, inputs and offline flag of a valid request.

    Raises:
        ConfigError: Every problem found, with paths into the request document (or into the
            saved job, naming it as the problem's file).
    """
    problems = _field_problems(request)
    if problems:
        raise ConfigError(problems)
    inputs: dict[str, Any] = dict(request.get("inputs") or {})
    offline = bool(request.get("offline"))
    if "config" in request:
        file, prefix = "", "config."
        text = json.dumps(request["config"])
    else:
        job_id = request["job_id"]
        file, prefix = docs.job_definition_path(job_id), ""
        saved = store.get(file)
        if saved is not None and ("config" in saved or blobs.BLOBS_FIELD in saved):
            # As `save_job_definition` writes it; a program may also write the bare config.
            saved = blobs.inline(store, saved, f"job definition {job_id!r}")
            saved, prefix = saved.get("config") or {}, "config."
        if saved is None:
            raise ConfigError.single(
                "job_id",
                f"no job {job_id!r} is saved at {file}",
                "save the job there first (job_submitter saves each job it submits), or send "
                'its config in "config"',
            )
        text = json.dumps(saved)
    try:
        job = formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file=file)
        Validator(models or ModelRegistry(), functions or default_registry(), file=file).check_job(
            job, inputs
        )
    except ConfigError as error:
        raise ConfigError([_prefixed(p, prefix) for p in error.problems]) from None
    if credentials is not None and not offline and not credentials.offline:
        try:
            credentials.check_credentials(tasks_model_keys(job.tasks))
        except UserError as error:
            raise ConfigError.single(
                "config" if file == "" else "job_id",
                str(error),
                'set the key where the tasks run, or send "offline": true',
            ) from None
    return job, inputs, offline


def _field_problems(request: Doc) -> list[ConfigProblem]:
    """Problems with the request's own fields: names, types, JSON values."""
    problems: list[ConfigProblem] = []
    known = (*REQUEST_FIELDS, "status")
    for key in request:
        if key in _RESULT_FIELDS and key != "status":
            problems.append(
                ConfigProblem(key, f"{key!r} is written by the scheduler", "leave it out")
            )
        elif key not in known:
            problems.append(
                ConfigProblem(
                    key,
                    f"unknown field {key!r} in a run request (known fields: "
                    f"{', '.join(REQUEST_FIELDS)})",
                    "remove it (see docs/run_requests.md)",
                )
            )
    status = request.get("status")
    if status is not None and status != RequestStatus.PENDING:
        problems.append(
            ConfigProblem(
                "status",
                f"a new request's status is {RequestStatus.PENDING!r} or absent, not {status!r}",
                "leave it out",
            )
        )
    has_job_id, has_config = "job_id" in request, "config" in request
    if has_job_id == has_config:
        problems.append(
            ConfigProblem(
                "",
                "a run request names its job with exactly one of job_id and config",
                'give "job_id" (a job saved at jobs/{job_id}) or "config" (a JobConfig)',
            )
        )
    job_id = request.get("job_id")
    if has_job_id and (not isinstance(job_id, str) or not job_id or "/" in job_id):
        problems.append(
            ConfigProblem(
                "job_id", f"not a job id: {job_id!r}", "give the id of a job saved at jobs/{id}"
            )
        )
    if has_config and not isinstance(request["config"], Mapping):
        problems.append(
            ConfigProblem(
                "config",
                f"a JobConfig is a map, not a {type(request['config']).__name__}",
                "give the job config in the proto JSON mapping, as in examples/*.json",
            )
        )
    inputs = request.get("inputs")
    if inputs is not None and not isinstance(inputs, Mapping):
        problems.append(
            ConfigProblem(
                "inputs",
                f"inputs are a map of variable names to values, not a {type(inputs).__name__}",
                'e.g. "inputs": {"topic": "owls"}',
            )
        )
    offline = request.get("offline")
    if offline is not None and not isinstance(offline, bool):
        problems.append(ConfigProblem("offline", f"offline is true or false, not {offline!r}"))
    budget = request.get("budget_usd")
    if budget is not None and (
        isinstance(budget, bool)
        or not isinstance(budget, int | float)
        or not math.isfinite(budget)
        or budget <= 0
    ):
        problems.append(
            ConfigProblem(
                "budget_usd",
                f"a budget is an amount in US dollars above 0, not {budget!r}",
                'e.g. "budget_usd": 0.5, or leave it out for no budget',
            )
        )
    for key in ("config", "inputs"):
        value = request.get(key)
        where = describe_non_json(value) if isinstance(value, Mapping) else None
        if where is not None:
            problems.append(
                ConfigProblem(
                    key,
                    f"holds a value JSON cannot hold: {where.replace('$', key, 1)}",
                    "use strings, numbers, booleans, null, arrays and maps (timestamps as "
                    "RFC 3339 strings)",
                )
            )
    return problems


def _prefixed(problem: ConfigProblem, prefix: str) -> ConfigProblem:
    path = f"{prefix}{problem.path}" if problem.path else prefix.rstrip(".")
    return dataclasses.replace(problem, path=path)


def _record(store: Store, outcome: RequestOutcome, clock: Callable[[], float]) -> RequestOutcome:
    """Writes the outcome on the request, unless another handler recorded one first."""
    path = run_request_path(outcome.request_id)
    run_path = docs.job_run_path(outcome.request_id)

    def record(tx: Transaction) -> RequestOutcome:
        current = tx.get(path)
        if current is None:
            return RequestOutcome("noop", outcome.request_id, detail=f"{path} was deleted")
        run_exists = tx.get(run_path) is not None
        status = current.get("status")
        rejected = status == RequestStatus.REJECTED
        if status == RequestStatus.ACCEPTED or (rejected and not run_exists):
            return RequestOutcome("noop", outcome.request_id, detail=f"already {status}")
        fields: Doc = {"handled_at": docs.iso(clock())}
        if run_exists or outcome.action == "accepted":
            # Ours or another handler's: a request whose run exists is accepted.
            fields.update(status=RequestStatus.ACCEPTED, run_id=outcome.request_id)
            tx.update(path, fields)
            return dataclasses.replace(
                outcome, action="accepted", run_id=outcome.request_id, detail="", problems=()
            )
        fields.update(
            status=RequestStatus.REJECTED,
            error=outcome.detail[:_MAX_ERROR_CHARS],
            problems=[
                {"path": p.path, "message": p.message, "hint": p.hint}
                | ({"document": p.file} if p.file else {})
                for p in outcome.problems[:_MAX_PROBLEMS]
            ],
        )
        if describe_non_json(current) is None:
            tx.update(path, fields)
        else:
            # Another client may write Firestore values JSON cannot hold (a timestamp), which
            # such a request is rejected for; the store keeps JSON documents only, so those
            # values are written back as text (timestamps in RFC 3339).
            tx.set(path, {**_as_json(current), **fields})
        return outcome

    return store.run_transaction(record)


def _as_json(doc: Doc) -> Doc:
    """A document with every value JSON cannot hold written as text."""

    def text(value: object) -> str:
        if isinstance(value, datetime.datetime):
            return value.isoformat().replace("+00:00", "Z")
        return str(value)

    converted: Doc = json.loads(json.dumps(doc, default=text))
    return converted

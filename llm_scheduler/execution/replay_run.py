"""Replaying a stored run through the store: plan it, then submit it as a new, linked run.

A replay is an ordinary event-driven run (any dispatcher or cloud function runs it) that carries
the recorded run it replays, edited or not: every worker reuses the recorded steps whose
fingerprint is unchanged (`RunConfig.replay`), so only the edited steps and what depends on them
call a model again. The new run's ``parent_run_id`` is the recorded run.

The web UI, the API and ``job_runner --replay_run_id --store`` all go through here, so what the
plan shows before running is what the replay does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.validation import Validator
from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.replay_plan import ReplayPlan, plan_replay
from llm_scheduler.engine.what_if import Edit, apply_edits
from llm_scheduler.errors import UserError
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store.base import Store
from llm_scheduler.v1 import run_pb2

__all__ = ["edited_run", "plan_stored_replay", "submit_replay"]


def edited_run(store: Store, run_id: str, edits: Sequence[Edit] = ()) -> run_pb2.JobRun:
    """A stored run with the edits applied (see `what_if.apply_edits`).

    Raises:
        UserError: There is no such run, or an edit does not fit it.
    """
    recorded = read_job_run(store, run_id)
    if recorded is None:
        raise UserError(f"no job run {run_id!r} in {store.url}")
    return apply_edits(recorded, edits)


def plan_stored_replay(
    store: Store, run_id: str, edits: Sequence[Edit], context: RunContext
) -> ReplayPlan:
    """What replaying a stored run with the edits will reuse and run, before anything runs.

    Raises:
        UserError: There is no such run, or an edit does not fit it.
        ConfigError: An edit makes the config invalid (e.g. a prompt naming an unknown variable).
    """
    edited = edited_run(store, run_id, edits)
    _validate(edited, context)
    return plan_replay(edited.config, edited, context)


def submit_replay(
    store: Store,
    source: run_pb2.JobRun,
    context: RunContext,
    *,
    inputs: Mapping[str, Any] | None = None,
    offline: bool | None = None,
    run_id: str = "",
) -> str:
    """Submits a replay of a recorded (possibly edited) run; returns the new run's id.

    Args:
        store: Where the new run is committed (and any worker runs it).
        source: The recorded run with its edits; its config is what the replay runs.
        context: Models and functions, to validate the config as the workers will run it.
        inputs: Job inputs over the recorded ones.
        offline: Answer model steps with the offline model; by default, as the recorded run did
            when it is in ``store``.
        run_id: The new run's id; a new one by default.

    Raises:
        ConfigError: The (edited) config is not valid.
    """
    variables = {**struct_to_dict(source.inputs), **(inputs or {})}
    _validate(source, context, variables)
    if offline is None:
        recorded = store.get(docs.job_run_path(source.run_id)) if source.run_id else None
        offline = bool(recorded and recorded.get("offline"))
    return submit_job(
        store,
        source.config,
        inputs=variables,
        run_id=run_id,
        parent_run_id=source.run_id,
        offline=offline,
        replay_source=source,
    )


def _validate(
    source: run_pb2.JobRun, context: RunContext, variables: Mapping[str, Any] | None = None
) -> None:
    names = variables if variables is not None else struct_to_dict(source.inputs)
    validator = Validator(context.models.registry, context.functions, file=f"run {source.run_id}")
    validator.check_job(source.config, names)

"""Planning a replay: which steps it reuses, which it runs again, and what those may cost.

Everything is decided before anything is called.

The plan walks the job as the engine would, rendering each step's request with the same code
(`prepare_request`) and looking its fingerprint up in the recorded run (`ReplaySource`), so a
step the plan calls reused is reused by the replay. A step that will run produces a value not
known yet; every later step that reads it is planned to run too (it is reused after all if the
new value happens to equal the recorded one). Nothing is called: function steps are not run
either, so a plan is free and instant.

Costs are estimated from the recorded usage of the same step (the same task and position) in
the recorded run, or of the run its result was reused from when that is the run given here;
a step the recorded run never ran has no estimate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.engine.context import RunContext
from llm_scheduler.engine.items import collect_outputs, has_items, item_task, item_values, items_of
from llm_scheduler.engine.plans import output_plan, step_plan
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.step import prepare_request
from llm_scheduler.engine.sub_job import sub_job_inputs
from llm_scheduler.engine.values import apply_outputs, task_variables
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["PlannedStep", "ReplayPlan", "plan_replay"]

REUSE = "reuse"
RUN = "run"
# The step kinds that call a model.
_CALLS = ("model", "embedding")


# The value of a variable that a step which runs again will produce: a text no model or person
# writes, so it stays recognisable inside other values (a variable combined with ``concat``).
_UNKNOWN = "\x00<not known before the replay>\x00"


def _is_unknown(value: Any) -> bool:
    """Whether a value is, or holds, a value not known before the replay."""
    if isinstance(value, str):
        return _UNKNOWN in value
    if isinstance(value, Mapping):
        return any(_is_unknown(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_is_unknown(item) for item in value)
    return False


@dataclasses.dataclass(frozen=True)
class PlannedStep:
    """What the replay will do with one step.

    Attributes:
        task_id: The step's task.
        step_index: Its position in the task.
        name: Its name or id.
        step_type: ``model``, ``function``, ``embedding`` or ``sub_job`` (whose child's
            steps are planned as steps of their own, labelled ``T.s>child_task``).
        action: ``reuse`` (the recorded result is used: no call, no cost) or ``run``.
        reason: Why, in a few words.
        model_key: The model key of a model or embedding step.
        estimated_cost_usd: The recorded cost of the step, for a step that runs (0 when it is
            reused); None when the recorded run has no cost for it.
        estimated_input_tokens: The recorded input tokens, likewise.
        estimated_output_tokens: The recorded output tokens, likewise.
    """

    task_id: str
    step_index: int
    name: str
    step_type: str
    action: str
    reason: str
    model_key: str = ""
    estimated_cost_usd: float | None = 0.0
    estimated_input_tokens: int | None = 0
    estimated_output_tokens: int | None = 0

    def to_json(self) -> dict[str, Any]:
        """The planned step as a JSON object."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ReplayPlan:
    """A replay's plan: every step the new run can reach, in run order.

    Attributes:
        source_run_id: The recorded run.
        steps: The planned steps.
    """

    source_run_id: str
    steps: list[PlannedStep]

    @property
    def reused(self) -> int:
        """How many steps are reused."""
        return sum(step.action == REUSE for step in self.steps)

    @property
    def to_run(self) -> int:
        """How many steps run again."""
        return sum(step.action == RUN for step in self.steps)

    @property
    def model_calls(self) -> int:
        """How many model calls (queries and embeddings) the replay makes."""
        return sum(step.action == RUN and step.step_type in _CALLS for step in self.steps)

    @property
    def estimated_cost_usd(self) -> float:
        """The estimated cost of the steps that run (those without an estimate count 0)."""
        return sum(step.estimated_cost_usd or 0.0 for step in self.steps if step.action == RUN)

    @property
    def unestimated(self) -> int:
        """How many steps that run have no cost estimate."""
        return sum(step.action == RUN and step.estimated_cost_usd is None for step in self.steps)

    def summary(self) -> str:
        """One line: reused, run, model calls and estimated cost."""
        text = (
            f"{self.reused} of {len(self.steps)} steps reused, {self.to_run} run "
            f"({self.model_calls} model calls), estimated ${self.estimated_cost_usd:.6f}"
        )
        if self.unestimated:
            text += f" plus {self.unestimated} steps with no recorded cost"
        return text

    def to_json(self) -> dict[str, Any]:
        """The plan as a JSON object."""
        return {
            "source_run_id": self.source_run_id,
            "reused": self.reused,
            "to_run": self.to_run,
            "model_calls": self.model_calls,
            "estimated_cost_usd": self.estimated_cost_usd,
            "unestimated": self.unestimated,
            "summary": self.summary(),
            "steps": [step.to_json() for step in self.steps],
        }


def plan_replay(
    job: config_pb2.JobConfig,
    source: run_pb2.JobRun,
    context: RunContext,
    *,
    inputs: Mapping[str, Any] | None = None,
) -> ReplayPlan:
    """Plans a replay of ``source`` (possibly edited, see `what_if.apply_edits`) with ``job``.

    Args:
        job: The (validated) config the replay runs: the recorded one, or an edited one.
        source: The recorded run, with any edits applied.
        context: Models (to resolve model keys as the run will) and functions.
        inputs: The replay's job inputs; the recorded run's inputs by default.
    """
    replay = ReplaySource(source)
    recorded = {
        (task_run.task_id, step.index): step for task_run in source.tasks for step in task_run.steps
    }
    # A map's items are planned as tasks labelled `T[i]`, a strategy's by variation name.
    recorded.update(
        ((item.variation or f"{item.task_id}[{item.item_index}]", step.index), step)
        for task_run in source.tasks
        for item in task_run.items
        for step in item.steps
    )
    graph = TaskGraph.from_job(job)
    start = job.start_task or graph.roots[0]
    reachable = graph.reachable_from(start)
    tasks = {task.task_id: task for task in job.tasks}
    job_input = {
        **dataflow.payload(job.input_config),
        **(struct_to_dict(source.inputs) if inputs is None else dict(inputs)),
    }
    outputs_of: dict[str, dict[str, Any]] = {}
    planned: list[PlannedStep] = []
    for task_id in graph.topological_order():
        if task_id not in reachable:
            continue
        task = tasks[task_id]
        preds = [p for p in graph.predecessors[task_id] if p in reachable]
        variables = task_variables(job_input, task, [(p, outputs_of[p]) for p in preds])
        scope: dict[str, Any] = {**dataflow.task_defaults(task), **variables}
        scope.update(replay.edited_task_inputs(task_id))
        if has_items(task):
            outputs_of[task_id] = _plan_map(task, scope, context, replay, recorded, planned)
            continue
        outputs_of[task_id] = _plan_task(
            task, task_id, task_id, scope, context, replay, recorded, planned
        )
    return ReplayPlan(source.run_id, planned)


def _plan_task(
    task: config_pb2.TaskConfig,
    label: str,
    task_run_id: str,
    scope: dict[str, Any],
    context: RunContext,
    replay: ReplaySource,
    recorded: Mapping[tuple[str, int], run_pb2.StepRun],
    planned: list[PlannedStep],
) -> dict[str, Any]:
    """Plans a task's steps (or a map item's, labelled `T[i]`); returns its outputs."""
    response: Any = None
    for index, step in enumerate(task.steps):
        if step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
            where = (label, task_run_id, index)
            entry, outputs, response = _plan_sub_job(step, where, scope, context, replay, planned)
        else:
            entry, outputs, response = _plan_step(
                step, index, label, scope, context, replay, recorded
            )
        planned.append(entry)
        scope.update(outputs)
    return _task_outputs(task, scope, response)


def _plan_sub_job(
    step: config_pb2.StepConfig,
    where: tuple[str, str, int],
    scope: dict[str, Any],
    context: RunContext,
    replay: ReplaySource,
    planned: list[PlannedStep],
) -> tuple[PlannedStep, dict[str, Any], Any]:
    """Plans a sub-job step: its child's steps (added to ``planned``), then the step itself.

    The child replays against its recorded run (as `engine.sub_job` does), with the inputs the
    step routes to it. The step is reused when its child reuses every step; its own entry has
    no cost (its child's steps carry it).

    Args:
        step: The sub-job step.
        where: Its task's label (``T`` or ``T[i]``), task run id (``T`` or ``T~000003``) and
            the step's index.
        scope: The step's variables.
        context: Models and functions.
        replay: The recorded run.
        planned: The plan so far; the child's steps are added, labelled ``T.s>child_task``.
    """
    label, task_run_id, index = where
    plan = step_plan(step)
    base = PlannedStep(label, index, plan.label or f"step {index + 1}", plan.kind, RUN, "")
    unknown_outputs = dict.fromkeys(plan.outputs.names or (dataflow.RESPONSE,), _UNKNOWN)
    local = {**plan.fresh_defaults(), **scope} if plan.defaults else scope
    waiting = [name for name in plan.used if _is_unknown(local.get(name))]
    if waiting:
        reason = f"reads {', '.join(repr(n) for n in waiting)}, which a step before it recomputes"
        return dataclasses.replace(base, reason=reason), unknown_outputs, _UNKNOWN
    try:
        inputs = sub_job_inputs(step, local)
    except Exception as error:  # the replay fails here too
        return (
            dataclasses.replace(base, reason=f"cannot be rendered: {error}"),
            unknown_outputs,
            _UNKNOWN,
        )
    child = replay.child_run(task_run_id, index)
    child_plan = plan_replay(
        step.sub_job_config.job, child or run_pb2.JobRun(), context, inputs=inputs
    )
    planned.extend(
        dataclasses.replace(entry, task_id=f"{label}.{index}>{entry.task_id}")
        for entry in child_plan.steps
    )
    if child is None or child.status != run_pb2.RUN_STATUS_SUCCEEDED or child_plan.to_run:
        reason = (
            f"its child run runs {child_plan.to_run} of {len(child_plan.steps)} steps again"
            if child is not None
            else "no recorded child run"
        )
        return dataclasses.replace(base, reason=reason), unknown_outputs, _UNKNOWN
    response = struct_to_dict(child.outputs)
    try:
        outputs = apply_outputs(plan.outputs, local, response, plan.defaults)
    except Exception:
        outputs = unknown_outputs
    entry = dataclasses.replace(base, action=REUSE, reason="its child run reuses every step")
    return entry, outputs, response


def _plan_map(
    task: config_pb2.TaskConfig,
    scope: dict[str, Any],
    context: RunContext,
    replay: ReplaySource,
    recorded: Mapping[tuple[str, int], run_pb2.StepRun],
    planned: list[PlannedStep],
) -> dict[str, Any]:
    """Plans a map's items (or a strategy's variations) when they are known; returns its outputs.

    A map's outputs are lists, a strategy's objects keyed by variation name, or unknown.
    """
    names = dataflow.task_output_names(task)
    try:
        values = item_values(task, scope)
    except Exception:  # unknown before the replay, or the replay fails here too
        values = None
    if values is None or _is_unknown(values):
        # Which items there will be is not known: the map's steps run, once per item.
        _plan_task(
            task, task.task_id, task.task_id, dict(scope), context, replay, recorded, planned
        )
        return dict.fromkeys(names, _UNKNOWN)
    items = items_of(task, values)
    outputs_of: list[dict[str, Any]] = []
    for item in items:
        item_scope = {**scope, **item.inputs}
        item_scope.update(replay.edited_task_inputs(item.run_id))
        outputs = _plan_task(
            item_task(task, item),
            item.label,
            item.run_id,
            item_scope,
            context,
            replay,
            recorded,
            planned,
        )
        outputs_of.append({name: outputs.get(name, _UNKNOWN) for name in names})
    return collect_outputs(task, items, outputs_of)


def _plan_step(
    step: config_pb2.StepConfig,
    index: int,
    task_id: str,
    scope: dict[str, Any],
    context: RunContext,
    replay: ReplaySource,
    recorded: Mapping[tuple[str, int], run_pb2.StepRun],
) -> tuple[PlannedStep, dict[str, Any], Any]:
    plan = step_plan(step)
    kind = plan.kind
    if plan.query is not None:
        model_key = plan.query.model_key
    else:
        model_key = plan.embedding.model_key if plan.embedding is not None else ""
    before = recorded.get((task_id, index))
    base = PlannedStep(task_id, index, plan.label or f"step {index + 1}", kind, RUN, "", model_key)
    unknown_outputs = dict.fromkeys(plan.outputs.names or (dataflow.RESPONSE,), _UNKNOWN)
    local = {**plan.fresh_defaults(), **scope} if plan.defaults else scope
    waiting = [name for name in plan.used if _is_unknown(local.get(name))]
    if waiting:
        reason = f"reads {', '.join(repr(n) for n in waiting)}, which a step before it recomputes"
        return _run(base, reason, before, replay), unknown_outputs, _UNKNOWN
    record = run_pb2.StepRun(step_type=step.step_type)  # `_why_changed` reads it
    try:
        prepare_request(step, plan, local, record, context)
    except Exception as error:  # the replay will fail here too; say so
        return _run(base, f"cannot be rendered: {error}", before, replay), unknown_outputs, _UNKNOWN
    reuse = replay.take(record.fingerprint)
    if reuse is None:
        return _run(base, _why_changed(record, before), before, replay), unknown_outputs, _UNKNOWN
    if reuse.outputs_edited and not reuse.response_edited:
        outputs, reason = reuse.outputs, "recorded result reused, with the edited outputs"
    else:
        try:
            outputs = apply_outputs(plan.outputs, local, reuse.response, plan.defaults)
        except Exception:
            outputs = unknown_outputs
        reason = (
            "recorded result reused, with the edited response"
            if reuse.response_edited
            else "unchanged: recorded result reused"
        )
    entry = dataclasses.replace(base, action=REUSE, reason=reason)
    return entry, outputs, reuse.response


def _run(
    base: PlannedStep, reason: str, before: run_pb2.StepRun | None, replay: ReplaySource
) -> PlannedStep:
    """``base`` planned to run, with the recorded usage of the same step as its estimate."""
    unknown = before is None or (
        # A model step's usage stayed with the run it was reused from, or with the cache.
        base.step_type in _CALLS
        and (
            (bool(before.reused_from_run_id) and before.reused_from_run_id != replay.run_id)
            or before.cache_hit
        )
    )
    if unknown or before is None:
        return dataclasses.replace(
            base,
            reason=reason,
            estimated_cost_usd=None,
            estimated_input_tokens=None,
            estimated_output_tokens=None,
        )
    return dataclasses.replace(
        base,
        reason=reason,
        estimated_cost_usd=before.cost_usd,
        estimated_input_tokens=before.usage.input_tokens,
        estimated_output_tokens=before.usage.output_tokens,
    )


def _why_changed(record: run_pb2.StepRun, before: run_pb2.StepRun | None) -> str:
    if before is None or before.status != run_pb2.RUN_STATUS_SUCCEEDED:
        return "no recorded result for this step"
    if record.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        if record.function_name != before.function_name:
            return "function changed"
        return "function request changed"
    parameters = struct_to_dict(record.parameters), struct_to_dict(before.parameters)
    compared: tuple[tuple[str, Any, Any], ...]
    if record.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        compared = (
            ("model", record.model_key, before.model_key),
            ("input", record.embedding_input, before.embedding_input),
            ("dimensions", *parameters),
        )
    else:
        compared = (
            ("model", record.model_key, before.model_key),
            ("system prompt", record.system_prompt, before.system_prompt),
            ("user prompt", record.user_prompt, before.user_prompt),
            ("parameters", *parameters),
        )
    changed = [label for label, now, then in compared if now != then]
    return f"{' and '.join(changed) or 'request'} changed"


def _task_outputs(
    task: config_pb2.TaskConfig, scope: Mapping[str, Any], response: Any
) -> dict[str, Any]:
    """The task's outputs as the replay will compute them, unknown where they cannot be yet."""
    configured = output_plan(task.output_config)
    if not configured.items:
        names = dataflow.task_output_names(task)
        return {name: scope[name] for name in names if name in scope}
    outputs: dict[str, Any] = {}
    bound = {**scope, dataflow.RESPONSE: response}
    for key, template in configured.items:
        if template is None:
            outputs[key] = scope.get(key, response)
            continue
        if any(_is_unknown(bound.get(name)) for name in template.names):
            outputs[key] = _UNKNOWN
            continue
        try:
            outputs[key] = template.render_value(bound)
        except Exception:  # the replay fails here too; what follows cannot be known
            outputs[key] = _UNKNOWN
    return outputs

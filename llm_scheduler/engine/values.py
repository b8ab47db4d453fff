"""Run-time data flow: the variables a task starts with and the outputs of steps and tasks.

The rules are in docs/config_reference.md ("Data flow"); `llm_scheduler.config.dataflow` holds
the parts validation shares.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from typing import Any

from llm_scheduler.config import dataflow
from llm_scheduler.config.template import Template, format_value
from llm_scheduler.engine.plans import OutputPlan, TaskPlan, task_plan
from llm_scheduler.v1 import config_pb2

__all__ = [
    "apply_outputs",
    "planned_task_outputs",
    "render_request",
    "task_outputs",
    "task_variables",
]


def task_variables(
    job_input: Mapping[str, Any],
    task: config_pb2.TaskConfig,
    upstream: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    plan: TaskPlan | None = None,
) -> dict[str, Any]:
    """The variables a task starts with.

    Layers, later ones winning: the task's ``input_config`` defaults, the job input, then the
    outputs of its predecessors. A config default is only a default: a value given at run time
    (``--var``, the ``inputs`` of a run) or by the job wins over it, as a task variable wins
    over a step default. A name several predecessors produce is combined as the task's
    ``{"$combine": MODE}`` says (validation requires one).

    Args:
        job_input: The job's input variables (its ``input_config`` and the run's inputs), or a
            task run's inputs.
        task: The task.
        upstream: ``(task_id, outputs)`` of each predecessor, in the job's task order.
        plan: The task's plan (`plans.task_plan`), when the caller has it.
    """
    if plan is None:
        plan = task_plan(task)
    variables = {**plan.fresh_defaults(), **job_input} if plan.defaults else dict(job_input)
    combine = plan.combine
    if not combine:  # no name is combined: each is the last predecessor's that produced it
        for _, outputs in upstream:
            variables.update(outputs)
        return variables
    produced: dict[str, list[tuple[str, Any]]] = {}
    for task_id, outputs in upstream:
        for name, value in outputs.items():
            produced.setdefault(name, []).append((task_id, value))
    for name, sources in produced.items():
        mode = combine.get(name)
        if mode is None or (len(sources) == 1 and mode == "first"):
            variables[name] = sources[-1][1]
        elif mode == "list":
            variables[name] = [value for _, value in sources]
        elif mode == "by_task":
            variables[name] = dict(sources)
        elif mode == "concat":
            variables[name] = "\n\n".join(format_value(value) for _, value in sources)
        else:
            variables[name] = sources[0][1]
    return variables


def apply_outputs(
    plan: OutputPlan, scope: Mapping[str, Any], response: Any, passthrough: Container[str]
) -> dict[str, Any]:
    """Computes outputs from a planned ``output_config`` (`plans.output_plan`).

    For each key: a template value is rendered with ``%response%`` bound (and the scope's
    variables); any other value passes the variable of that name through when the key is in
    ``passthrough``, else takes the response. An empty config gives ``{"response": response}``.

    Raises:
        InterpolationError: A template names a missing variable or field.
    """
    if not plan.items:
        return {dataflow.RESPONSE: response}
    bound: Mapping[str, Any] | None = None
    outputs: dict[str, Any] = {}
    for key, template in plan.items:
        if template is not None:
            if bound is None:  # the scope is not copied: it may hold hundreds of variables
                bound = _WithResponse(scope, response)
            outputs[key] = template.render_value(bound)
        elif key in passthrough and key in scope:
            outputs[key] = scope[key]
        else:
            outputs[key] = response
    return outputs


def task_outputs(
    task: config_pb2.TaskConfig, scope: Mapping[str, Any], response: Any
) -> dict[str, Any]:
    """A finished task's outputs.

    Its ``output_config`` is computed like a step's (any variable passes through, ``%response%``
    is the last step's response); when it is empty, the outputs are every variable its steps
    produced.

    Raises:
        InterpolationError: A template names a missing variable or field.
    """
    return planned_task_outputs(task_plan(task), scope, response)


def planned_task_outputs(plan: TaskPlan, scope: Mapping[str, Any], response: Any) -> dict[str, Any]:
    """`task_outputs` from the task's plan (`plans.task_plan`).

    Raises:
        InterpolationError: A template names a missing variable or field.
    """
    if plan.outputs.items:
        return apply_outputs(plan.outputs, scope, response, scope)
    produced = plan.produced
    return {name: scope[name] for name in scope if name in produced}


class _WithResponse(Mapping[str, Any]):
    """The scope with ``response`` bound, without copying the scope."""

    def __init__(self, scope: Mapping[str, Any], response: Any) -> None:
        self._scope = scope
        self._response = response

    def __getitem__(self, name: str) -> Any:
        return self._response if name == dataflow.RESPONSE else self._scope[name]

    def __contains__(self, name: object) -> bool:
        return name == dataflow.RESPONSE or name in self._scope

    def __iter__(self) -> Iterator[str]:
        yield dataflow.RESPONSE
        yield from (name for name in self._scope if name != dataflow.RESPONSE)

    def __len__(self) -> int:
        return len(self._scope) + (dataflow.RESPONSE not in self._scope)


def render_request(value: Any, scope: Mapping[str, Any]) -> Any:
    """Renders every string in a function request as a template, keeping the structure."""
    if isinstance(value, str):
        return Template.parse(value).render_value(scope)
    if isinstance(value, dict):
        return {key: render_request(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render_request(item, scope) for item in value]
    return value

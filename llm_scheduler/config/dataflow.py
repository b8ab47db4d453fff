"""The data-flow rules shared by validation (names) and the engine (values).

See docs/config_reference.md, "Data flow", for the rules in prose.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.config.template import Template
from llm_scheduler.v1 import config_pb2

__all__ = [
    "COMBINE_KEY",
    "COMBINE_MODES",
    "RESPONSE",
    "combine_mode",
    "payload",
    "step_output_names",
    "step_templates",
    "task_defaults",
    "task_output_names",
]

# The variable bound to the step's response while its outputs are computed.
RESPONSE = "response"
# In a join task's input_config, {"$combine": MODE} says how to merge a name several
# predecessors produce.
COMBINE_KEY = "$combine"
COMBINE_MODES = ("list", "by_task", "concat", "first")


def payload(data: config_pb2.DataConfig) -> dict[str, Any]:
    """The payload of a `DataConfig` as a dict (empty when unset)."""
    return struct_to_dict(data.payload) if data.HasField("payload") else {}


def combine_mode(value: Any) -> str | None:
    """The combine mode when ``value`` is ``{"$combine": MODE}``, else None."""
    if isinstance(value, Mapping) and set(value) == {COMBINE_KEY}:
        mode = value[COMBINE_KEY]
        return mode if isinstance(mode, str) else ""
    return None


def task_defaults(task: config_pb2.TaskConfig) -> dict[str, Any]:
    """The task's configured input defaults, without ``$combine`` directives."""
    return {k: v for k, v in payload(task.input_config).items() if combine_mode(v) is None}


def step_output_names(step: config_pb2.StepConfig) -> list[str]:
    """The names a step outputs: its ``output_config`` keys, or ``response``."""
    return list(payload(step.output_config)) or [RESPONSE]


def task_output_names(task: config_pb2.TaskConfig) -> list[str]:
    """The names a task outputs: its ``output_config`` keys, or everything its steps output."""
    configured = list(payload(task.output_config))
    if configured:
        return configured
    names: dict[str, None] = {}
    for step in task.steps:
        names.update(dict.fromkeys(step_output_names(step)))
    return list(names)


def step_templates(step: config_pb2.StepConfig) -> Iterator[tuple[str, Template]]:
    """Every template a step renders before its call, with its field path inside the step."""
    if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
        query = step.model_query_config
        yield "model_query_config.system_prompt", Template.parse(query.system_prompt)
        yield "model_query_config.user_prompt", Template.parse(query.user_prompt)
    elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        yield "embedding_config.input", Template.parse(step.embedding_config.input)
    elif step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
        for name, source in sorted(step.sub_job_config.inputs.items()):
            yield f"sub_job_config.inputs.{name}", Template.parse(source)
    elif step.function_call_config.HasField("request"):
        request = value_to_python(step.function_call_config.request)
        yield from _value_templates(request, "function_call_config.request")


def _value_templates(value: Any, path: str) -> Iterator[tuple[str, Template]]:
    if isinstance(value, str):
        yield path, Template.parse(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _value_templates(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _value_templates(item, f"{path}[{index}]")

"""What the engine needs from a step or output config, derived once per config, not once per run.

A step's defaults, the variables it reads, its parsed templates, its coerced parameters and its
output rules depend only on its config. Converting them from protobuf on every step (Struct to
dict, template parsing, parameter coercion) was most of the engine's own cost per step, so they
are derived once into an immutable plan and cached by the config's content: an edited config is
a different key, so a plan can never be stale.

Validation derives the plans of the configs it accepts (`config.validation.Validator`), so a
validated config runs without deriving anything; configs read back from a store (the cloud
function) are planned on first use.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from llm_scheduler.config import dataflow
from llm_scheduler.config.parameters import coerce_parameters
from llm_scheduler.config.structs import struct_to_dict, to_struct, value_to_python
from llm_scheduler.config.template import Template, reserve_templates
from llm_scheduler.config.working_set import WorkingSetCache
from llm_scheduler.engine.fingerprint import query_fingerprint_head, query_static_json
from llm_scheduler.engine.renderers import CompiledTemplate, RequestRenderer, compile_request
from llm_scheduler.models.base import ModelRequest, ResponseFormatSpec
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = [
    "EmbeddingPlan",
    "OutputPlan",
    "QueryPlan",
    "ResolvedQuery",
    "StepPlan",
    "TaskPlan",
    "output_plan",
    "reserve_plans",
    "step_plan",
    "task_plan",
]

_FORMATS: dict[int, Any] = {
    config_pb2.ResponseFormat.TYPE_TEXT: "text",
    config_pb2.ResponseFormat.TYPE_JSON: "json",
    config_pb2.ResponseFormat.TYPE_JSON_SCHEMA: "json_schema",
}
# Plans kept per process at least (configs are few, runs are many); more for a larger job.
_MIN_PLANS = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class OutputPlan:
    """An ``output_config`` ready to apply.

    Attributes:
        items: ``(key, template)`` per configured output, in config order; the template is None
            for a value that is not a template (pass a variable through, or take the response).
    """

    items: tuple[tuple[str, Template | None], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The configured output names (empty: the output is ``response``)."""
        return tuple(key for key, _ in self.items)


@dataclasses.dataclass(frozen=True, slots=True)
class QueryPlan:
    """A model query's static parts.

    Attributes:
        model_key: The model key.
        system: The parsed system prompt.
        user: The parsed user prompt.
        parameters: The parameters after coercion (copy before handing them out).
        parameters_struct: The same as the record stores them.
        response_format: The response format for adapters.
        static_json: The canonical JSON of the response format and parameters, for
            `fingerprint.query_fingerprint`.
        response_format_config: The configured response format, as the record stores it.
        system_template: The system prompt, compiled.
        user_template: The user prompt, compiled.
    """

    model_key: str
    system: Template
    user: Template
    parameters: Mapping[str, Any]
    parameters_struct: struct_pb2.Struct
    response_format: ResponseFormatSpec
    static_json: tuple[str, str]
    response_format_config: config_pb2.ResponseFormat
    system_template: CompiledTemplate
    user_template: CompiledTemplate
    # By (provider, model): what the key resolves to depends on the client.
    _resolved: dict[tuple[str, str], ResolvedQuery] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def resolved(self, provider: str, model: str) -> ResolvedQuery:
        """The parts that depend on the provider model the key resolved to."""
        resolved = self._resolved.get((provider, model))
        if resolved is None:
            format_json, parameters_json = self.static_json
            record = run_pb2.StepRun(model_key=self.model_key, provider=provider)
            record.provider_model = model
            record.parameters.CopyFrom(self.parameters_struct)
            record.response_format.CopyFrom(self.response_format_config)
            resolved = ResolvedQuery(
                fingerprint_head=query_fingerprint_head(
                    self.model_key, provider, model, format_json, parameters_json
                ),
                record_fields=record.SerializeToString(),
            )
            self._resolved[(provider, model)] = resolved
        return resolved


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedQuery:
    """A model query's static parts once its model key is resolved.

    Attributes:
        fingerprint_head: The start of its fingerprint (`fingerprint.query_fingerprint_head`).
        record_fields: A `StepRun` holding the step's ``model_key``, ``provider``,
            ``provider_model``, ``parameters`` and ``response_format``, serialized: a record
            merges them in one call.
    """

    fingerprint_head: str
    record_fields: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class EmbeddingPlan:
    """An embedding's static parts.

    Attributes:
        model_key: The model key.
        input: The parsed input template.
        dimensions: The vector length asked for; 0 for the model's own.
        parameters_struct: What the record's ``parameters`` holds: ``{"dimensions": n}`` when
            set, else nothing.
    """

    model_key: str
    input: Template
    dimensions: int
    parameters_struct: struct_pb2.Struct


@dataclasses.dataclass(frozen=True, slots=True)
class StepPlan:
    """A step's static parts.

    Attributes:
        label: The step's name or id ("" when it has neither: callers number it).
        defaults: The ``input_config`` defaults (use `fresh_defaults` to get a copy to keep).
        used: Sorted names the step reads: its defaults and its templates' variables.
        outputs: Its output rules.
        query: Its model query, for a model step.
        request: Its function request before rendering, for a function step.
        embedding: Its embedding, for an embedding step.
        function_name: The function a function step calls ("" for other steps).
        request_renderer: Renders ``request``, for a function step.
        response_outputs: The output names when every output is the response itself (no
            template, no pass-through: ``{"response": response}`` without an
            ``output_config``), else None.
        record_head: A `StepRun` holding the step's id, name, type and function name,
            serialized (a record merges them in one call; empty when all are defaults).
    """

    label: str
    defaults: Mapping[str, Any]
    used: tuple[str, ...]
    outputs: OutputPlan
    query: QueryPlan | None
    request: Any
    embedding: EmbeddingPlan | None
    _nested_defaults: bool
    function_name: str = ""
    request_renderer: RequestRenderer | None = None
    response_outputs: tuple[str, ...] | None = None
    record_head: bytes = b""

    @property
    def kind(self) -> str:
        """``model``, ``function``, ``embedding`` or ``sub_job``."""
        if self.query is not None:
            return "model"
        if self.embedding is not None:
            return "embedding"
        return "function" if self.request is not None else "sub_job"

    def fresh_defaults(self) -> dict[str, Any]:
        """The defaults as a new dict; nested values are copied, so callers may keep them."""
        if self._nested_defaults:
            return copy.deepcopy(dict(self.defaults))
        return dict(self.defaults)


@dataclasses.dataclass(frozen=True, slots=True)
class TaskPlan:
    """A task's static parts: its steps' plans, so a run derives nothing per step.

    Attributes:
        steps: The plan of each step, in order.
        outputs: The task's ``output_config`` rules.
        produced: The names its steps output (a task without ``output_config`` outputs these).
        defaults: The ``input_config`` defaults, without ``$combine`` directives (use
            `fresh_defaults` to get a copy to keep).
        combine: The ``$combine`` mode of each name that has one.
    """

    steps: tuple[StepPlan, ...]
    outputs: OutputPlan
    produced: frozenset[str]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    combine: Mapping[str, str] = dataclasses.field(default_factory=dict)
    _nested_defaults: bool = False

    def fresh_defaults(self) -> dict[str, Any]:
        """The defaults as a new dict; nested values are copied, so callers may keep them."""
        if self._nested_defaults:
            return copy.deepcopy(dict(self.defaults))
        return dict(self.defaults)


_plans: WorkingSetCache[tuple[Any, ...], Any] = WorkingSetCache(_MIN_PLANS)


def reserve_plans(step_count: int) -> None:
    """Keeps the plans of a job of ``step_count`` steps cached together (see `working_set`).

    A step has a step plan and an output plan, a task has a task plan and an output plan (and
    at least one step), and templates are parsed once each, so the caches grow to a few
    entries per step.
    """
    _plans.reserve(4 * step_count + 16)
    reserve_templates(4 * step_count + 16)


def step_plan(step: config_pb2.StepConfig) -> StepPlan:
    """The plan of a (validated) step config, derived once per distinct config."""
    plan: StepPlan = _cached(step, _build_step_plan)
    return plan


def task_plan(task: config_pb2.TaskConfig) -> TaskPlan:
    """The plan of a (validated) task config, derived once per distinct config.

    One lookup per task run. The key is what the plan depends on, its steps, its
    ``input_config`` and its ``output_config``, not the task's id or links: the tasks of a
    wide job share one plan (a plan per task cost ~1 KB per task of a 100,000-task job while
    the cache held it).
    """
    steps = [step.SerializeToString(deterministic=True) for step in task.steps]
    key = (
        config_pb2.TaskConfig,
        *steps,
        task.input_config.SerializeToString(deterministic=True),
        task.output_config.SerializeToString(deterministic=True),
    )
    plan: TaskPlan | None = _plans.get(key)
    return plan if plan is not None else _plans.put(key, _build_task_plan(task, steps))


def output_plan(data: config_pb2.DataConfig) -> OutputPlan:
    """The plan of an ``output_config``, derived once per distinct config."""
    plan: OutputPlan = _cached(data, _build_output_plan)
    return plan


def _cached(config: Message, build: Any) -> Any:
    key = (type(config), config.SerializeToString(deterministic=True))
    plan = _plans.get(key)
    return plan if plan is not None else _plans.put(key, build(config))


def _build_output_plan(data: config_pb2.DataConfig) -> OutputPlan:
    items: list[tuple[str, Template | None]] = []
    for key, value in dataflow.payload(data).items():
        template = Template.parse(value) if isinstance(value, str) else None
        items.append((key, template if template is not None and template.is_template else None))
    return OutputPlan(items=tuple(items))


def _build_task_plan(task: config_pb2.TaskConfig, serialized_steps: list[bytes]) -> TaskPlan:
    steps = tuple(
        _plans.get((config_pb2.StepConfig, serialized)) or step_plan(step)
        for step, serialized in zip(task.steps, serialized_steps, strict=True)
    )
    names: set[str] = set()
    for plan in steps:
        names.update(plan.outputs.names or (dataflow.RESPONSE,))
    # One set per distinct set of names, shared by the plans of the tasks producing it.
    produced = frozenset(names)
    key = (frozenset, produced)
    shared: frozenset[str] | None = _plans.get(key)
    if shared is None:
        shared = _plans.put(key, produced)
    configured = dataflow.payload(task.input_config)
    defaults: dict[str, Any] = {}
    combine: dict[str, str] = {}
    for name, value in configured.items():
        mode = dataflow.combine_mode(value)
        if mode is None:
            defaults[name] = value
        else:
            combine[name] = mode
    return TaskPlan(
        steps=steps,
        outputs=output_plan(task.output_config),
        produced=shared,
        defaults=defaults,
        combine=combine,
        _nested_defaults=any(isinstance(value, (dict, list)) for value in defaults.values()),
    )


def _build_step_plan(step: config_pb2.StepConfig) -> StepPlan:
    if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
        query = step.model_query_config
        if query.system_prompt or query.user_prompt:
            return _build_model_step_plan(step, query)
    return _build_any_step_plan(step)


def _build_model_step_plan(
    step: config_pb2.StepConfig, query: config_pb2.ModelQueryConfig
) -> StepPlan:
    """A model step's plan from the plan of the same step without its prompts, id and name.

    The steps of a wide job usually differ only in their prompts ("Item 17: %subject%"), and
    maybe their ids: all they share (defaults, outputs, parameters, response format, resolved
    model) is derived once, and each step adds its parsed prompts and record head (~10 µs
    against ~65 for a plan derived whole).
    """
    bare = config_pb2.StepConfig()
    bare.CopyFrom(step)
    bare.ClearField("id")
    bare.ClearField("name")
    bare.model_query_config.ClearField("system_prompt")
    bare.model_query_config.ClearField("user_prompt")
    shared = step_plan(bare)  # the plan of a step with no prompts, id nor name: this one's rest
    base = shared.query
    assert base is not None
    system = Template.parse(query.system_prompt)
    user = Template.parse(query.user_prompt)
    names = system.names | user.names
    used = shared.used if names <= set(shared.used) else tuple(sorted(names.union(shared.used)))
    return StepPlan(
        step.name or step.id,
        shared.defaults,
        used,
        shared.outputs,
        QueryPlan(
            base.model_key,
            system,
            user,
            base.parameters,
            base.parameters_struct,
            base.response_format,
            base.static_json,
            base.response_format_config,
            _compiled(system),  # usually the same in every step of a wide job
            CompiledTemplate(user),
            base._resolved,
        ),
        None,
        None,
        shared._nested_defaults,
        shared.function_name,
        None,
        shared.response_outputs,
        _record_head(step) if step.id or step.name else shared.record_head,
    )


def _compiled(template: Template) -> CompiledTemplate:
    """The compiled form of a parsed template, once per text.

    For a system prompt that many steps share: it is compiled once.
    """
    key = (CompiledTemplate, template.source)
    compiled: CompiledTemplate | None = _plans.get(key)
    return compiled if compiled is not None else _plans.put(key, CompiledTemplate(template))


def _build_any_step_plan(step: config_pb2.StepConfig) -> StepPlan:
    defaults = dataflow.payload(step.input_config)
    used = set(defaults)
    for _, template in dataflow.step_templates(step):
        used |= template.names
    query: QueryPlan | None = None
    request: Any = None
    embedding: EmbeddingPlan | None = None
    renderer: RequestRenderer | None = None
    if step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
        function = step.function_call_config
        request = value_to_python(function.request) if function.HasField("request") else {}
        renderer = compile_request(request)
    elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
        config = step.embedding_config
        embedding = EmbeddingPlan(
            model_key=config.model_key,
            input=Template.parse(config.input),
            dimensions=config.dimensions,
            parameters_struct=to_struct(
                {"dimensions": config.dimensions} if config.dimensions else {}
            ),
        )
    elif step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
        query = _build_query_plan(step.model_query_config)
    outputs = output_plan(step.output_config)
    response_outputs: tuple[str, ...] | None = None
    if not outputs.items:
        response_outputs = (dataflow.RESPONSE,)
    elif all(template is None and key not in defaults for key, template in outputs.items):
        response_outputs = outputs.names
    return StepPlan(
        label=step.name or step.id,
        defaults=defaults,
        used=tuple(sorted(used)),
        outputs=outputs,
        query=query,
        request=request,
        embedding=embedding,
        _nested_defaults=any(isinstance(value, (dict, list)) for value in defaults.values()),
        function_name=step.function_call_config.function_name,
        request_renderer=renderer,
        response_outputs=response_outputs,
        record_head=_record_head(step),
    )


def _record_head(step: config_pb2.StepConfig) -> bytes:
    """`StepPlan.record_head`: the step's id, name, type and function name, serialized."""
    return run_pb2.StepRun(
        step_id=step.id,
        name=step.name,
        step_type=step.step_type,
        function_name=step.function_call_config.function_name,
    ).SerializeToString()


def _build_query_plan(query: config_pb2.ModelQueryConfig) -> QueryPlan:
    # What does not depend on the prompts is shared by the plans of the queries that differ
    # only in their prompts (a wide job's tasks): one set of parameters, one response format,
    # and one resolution per model rather than one per step (~0.5 KB per task in a run).
    key = (
        config_pb2.ModelQueryConfig,
        query.model_key,
        query.parameters.SerializeToString(deterministic=True),
        query.response_format.SerializeToString(deterministic=True),
    )
    shared: QueryPlan = _plans.get(key) or _plans.put(key, _build_query_static(query))
    system = Template.parse(query.system_prompt)
    user = Template.parse(query.user_prompt)
    return dataclasses.replace(
        shared,
        system=system,
        user=user,
        system_template=CompiledTemplate(system),
        user_template=CompiledTemplate(user),
        _resolved=shared._resolved,
    )


def _build_query_static(query: config_pb2.ModelQueryConfig) -> QueryPlan:
    """A query's plan without its prompts (the plans that differ only there share its parts)."""
    raw = struct_to_dict(query.parameters) if query.HasField("parameters") else {}
    parameters, _ = coerce_parameters(raw, "parameters")  # validation reported any problems
    configured = query.response_format
    response_format = ResponseFormatSpec(
        kind=_FORMATS.get(configured.type, "text"),
        json_schema=struct_to_dict(configured.json_schema)
        if configured.HasField("json_schema")
        else None,
        schema_name=configured.schema_name or "response",
    )
    static = ModelRequest("", "", "", parameters=parameters, response_format=response_format)
    system = user = Template.parse("")
    response_format_config = config_pb2.ResponseFormat()
    response_format_config.CopyFrom(configured)
    return QueryPlan(
        model_key=query.model_key,
        system=system,
        user=user,
        parameters=parameters,
        parameters_struct=to_struct(parameters),
        response_format=response_format,
        static_json=query_static_json(static),
        response_format_config=response_format_config,
        system_template=CompiledTemplate(system),
        user_template=CompiledTemplate(user),
    )

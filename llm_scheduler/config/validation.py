"""Checks configs before anything runs, reporting every problem with its field path and a fix."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.parameters import KNOWN_PARAMETERS, coerce_parameters
from llm_scheduler.config.structs import struct_to_dict
from llm_scheduler.config.template import Template
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.models.providers import adapter_class
from llm_scheduler.models.registry import ModelRegistry, UnknownModelKeyError
from llm_scheduler.v1 import config_pb2

__all__ = ["Validator", "model_keys_of"]

_KNOWN_NEUTRAL = {spec.name for spec in KNOWN_PARAMETERS}


def model_keys_of(steps: Iterable[config_pb2.StepConfig]) -> set[str]:
    """The model keys the model-query steps among ``steps`` use."""
    return {
        step.model_query_config.model_key
        for step in steps
        if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY and step.model_query_config.model_key
    }


@dataclasses.dataclass
class Validator:
    """Validates step, task and job configs against the model and function registries.

    Each ``check_*`` method raises `ConfigError` listing every problem it found.

    Attributes:
        models: The model registry that model keys must resolve in.
        functions: The function registry that function names must resolve in.
        file: The config's file name, put into every problem.
    """

    models: ModelRegistry = dataclasses.field(default_factory=ModelRegistry)
    functions: FunctionRegistry = dataclasses.field(default_factory=default_registry)
    file: str = ""
    _problems: list[ConfigProblem] = dataclasses.field(default_factory=list)
    # Names produced by ancestors that are not direct predecessors, for hints.
    _far: dict[str, str] = dataclasses.field(default_factory=dict)

    def check_step(self, step: config_pb2.StepConfig, variables: Iterable[str] = ()) -> None:
        """Validates a step run on its own, with the given variable names supplied."""
        self._problems = []
        self._step(step, "", set(variables))
        self._raise()
        self._plan([step])

    def check_tasks(
        self, tasks: list[config_pb2.TaskConfig], variables: Iterable[str] = ()
    ) -> None:
        """Validates tasks run in the given order, each receiving its predecessor's outputs.

        With several tasks, field paths start with ``[i]`` for the i-th task (``tasks[i]`` in
        the message when the tasks come from different files is the caller's to add).
        """
        self._problems = []
        upstream = set(variables)
        for index, task in enumerate(tasks):
            prefix = f"[{index}]." if len(tasks) > 1 else ""
            self._task(task, prefix, upstream)
            upstream = set(variables) | set(dataflow.task_output_names(task))
        self._raise()
        self._plan(step for task in tasks for step in task.steps)

    def check_job(self, job: config_pb2.JobConfig, variables: Iterable[str] = ()) -> None:
        """Validates a job: its task graph, every task and the data flowing between them."""
        self._problems = []
        job_inputs = set(dataflow.payload(job.input_config)) | set(variables)
        if not job.tasks:
            self._add("tasks", "the job has no tasks", "add at least one task")
            self._raise()
        self._graph(job)
        graph = TaskGraph.from_job(job)
        # In a cyclic graph "predecessor" is meaningless; the cycle is the problem to report.
        cyclic = graph.find_cycle() is not None
        outputs = {task.task_id: dataflow.task_output_names(task) for task in job.tasks}
        for index, task in enumerate(job.tasks):
            prefix = f"tasks[{index}]."
            upstream = set(job_inputs)
            if cyclic:  # be permissive about names: the cycle is the problem to report
                upstream |= {name for names in outputs.values() for name in names}
            producers: dict[str, list[str]] = {}
            for predecessor in () if cyclic else graph.predecessors.get(task.task_id, ()):
                for name in outputs.get(predecessor, ()):
                    producers.setdefault(name, []).append(predecessor)
            upstream |= set(producers)
            self._joins(task, prefix, producers)
            self._far = {
                name: ancestor
                for ancestor in graph.ancestors(task.task_id)
                for name in outputs.get(ancestor, ())
            }
            self._task(task, prefix, upstream)
        self._far = {}
        self._raise()
        self._plan(step for task in job.tasks for step in task.steps)

    def _raise(self) -> None:
        if self._problems:
            problems, self._problems = self._problems, []
            raise ConfigError(problems)

    @staticmethod
    def _plan(steps: Iterable[config_pb2.StepConfig]) -> None:
        """Derives the engine's plans of valid steps now, once per config, not during a run."""
        from llm_scheduler.engine.plans import step_plan  # the engine imports config

        for step in steps:
            step_plan(step)

    def _add(self, path: str, message: str, hint: str = "") -> None:
        self._problems.append(ConfigProblem(path.rstrip("."), message, hint, self.file))

    def _graph(self, job: config_pb2.JobConfig) -> None:
        ids = [task.task_id for task in job.tasks]
        seen: set[str] = set()
        for index, task_id in enumerate(ids):
            if not task_id:
                self._add(f"tasks[{index}].task_id", "missing", "give every task a unique id")
            elif task_id in seen:
                self._add(f"tasks[{index}].task_id", f"duplicate task id {task_id!r}", "rename one")
            seen.add(task_id)
        for index, task in enumerate(job.tasks):
            names = [("next_task", task.next_task)] + [
                (f"next_tasks[{i}]", name) for i, name in enumerate(task.next_tasks)
            ]
            for field, name in names:
                if not name:
                    continue
                path = f"tasks[{index}].{field}"
                if name == task.task_id:
                    self._add(path, f"task {name!r} names itself", "a task cannot loop to itself")
                elif name not in seen:
                    known = ", ".join(i for i in ids if i)
                    self._add(path, f"no task {name!r} in this job", f"use one of: {known}")
        graph = TaskGraph.from_job(job)
        cycle = graph.find_cycle()
        if cycle:
            self._add(
                "tasks",
                f"the tasks form a cycle: {' -> '.join(cycle)}",
                "remove one of these next_task links; jobs must be acyclic",
            )
            return
        roots = graph.roots
        if job.start_task:
            if job.start_task not in seen:
                self._add("start_task", f"no task {job.start_task!r}", "name an existing task")
                return
            if graph.predecessors[job.start_task]:
                preds = ", ".join(graph.predecessors[job.start_task])
                self._add(
                    "start_task",
                    f"task {job.start_task!r} runs after {preds}, so it cannot start the job",
                    "start from a task that no other task names as next",
                )
            start = job.start_task
        elif len(roots) > 1:
            self._add(
                "start_task",
                f"several tasks have no predecessor ({', '.join(roots)})",
                "set start_task, or link the tasks with next_task",
            )
            return
        else:
            start = roots[0] if roots else ""
        unreachable = [t for t in graph.task_ids if t and t not in graph.reachable_from(start)]
        for task_id in unreachable:
            self._add(
                f"tasks[{ids.index(task_id)}]",
                f"task {task_id!r} can never run: nothing leads to it from {start!r}",
                "link it with next_task/next_tasks or remove it",
            )

    def _joins(
        self, task: config_pb2.TaskConfig, prefix: str, producers: dict[str, list[str]]
    ) -> None:
        configured = dataflow.payload(task.input_config)
        for name, value in configured.items():
            mode = dataflow.combine_mode(value)
            if mode is not None and mode not in dataflow.COMBINE_MODES:
                self._add(
                    f"{prefix}input_config.payload.{name}",
                    f"unknown combine mode {mode!r}",
                    f"use one of {', '.join(dataflow.COMBINE_MODES)}",
                )
        for name, sources in producers.items():
            if len(sources) > 1 and dataflow.combine_mode(configured.get(name)) is None:
                self._add(
                    f"{prefix}input_config.payload.{name}",
                    f"{name!r} is produced by several predecessors ({', '.join(sources)})",
                    f'say how to combine them: "{name}": {{"{dataflow.COMBINE_KEY}": "list"}} '
                    f"(modes: {', '.join(dataflow.COMBINE_MODES)}), or rename an output",
                )

    def _task(self, task: config_pb2.TaskConfig, prefix: str, upstream: set[str]) -> None:
        if not task.steps:
            self._add(f"{prefix}steps", "the task has no steps", "add at least one step")
        available = upstream | set(dataflow.task_defaults(task))
        seen: set[str] = set()
        for index, step in enumerate(task.steps):
            path = f"{prefix}steps[{index}]."
            if step.id and step.id in seen:
                self._add(f"{path}id", f"duplicate step id {step.id!r}", "rename one")
            seen.add(step.id)
            self._step(step, path, available)
            available = available | set(dataflow.step_output_names(step))
        # The task's own outputs render with its variables and the last response bound.
        self._outputs(task.output_config, f"{prefix}output_config", available)

    def _step(self, step: config_pb2.StepConfig, prefix: str, available: set[str]) -> None:
        scope = available | set(dataflow.payload(step.input_config))
        if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
            self._model_query(step, prefix)
        elif step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
            self._function_call(step, prefix)
        else:
            self._add(
                f"{prefix}step_type",
                f"unknown step type {step.step_type}",
                "use 0 (model query) or 1 (function call)",
            )
            return
        for field, template in dataflow.step_templates(step):
            self._names(template.names, f"{prefix}{field}", scope)
        self._outputs(step.output_config, f"{prefix}output_config", scope)

    def _model_query(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}model_query_config"
        if step.HasField("function_call_config"):
            self._add(
                f"{prefix}function_call_config",
                "set on a model query step",
                "remove it, or set step_type to 1 for a function call",
            )
        if not step.HasField("model_query_config"):
            self._add(path, "missing", "a model query step needs model_query_config")
            return
        query = step.model_query_config
        provider = ""
        if not query.model_key:
            self._add(f"{path}.model_key", "missing", "name a model, e.g. GEMINI_FLASH")
        else:
            try:
                provider = self.models.resolve(query.model_key).provider
            except UnknownModelKeyError:
                self._add(
                    f"{path}.model_key",
                    f"unknown model key {query.model_key!r}",
                    self.models.describe_unknown(query.model_key),
                )
        if not query.user_prompt and not query.system_prompt:
            self._add(f"{path}.user_prompt", "no prompt", "write a user_prompt")
        raw = struct_to_dict(query.parameters) if query.HasField("parameters") else {}
        parameters, problems = coerce_parameters(raw, f"{path}.parameters")
        for problem in problems:
            self._add(problem.path, problem.message, problem.hint)
        if provider:
            supported = adapter_class(provider).supported_parameters
            for name in sorted(set(parameters) & _KNOWN_NEUTRAL - supported):
                self._add(
                    f"{path}.parameters.{name}",
                    f"{provider} models do not take {name!r}",
                    "remove it or choose another model",
                )
        response_format = query.response_format
        if response_format.type == config_pb2.ResponseFormat.TYPE_JSON_SCHEMA and not (
            response_format.HasField("json_schema") and response_format.json_schema.fields
        ):
            self._add(
                f"{path}.response_format.json_schema",
                "missing",
                "give the JSON Schema the response must follow",
            )

    def _function_call(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}function_call_config"
        if step.HasField("model_query_config"):
            self._add(
                f"{prefix}model_query_config",
                "set on a function call step",
                "remove it, or set step_type to 0 for a model query",
            )
        name = step.function_call_config.function_name
        if not name:
            self._add(f"{path}.function_name", "missing", "name a registered function")
        elif not self.functions.has(name):
            close = self.functions.suggest(name)
            maybe = f"did you mean {close!r}? " if close else ""
            self._add(
                f"{path}.function_name",
                f"unknown function {name!r}",
                f"{maybe}registered: {', '.join(self.functions.names())}; register more with "
                "@register_function in a module listed in --function_modules",
            )

    def _outputs(self, output: config_pb2.DataConfig, path: str, scope: set[str]) -> None:
        for key, value in dataflow.payload(output).items():
            if isinstance(value, str):
                template = Template.parse(value)
                self._names(template.names, f"{path}.payload.{key}", scope | {dataflow.RESPONSE})

    def _names(self, names: Iterable[str], path: str, scope: set[str]) -> None:
        for name in sorted(names):
            if name in scope:
                continue
            if name in self._far:
                self._add(
                    path,
                    f"%{name}% has no value here: task {self._far[name]!r} produces it, but "
                    "a task only receives the outputs of its direct predecessors",
                    f'pass it through the tasks in between (add "{name}": "" to their '
                    "output_config), or link the tasks directly",
                )
            else:
                known = ", ".join(sorted(scope)) or "none"
                self._add(
                    path,
                    f"%{name}% has no value: nothing upstream provides {name!r}",
                    f"add {name!r} to an input_config, the job input or an earlier output "
                    f"(available here: {known})",
                )

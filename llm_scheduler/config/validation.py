"""Checks configs before anything runs, reporting every problem with its field path and a fix.

Validation takes time linear in the size of the config: large jobs (10,000 tasks) are built by
programs, so no check may look at every task once per task.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from llm_scheduler.config import dataflow
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.ids import (
    ID_RULE,
    MAX_ID_LENGTH,
    MAX_JOB_ID_LENGTH,
    PLAIN_ID,
    all_plain,
    check_id,
)
from llm_scheduler.config.maps import (
    DEFAULT_MAP_ITEMS,
    MAX_MAP_ITEMS,
    map_index_variable,
    map_item_variable,
)
from llm_scheduler.config.parameters import KNOWN_PARAMETERS, coerce_parameters
from llm_scheduler.config.strategies import MODEL_KEY_VARIABLE
from llm_scheduler.config.strategy_checks import strategy_problems
from llm_scheduler.config.structs import struct_to_dict, value_to_python
from llm_scheduler.config.template import Template, reserve_templates
from llm_scheduler.config.template_names import plain_names
from llm_scheduler.config.wire import (
    EMBEDDING_INPUT,
    INPUT_CONFIG,
    OUTPUT_CONFIG,
    SYSTEM_PROMPT,
    USER_PROMPT,
    StepTexts,
    TaskFields,
    step_keys,
    task_fields,
)
from llm_scheduler.errors import ConfigError, ConfigProblem
from llm_scheduler.function_steps import FunctionRegistry, default_registry
from llm_scheduler.heap import collector_paused
from llm_scheduler.models.providers import adapter_class, is_provider, provider_names
from llm_scheduler.models.registry import (
    CHAT,
    EMBEDDING,
    UNKNOWN_PROVIDER_HINT,
    ModelRegistry,
    UnknownModelKeyError,
    embedding_providers,
)
from llm_scheduler.v1 import config_pb2

__all__ = [
    "MAX_EMBEDDING_DIMENSIONS",
    "Validator",
    "model_keys_of",
    "sub_job_reads",
    "tasks_model_keys",
]

_KNOWN_NEUTRAL = {spec.name for spec in KNOWN_PARAMETERS}
# The longest vector an embedding step may ask for: above every current model's (3,072), and
# small enough that a record holding the vector stays a few hundred KB.
MAX_EMBEDDING_DIMENSIONS = 16_384
# Each step type (by number): its sub-config field and its name in messages.
_SUB_CONFIGS = {
    config_pb2.STEP_TYPE_MODEL_QUERY: ("model_query_config", "a model query"),
    config_pb2.STEP_TYPE_FUNCTION_CALL: ("function_call_config", "a function call"),
    config_pb2.STEP_TYPE_EMBEDDING: ("embedding_config", "an embedding"),
    config_pb2.STEP_TYPE_SUB_JOB: ("sub_job_config", "a sub-job"),
}
# The templates of a step `wire.step_texts` reads, by step type: where its text is in the texts
# that returns, and the field path `dataflow.step_templates` gives it (in that order).
_TEXT_TEMPLATES = {
    config_pb2.STEP_TYPE_MODEL_QUERY: (
        (SYSTEM_PROMPT, "model_query_config.system_prompt"),
        (USER_PROMPT, "model_query_config.user_prompt"),
    ),
    config_pb2.STEP_TYPE_EMBEDDING: ((EMBEDDING_INPUT, "embedding_config.input"),),
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# How many names a hint lists before it says how many more there are.
_HINT_NAMES = 20


def _listing(names: Iterable[str]) -> str:
    """Names joined by commas, the first `_HINT_NAMES` of them when there are more."""
    names = list(names)
    if len(names) <= _HINT_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:_HINT_NAMES])} and {len(names) - _HINT_NAMES} more"


class _Scope:
    """The variable names visible at a point: layers looked up in turn, never copied together.

    Merging the names into one set per task and per step was quadratic in large jobs. Layers
    keep config order (dicts, not sets), so hints do not vary from run to run. A plain class
    with slots: a job of 100,000 tasks makes a few scopes per task.
    """

    __slots__ = ("layers",)

    def __init__(self, layers: tuple[Collection[str], ...] = ()) -> None:
        self.layers = layers

    def __contains__(self, name: object) -> bool:
        for layer in self.layers:  # noqa: SIM110 (a loop, not any(): runs per name read)
            if name in layer:
                return True
        return False

    def plus(self, *layers: Collection[str]) -> _Scope:
        """This scope with more names."""
        return _Scope(self.layers + layers)

    def listing(self) -> str:
        """The visible names for a hint: all of them sorted, or the first few in scope order.

        Bounded work per hint: a job may hold thousands of names, and thousands of problems.
        """
        if sum(len(layer) for layer in self.layers) <= _HINT_NAMES:
            return ", ".join(sorted({name for layer in self.layers for name in layer}))
        first: dict[str, None] = {}
        for name in itertools.chain.from_iterable(self.layers):
            first[name] = None
            if len(first) > _HINT_NAMES:
                return f"{', '.join(list(first)[:_HINT_NAMES])}, ..."
        return ", ".join(first)


@dataclasses.dataclass(frozen=True)
class _StepBase:
    """A step config's checks that depend neither on where it is nor on its templates' texts.

    Attributes:
        config_problems: ``(path relative to the step, message, hint)`` per problem of its
            type and its type's config (`Validator._step_config`).
        output_problems: The same for its ``output_config`` templates.
        output_reads: As `_CheckedStep.reads`, for its ``output_config`` templates.
        defaults: The names its ``input_config`` provides.
        outputs: The names it outputs.
        step_id: Its id.
        templates: For a step `wire.step_texts` reads: its templates' places among the texts
            that returns, and their field paths, in `dataflow.step_templates` order.
    """

    config_problems: tuple[tuple[str, str, str], ...]
    output_problems: tuple[tuple[str, str, str], ...]
    output_reads: tuple[tuple[str, tuple[str, ...], bool], ...]
    defaults: tuple[str, ...]
    outputs: Collection[str]
    step_id: str
    templates: tuple[tuple[int, str], ...]


@dataclasses.dataclass(frozen=True)
class _CheckedStep:
    """A step config's checks that do not depend on where it is.

    Attributes:
        problems: ``(path relative to the step, message, hint)`` per problem found.
        defaults: The names its ``input_config`` provides.
        reads: ``(path relative to the step, names, in an output)`` per template reading
            names that must have values (an output template also sees ``response``).
        outputs: The names it outputs.
        step_id: Its id.
        in_scope: Its checks depend on where it is (a sub-job step): none are kept here.
    """

    problems: tuple[tuple[str, str, str], ...]
    defaults: tuple[str, ...]
    reads: tuple[tuple[str, tuple[str, ...], bool], ...]
    outputs: Collection[str]
    step_id: str
    in_scope: bool


def _task_outputs(task: config_pb2.TaskConfig, checked: list[_CheckedStep]) -> dict[str, None]:
    """`dataflow.task_output_names` (as an ordered set) from the steps' `_checked` results."""
    if task.HasField("output_config"):
        configured = dict.fromkeys(dataflow.payload(task.output_config))
        if configured:
            return configured
    return _steps_outputs(checked)


def _steps_outputs(checked: list[_CheckedStep]) -> dict[str, None]:
    """What a task's steps output (as an ordered set), from their `_checked` results."""
    names: dict[str, None] = {}
    for step_checks in checked:
        for name in step_checks.outputs:
            names[name] = None
    return names


@dataclasses.dataclass
class _FarProducers:
    """Which ancestor produces a name a task lacks (only direct predecessors pass outputs on).

    Found per name on demand (only for names missing somewhere), by one search forward from the
    tasks producing the name, instead of collecting every task's ancestors up front.

    Attributes:
        graph: The job's task graph.
        outputs: Each task's output names, in config order.
    """

    graph: TaskGraph
    outputs: Mapping[str, Collection[str]]
    _producers: dict[str, list[str]] | None = None
    _reached: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def producer(self, name: str, task_id: str) -> str | None:
        """A task that produces ``name`` and that ``task_id`` transitively depends on."""
        reached = self._reached.get(name)
        if reached is None:
            if self._producers is None:  # the tasks producing each name, once a name is missing
                self._producers = {}
                for producer, names in self.outputs.items():
                    for output in names:
                        self._producers.setdefault(output, []).append(producer)
            reached = {}
            queue: collections.deque[str] = collections.deque()
            for origin in self._producers.get(name, ()):
                for nxt in self.graph.successors.get(origin, ()):
                    if nxt not in reached:
                        reached[nxt] = origin
                        queue.append(nxt)
            while queue:
                node = queue.popleft()
                for nxt in self.graph.successors.get(node, ()):
                    if nxt not in reached:
                        reached[nxt] = reached[node]
                        queue.append(nxt)
            self._reached[name] = reached
        return reached.get(task_id)


def sub_job_reads(job: config_pb2.JobConfig) -> set[str]:
    """Every variable name a job's templates read (its steps', outputs' and maps' lists)."""
    names: set[str] = set()
    for task in job.tasks:
        if task.HasField("for_each"):
            names |= Template.parse(task.for_each.items).names
        for data in (task.output_config, *(step.output_config for step in task.steps)):
            for value in dataflow.payload(data).values():
                if isinstance(value, str):
                    names |= Template.parse(value).names
        for step in task.steps:
            for _, template in dataflow.step_templates(step):
                names |= template.names
    return names


def model_keys_of(steps: Iterable[config_pb2.StepConfig]) -> set[str]:
    """The model keys the model-query and embedding steps among ``steps`` use.

    A sub-job step's child job counts: its steps' keys are included.
    """
    keys: set[str] = set()
    for step in steps:
        if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
            keys.add(step.model_query_config.model_key)
        elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
            keys.add(step.embedding_config.model_key)
        elif step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
            keys |= tasks_model_keys(step.sub_job_config.job.tasks)
    keys.discard("")
    return keys


def tasks_model_keys(tasks: Iterable[config_pb2.TaskConfig]) -> set[str]:
    """The model keys ``tasks`` use: their steps' (`model_keys_of`) and their strategies'.

    A strategy's ``model_key`` axis runs each of its values (a variation's steps use it).
    """
    keys: set[str] = set()
    for task in tasks:
        keys |= model_keys_of(task.steps)
        for axis in task.strategy.axes:
            if axis.variable == MODEL_KEY_VARIABLE:
                for value in axis.values:
                    key = value_to_python(value.value) if value.HasField("value") else value.name
                    if isinstance(key, str) and key:
                        keys.add(key)
    return keys


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
    # While a job's task is checked: the task, and who produces names it lacks (for hints).
    _task_id: str = ""
    _far: _FarProducers | None = None
    # Validating a sub-job's child job: a name nothing provides may be routed from the parent.
    _child: bool = False
    # Per check: what each distinct step config's own checks found (see `_checked`), and
    # those configs (their plans are derived once the check passes).
    _checked_steps: dict[bytes, _CheckedStep] = dataclasses.field(default_factory=dict)
    _distinct_steps: list[config_pb2.StepConfig] = dataclasses.field(default_factory=list)
    # Per check, for steps read from a job's bytes (see `_checked_bytes`): the `_StepBase` of
    # each step with its texts emptied; one `_CheckedStep` per base and templates' findings;
    # and ``(task index, step index)`` of the distinct steps among them (for their plans).
    _bases: dict[bytes, _StepBase] = dataclasses.field(default_factory=dict)
    _shared: dict[tuple[object, ...], _CheckedStep] = dataclasses.field(default_factory=dict)
    _wire_steps: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    _step_texts: StepTexts = dataclasses.field(default_factory=StepTexts)

    def check_step(self, step: config_pb2.StepConfig, variables: Iterable[str] = ()) -> None:
        """Validates a step run on its own, with the given variable names supplied."""
        self._reset()
        self._step(step, "", _Scope((dict.fromkeys(variables),)))
        self._raise()
        self._plan([step])

    def check_tasks(
        self, tasks: list[config_pb2.TaskConfig], variables: Iterable[str] = ()
    ) -> None:
        """Validates tasks run in the given order, each receiving its predecessor's outputs.

        With several tasks, field paths start with ``[i]`` for the i-th task (``tasks[i]`` in
        the message when the tasks come from different files is the caller's to add).
        """
        self._reset()
        given = dict.fromkeys(variables)
        upstream = _Scope((given,))
        for index, task in enumerate(tasks):
            prefix = f"[{index}]." if len(tasks) > 1 else ""
            if task.task_id:
                self._id(f"{prefix}task_id", "task id", task.task_id)
            self._task(task, prefix, upstream)
            upstream = _Scope((given, dict.fromkeys(dataflow.task_output_names(task))))
        self._raise()
        self._plan(self._distinct_steps)

    def check_job(self, job: config_pb2.JobConfig, variables: Iterable[str] = ()) -> None:
        """Validates a job: its task graph, every task and the data flowing between them."""
        with collector_paused():
            self._check_job(job, variables)

    def _check_job(self, job: config_pb2.JobConfig, variables: Iterable[str]) -> None:
        self._reset()
        job_inputs = dict.fromkeys([*dataflow.payload(job.input_config), *variables])
        if not job.tasks:
            self._add("tasks", "the job has no tasks", "add at least one task")
            self._raise()
        if job.job_id:
            self._id("job_id", "job id", job.job_id, MAX_JOB_ID_LENGTH)
        # Each task's id, links, steps and fields read from the job's bytes: a wrapper only for
        # the tasks checked in full (see `config.wire`).
        fields = task_fields(job)
        tasks, links, shapes = job.tasks, fields.links, fields.steps
        # The templates parsed here stay cached for the plans derived below and the run.
        reserve_templates(4 * len(links) + 16)
        graph, cyclic = self._graph(job, links)
        checked, outputs = self._shapes(tasks, fields)
        # In a cyclic graph "predecessor" is meaningless; the cycle is the problem to report, so
        # be permissive about names.
        everything: Collection[str] = (
            dict.fromkeys(itertools.chain.from_iterable(outputs.values())) if cyclic else ()
        )
        self._far = _FarProducers(graph, outputs)
        no_names: dict[str, None] = {}
        # Tasks whose steps have the same checks (one list of `_CheckedStep`s: the same steps up
        # to their templates' texts), setting none of the fields `_task` checks besides, and
        # reading the same upstream names find the same problems: once one has none, the others
        # have none. An upstream is one of `outputs`' values, and a list of checks one of
        # `checked`'s (both alive throughout): its id names it.
        clean: set[tuple[int, int]] = set()
        for index, (task_id, _, _) in enumerate(links):
            predecessors = () if cyclic else graph.predecessors.get(task_id, ())
            upstream: Collection[str]
            shape = shapes[index]
            if len(predecessors) < 2 and shape and not fields.fields[index]:
                upstream = outputs.get(predecessors[0], no_names) if predecessors else no_names
                memo = (id(checked[index]), id(upstream))
                if memo in clean:
                    continue
                found = len(self._problems)
                self._task_id = task_id
                scope = _Scope((job_inputs, everything, upstream))
                self._task(tasks[index], f"tasks[{index}].", scope, checked[index])
                if len(self._problems) == found:
                    clean.add(memo)
                continue
            task = tasks[index]
            prefix = f"tasks[{index}]."
            if len(predecessors) == 1:  # one predecessor: names as they are
                upstream = outputs.get(predecessors[0], no_names)
                if fields.fields[index] & INPUT_CONFIG:
                    self._joins(task, prefix, {})
            else:
                producers: dict[str, list[str]] = {}
                for predecessor in predecessors:
                    for name in outputs.get(predecessor, ()):
                        producers.setdefault(name, []).append(predecessor)
                self._joins(task, prefix, producers)
                upstream = producers.keys()
            self._task_id = task_id
            self._task(task, prefix, _Scope((job_inputs, everything, upstream)), checked[index])
        self._far, self._task_id = None, ""
        self._raise()
        wire_steps = self._wire_steps
        self._plan(
            itertools.chain(self._distinct_steps, (tasks[i].steps[k] for i, k in wire_steps))
        )

    def _reset(self) -> None:
        """Forgets the previous check's problems and steps."""
        self._problems, self._checked_steps, self._distinct_steps = [], {}, []
        self._bases, self._shared, self._wire_steps = {}, {}, []
        self._step_texts = StepTexts()

    def _shapes(
        self, tasks: Sequence[config_pb2.TaskConfig], fields: TaskFields
    ) -> tuple[list[list[_CheckedStep]], dict[str, Collection[str]]]:
        """Each task's steps' `_checked` results, and its outputs (``tasks`` are the job's).

        Tasks whose steps have the same results (the same steps, or steps differing only in
        their templates' texts) share one list of them, and their outputs when they configure
        none of their own (one dict for a wide job's tasks, not one per task).
        """
        by_shape: dict[bytes, tuple[list[_CheckedStep], dict[str, None]]] = {}
        by_checks: dict[tuple[int, ...], tuple[list[_CheckedStep], dict[str, None]]] = {}
        checked: list[list[_CheckedStep]] = []
        outputs: dict[str, Collection[str]] = {}
        for index, shape in enumerate(fields.steps):
            known = by_shape.get(shape)
            if known is None:
                step_checks = [
                    self._checked_bytes(tasks, index, position, key)
                    for position, key in enumerate(step_keys(shape))
                ]
                ids = tuple(map(id, step_checks))  # each alive in `_checked_steps`
                known = by_checks.get(ids)
                if known is None:
                    known = by_checks[ids] = (step_checks, _steps_outputs(step_checks))
                by_shape[shape] = known
            checked.append(known[0])
            task_id = fields.links[index][0]
            if fields.fields[index] & OUTPUT_CONFIG:
                outputs[task_id] = _task_outputs(tasks[index], known[0])
            else:
                outputs[task_id] = known[1]
        return checked, outputs

    def _raise(self) -> None:
        if self._problems:
            problems, self._problems = self._problems, []
            raise ConfigError(problems)

    @staticmethod
    def _plan(steps: Iterable[config_pb2.StepConfig]) -> None:
        """Derives the engine's plans of valid steps now, once per config, not during a run."""
        from llm_scheduler.engine.plans import reserve_plans, step_plan  # engine imports config

        steps = list(steps)
        reserve_plans(len(steps))
        for step in steps:
            step_plan(step)

    def _add(self, path: str, message: str, hint: str = "") -> None:
        self._problems.append(ConfigProblem(path.rstrip("."), message, hint, self.file))

    def _id(self, path: str, kind: str, value: str, max_length: int = MAX_ID_LENGTH) -> None:
        """Reports an id that cannot be part of a store path (see `config.ids`)."""
        problem = check_id(kind, value, max_length=max_length)
        if problem:
            self._add(path, problem, ID_RULE)

    def _graph(
        self, job: config_pb2.JobConfig, links: Sequence[tuple[str, str, Sequence[str]]]
    ) -> tuple[TaskGraph, bool]:
        """Checks the task graph (``links`` as in `TaskGraph.from_links`, one per task of the job).

        Returns the graph and whether it is cyclic.
        """
        ids = [task_id for task_id, _, _ in links]
        first_index = dict(zip(ids, range(len(ids)), strict=True))
        if len(first_index) < len(ids) or not all_plain(ids):  # some ids need a closer look
            first_index = {}
            for index, task_id in enumerate(ids):
                if not task_id:
                    self._add(f"tasks[{index}].task_id", "missing", "give every task a unique id")
                elif task_id in first_index:
                    self._add(
                        f"tasks[{index}].task_id", f"duplicate task id {task_id!r}", "rename one"
                    )
                elif not PLAIN_ID.fullmatch(task_id):  # the rest are checked in full
                    self._id(f"tasks[{index}].task_id", "task id", task_id)
                first_index.setdefault(task_id, index)
        for index, (task_id, next_task, next_tasks) in enumerate(links):
            if next_tasks:
                if all(
                    not name or (name in first_index and name != task_id)
                    for name in (next_task, *next_tasks)
                ):
                    continue
            elif not next_task or (next_task != task_id and next_task in first_index):
                continue  # the common case: every link names another task of the job
            names = [("next_task", next_task)] + [
                (f"next_tasks[{i}]", name) for i, name in enumerate(next_tasks)
            ]
            for field, name in names:
                if not name:
                    continue
                path = f"tasks[{index}].{field}"
                if name == task_id:
                    self._add(path, f"task {name!r} names itself", "a task cannot loop to itself")
                elif name not in first_index:
                    known = _listing(i for i in first_index if i)
                    self._add(path, f"no task {name!r} in this job", f"use one of: {known}")
        graph = TaskGraph.from_links(links)
        cycle = graph.find_cycle()
        if cycle:
            self._add(
                "tasks",
                f"the tasks form a cycle: {' -> '.join(cycle)}",
                "remove one of these next_task links; jobs must be acyclic",
            )
            return graph, True
        roots = graph.roots
        if job.start_task:
            if job.start_task not in first_index:
                self._add("start_task", f"no task {job.start_task!r}", "name an existing task")
                return graph, False
            if graph.predecessors[job.start_task]:
                preds = _listing(graph.predecessors[job.start_task])
                self._add(
                    "start_task",
                    f"task {job.start_task!r} runs after {preds}, so it cannot start the job",
                    "start from a task that no other task names as next",
                )
            start = job.start_task
        elif len(roots) > 1:
            self._add(
                "start_task",
                f"several tasks have no predecessor ({_listing(roots)})",
                "set start_task, or link the tasks with next_task",
            )
            return graph, False
        else:
            start = roots[0] if roots else ""
        if len(roots) == 1 and start == roots[0]:
            return graph, False  # every task of an acyclic graph follows one of its roots
        reachable = graph.reachable_from(start)
        for task_id in graph.task_ids:
            if task_id and task_id not in reachable:
                self._add(
                    f"tasks[{first_index[task_id]}]",
                    f"task {task_id!r} can never run: nothing leads to it from {start!r}",
                    "link it with next_task/next_tasks or remove it",
                )
        return graph, False

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

    def _task(
        self,
        task: config_pb2.TaskConfig,
        prefix: str,
        upstream: _Scope,
        checked: list[_CheckedStep] | None = None,
    ) -> None:
        """Checks a task; ``checked`` holds its steps' `_checked` results when known."""
        steps = list(task.steps)
        if not steps:
            self._add(f"{prefix}steps", "the task has no steps", "add at least one step")
        if checked is None:
            checked = [self._checked(step) for step in steps]
        # Grows in place as steps add outputs: each step sees the outputs of the steps before it.
        from_steps: dict[str, None] = {}
        defaults = dataflow.task_defaults(task) if task.HasField("input_config") else {}
        available = upstream.plus(defaults.keys(), from_steps)
        if task.HasField("for_each"):
            available = available.plus(self._map(task, f"{prefix}for_each", upstream))
        if task.HasField("strategy"):
            available = available.plus(self._strategy(task, f"{prefix}strategy"))
        seen: set[str] = set()
        for index, (step, step_checks) in enumerate(zip(steps, checked, strict=True)):
            path = f"{prefix}steps[{index}]."
            if step_checks.step_id and step_checks.step_id in seen:
                self._add(f"{path}id", f"duplicate step id {step_checks.step_id!r}", "rename one")
            seen.add(step_checks.step_id)
            for name in self._step(step, path, available, step_checks):
                from_steps[name] = None
        # The task's own outputs render with its variables and the last response bound.
        if task.HasField("output_config"):
            self._outputs(task.output_config, f"{prefix}output_config", available)

    def _map(self, task: config_pb2.TaskConfig, path: str, upstream: _Scope) -> list[str]:
        """Checks a map's config; returns the variable names it binds for each item."""
        config = task.for_each
        template = Template.parse(config.items)
        if not config.items:
            self._add(f"{path}.items", "missing", 'name the list to map over, e.g. "%sections%"')
        elif len(template.parts) != 1 or not template.placeholders:
            self._add(
                f"{path}.items",
                f"{config.items!r} is not exactly one placeholder",
                'write the list as one placeholder and nothing else, e.g. "%sections%" or '
                '"%plan.items%"',
            )
        else:
            for problem in template.problems:
                self._add(f"{path}.items", problem.message, problem.hint)
            placeholder = template.placeholders[0]
            name = placeholder.name
            if name not in upstream and not placeholder.optional:
                known = upstream.listing() or "none"
                self._add(
                    f"{path}.items",
                    f"%{name}%: no predecessor or job input provides {name!r}",
                    f"map over an output of a predecessor or a job input (available: {known})",
                )
        defaults = dataflow.task_defaults(task)
        bound: list[str] = []
        for field, default in (
            ("item_variable", map_item_variable(config)),
            ("index_variable", map_index_variable(config)),
        ):
            if not _IDENTIFIER.fullmatch(default):
                self._add(
                    f"{path}.{field}",
                    f"{default!r} is not a variable name",
                    "use letters, digits and underscores, not starting with a digit",
                )
            elif default in defaults:
                self._add(
                    f"{path}.{field}",
                    f"{default!r} shadows the task input of the same name",
                    "rename the variable or the input",
                )
            elif default in bound:
                self._add(
                    f"{path}.{field}",
                    f"{default!r} is also the item variable",
                    "give the item and its index different names",
                )
            bound.append(default)
        if not 0 <= config.max_items <= MAX_MAP_ITEMS:
            self._add(
                f"{path}.max_items",
                f"{config.max_items} is out of range",
                f"use 1 to {MAX_MAP_ITEMS:,}, or 0 (leave it out) for {DEFAULT_MAP_ITEMS:,}",
            )
        if config.max_in_flight < 0:
            self._add(
                f"{path}.max_in_flight",
                f"{config.max_in_flight} is negative",
                "use a positive cap, or 0 (leave it out) for no cap of the map's own",
            )
        return bound

    def _strategy(self, task: config_pb2.TaskConfig, path: str) -> list[str]:
        """Checks a strategy's config; returns the variable names it binds per variation."""
        reads = sub_job_reads(config_pb2.JobConfig(tasks=[task]))
        for problem in strategy_problems(task, reads):
            self._add(
                f"{path}.{problem.path}" if problem.path else path, problem.message, problem.hint
            )
        kinds = [
            kind
            for kind, step_type in (
                (CHAT, config_pb2.STEP_TYPE_MODEL_QUERY),
                (EMBEDDING, config_pb2.STEP_TYPE_EMBEDDING),
            )
            if any(step.step_type == step_type for step in task.steps)
        ]
        for index, axis in enumerate(task.strategy.axes):
            if axis.variable != MODEL_KEY_VARIABLE:
                continue
            if not kinds:
                self._add(
                    f"{path}.axes[{index}].variable",
                    f"task {task.task_id!r} has no model-query or embedding step to vary",
                    "vary a variable its steps read instead, or add a model step",
                )
            for value_index, value in enumerate(axis.values):
                value_path = f"{path}.axes[{index}].values[{value_index}]"
                key: object = value.name
                if value.HasField("value"):
                    key = value_to_python(value.value)
                    value_path += ".value"
                else:
                    value_path += ".name"
                if not isinstance(key, str):
                    self._add(value_path, f"{key!r} is not a model key", "use a model key string")
                    continue
                for kind in kinds:
                    self._model_key(key, value_path, kind)
        return [axis.variable for axis in task.strategy.axes if axis.variable]

    def _step(
        self,
        step: config_pb2.StepConfig,
        prefix: str,
        available: _Scope,
        checked: _CheckedStep | None = None,
    ) -> Collection[str]:
        """Checks a step where it is; returns the names it outputs.

        ``prefix`` is the step's field path with a trailing dot; ``checked`` its `_checked`
        result when the caller has it.
        """
        if checked is None:
            checked = self._checked(step)
        if checked.in_scope:  # a sub-job step: its child depends on the scope
            self._step_in_scope(step, prefix, available)
            return checked.outputs
        for suffix, message, hint in checked.problems:
            self._add(f"{prefix}{suffix}", message, hint)
        if not checked.reads:
            return checked.outputs
        scope = available.plus(checked.defaults) if checked.defaults else available
        with_response = scope.plus((dataflow.RESPONSE,))
        for suffix, names, in_output in checked.reads:
            here = with_response if in_output else scope
            for name in names:
                if name not in here:
                    self._names(names, f"{prefix}{suffix}", here)
                    break
        return checked.outputs

    def _checked(self, step: config_pb2.StepConfig, key: bytes | None = None) -> _CheckedStep:
        """What does not depend on a step's place, checked once per distinct step config.

        A large job repeats a few step configs many times. ``key`` is the step's deterministic
        serialization, when the caller has it.
        """
        if key is None:
            key = step.SerializeToString(deterministic=True)
        checked = self._checked_steps.get(key)
        if checked is None:
            if step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
                checked = _CheckedStep((), (), (), dataflow.step_output_names(step), step.id, True)
            else:
                checked = self._step_alone(step)
            self._checked_steps[key] = checked
            self._distinct_steps.append(step)
        return checked

    def _checked_bytes(
        self, tasks: Sequence[config_pb2.TaskConfig], index: int, position: int, key: bytes
    ) -> _CheckedStep:
        """`_checked` of the job's ``tasks[index].steps[position]``, whose bytes are ``key``.

        Steps that differ only in their templates' texts (`wire.StepTexts`) share the checks of
        the rest (`_StepBase`), and their result when the texts read the same names with the
        same problems: the step's wrapper is needed for neither.
        """
        checked = self._checked_steps.get(key)
        if checked is not None:
            return checked
        split = self._step_texts(key)
        if split is None:
            return self._checked(tasks[index].steps[position], key)
        rest, texts = split
        base = self._bases.get(rest)
        if base is None:
            base = self._bases[rest] = self._step_base(tasks[index].steps[position])
        shared: list[object] = [id(base)]  # `_bases` keeps it alive
        problems: list[tuple[str, str, str]] = []
        reads: list[tuple[str, tuple[str, ...], bool]] = []
        for slot, field in base.templates:
            text = texts[slot]
            if not text:
                continue  # an empty template reads nothing and has no problems
            names = plain_names(text)
            if names is None:
                template = Template.parse(text)
                problems.extend((field, p.message, p.hint) for p in template.problems)
                names = tuple(sorted(template.required_names))
            if names:
                reads.append((field, names, False))
            shared.append(names)
            shared.append(len(problems))
        shared.extend(problems)
        memo = tuple(shared)
        checked = self._shared.get(memo)
        if checked is None:
            checked = self._shared[memo] = _CheckedStep(
                base.config_problems + tuple(problems) + base.output_problems,
                base.defaults,
                (*reads, *base.output_reads),
                base.outputs,
                base.step_id,
                False,
            )
        self._checked_steps[key] = checked
        self._wire_steps.append((index, position))
        return checked

    def _step_alone(self, step: config_pb2.StepConfig) -> _CheckedStep:
        """The problems of a step on its own (paths relative to it) and the names it reads."""
        base = self._step_base(step)
        outer, self._problems = self._problems, []
        try:
            reads: list[tuple[str, tuple[str, ...], bool]] = []
            for field, template in dataflow.step_templates(step):
                self._template_problems(template, field)
                if template.required_names:
                    reads.append((field, tuple(sorted(template.required_names)), False))
            problems = tuple((p.path, p.message, p.hint) for p in self._problems)
        finally:
            self._problems = outer
        return _CheckedStep(
            base.config_problems + problems + base.output_problems,
            base.defaults,
            (*reads, *base.output_reads),
            base.outputs,
            base.step_id,
            False,
        )

    def _step_base(self, step: config_pb2.StepConfig) -> _StepBase:
        """The checks of a step on its own but for its templates' (see `_step_alone`)."""
        outer, self._problems = self._problems, []
        try:
            self._step_config(step, "")
            config_problems = tuple((p.path, p.message, p.hint) for p in self._problems)
            self._problems = []
            reads: list[tuple[str, tuple[str, ...], bool]] = []
            for key, value in dataflow.payload(step.output_config).items():
                if isinstance(value, str):
                    template = Template.parse(value)
                    field = f"output_config.payload.{key}"
                    self._template_problems(template, field)
                    if template.required_names:
                        reads.append((field, tuple(sorted(template.required_names)), True))
            output_problems = tuple((p.path, p.message, p.hint) for p in self._problems)
        finally:
            self._problems = outer
        return _StepBase(
            config_problems,
            output_problems,
            tuple(reads),
            tuple(dataflow.payload(step.input_config)),
            dataflow.step_output_names(step),
            step.id,
            _TEXT_TEMPLATES.get(step.step_type, ()),
        )

    def _step_in_scope(self, step: config_pb2.StepConfig, prefix: str, available: _Scope) -> None:
        scope = available.plus(dataflow.payload(step.input_config).keys())
        if not self._step_config(step, prefix):
            return
        for field, template in dataflow.step_templates(step):
            self._template(template, f"{prefix}{field}", scope)
        self._outputs(step.output_config, f"{prefix}output_config", scope)

    def _step_config(self, step: config_pb2.StepConfig, prefix: str) -> bool:
        """Checks a step's type and its type's config; returns whether the type is known."""
        if step.step_type not in _SUB_CONFIGS:
            self._add(
                f"{prefix}step_type",
                f"unknown step type {step.step_type}",
                "use 0 (model query), 1 (function call), 2 (embedding) or 3 (sub-job)",
            )
            return False
        self._foreign_configs(step, prefix)
        if step.step_type == config_pb2.STEP_TYPE_MODEL_QUERY:
            self._model_query(step, prefix)
        elif step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
            self._function_call(step, prefix)
        elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
            self._embedding(step, prefix)
        else:
            self._sub_job(step, prefix)
        return True

    def _foreign_configs(self, step: config_pb2.StepConfig, prefix: str) -> None:
        """Reports the sub-configs of other step types that a step sets."""
        _, own = _SUB_CONFIGS[step.step_type]
        for step_type, (field, label) in _SUB_CONFIGS.items():
            if step_type != step.step_type and step.HasField(field):
                self._add(
                    f"{prefix}{field}",
                    f"set on {own} step",
                    f"remove it, or set step_type to {step_type} for {label}",
                )

    def _model_key(self, key: str, path: str, kind: str) -> str:
        """Checks a step's model key for steps of ``kind``; returns its provider ("" if bad)."""
        if not key:
            example = "GEMINI_FLASH" if kind == CHAT else "OPENAI_EMBEDDING_SMALL"
            self._add(path, "missing", f"name a model, e.g. {example}")
            return ""
        try:
            spec = self.models.resolve(key)
        except UnknownModelKeyError:
            self._add(path, f"unknown model key {key!r}", self.models.describe_unknown(key, kind))
            return ""
        if not is_provider(spec.provider):
            # A registry built in Python may name a provider whose module was not imported.
            self._add(
                path,
                f"model key {key!r} uses provider {spec.provider!r}, which is not registered",
                f"the providers are {', '.join(provider_names())}: {UNKNOWN_PROVIDER_HINT}",
            )
            return ""
        if not spec.serves(kind):
            if kind == EMBEDDING:
                message = f"{key!r} is a chat model; an embedding step needs an embedding model"
                other = "set step_type to 0 for a model query"
            else:
                message = f"{key!r} is an embedding model; a model query needs a chat model"
                other = "set step_type to 2 for an embedding step"
            self._add(
                path,
                message,
                f"use one of the {kind} keys ({_listing(self.models.keys(kind))}), a "
                f"models-file entry of kind {kind}, or provider:model; or {other}",
            )
            return ""
        if kind == EMBEDDING and not adapter_class(spec.provider).embeds:
            self._add(
                path,
                f"{spec.provider} has no embeddings API",
                f"use an embedding model of {', '.join(embedding_providers())}",
            )
            return ""
        return spec.provider

    def _model_query(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}model_query_config"
        if not step.HasField("model_query_config"):
            self._add(path, "missing", "a model query step needs model_query_config")
            return
        query = step.model_query_config
        provider = self._model_key(query.model_key, f"{path}.model_key", CHAT)
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

    def _embedding(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}embedding_config"
        if not step.HasField("embedding_config"):
            self._add(path, "missing", "an embedding step needs embedding_config")
            return
        config = step.embedding_config
        self._model_key(config.model_key, f"{path}.model_key", EMBEDDING)
        if not config.input:
            self._add(f"{path}.input", "missing", 'give the text to embed, e.g. "%text%"')
        if not 0 <= config.dimensions <= MAX_EMBEDDING_DIMENSIONS:
            self._add(
                f"{path}.dimensions",
                f"{config.dimensions} is not a vector length",
                f"use 1 to {MAX_EMBEDDING_DIMENSIONS:,}, or 0 (leave it out) for the model's own",
            )

    def _sub_job(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}sub_job_config"
        if not step.HasField("sub_job_config"):
            self._add(path, "missing", "a sub-job step needs sub_job_config")
            return
        config = step.sub_job_config
        if not config.HasField("job"):
            if config.job_path:
                self._add(
                    f"{path}.job_path",
                    f"the sub-job {config.job_path!r} was not loaded",
                    "load the config from its file (job_runner, config_reader and job_submitter "
                    "do), which reads job_path relative to it; or give the job inline in "
                    "sub_job_config.job",
                )
            else:
                self._add(
                    path,
                    "no job",
                    "set job_path (a job config file, relative to this one) or job (inline)",
                )
            return
        child = Validator(self.models, self.functions, file=self.file, _child=True)
        try:
            child.check_job(config.job, config.inputs.keys())
        except ConfigError as error:
            for problem in error.problems:
                inner = f"{path}.job.{problem.path}" if problem.path else f"{path}.job"
                self._add(inner, problem.message, problem.hint)
            return
        declared = dataflow.payload(config.job.input_config)
        read = sub_job_reads(config.job)
        for name in sorted(config.inputs):
            if name not in declared and name not in read:
                inputs = _listing(sorted({*declared, *read})) or "none"
                self._add(
                    f"{path}.inputs.{name}",
                    f"the sub-job has no input {name!r}",
                    f"route one of the names the sub-job reads ({inputs}), or remove it",
                )
        self._sub_job_outputs(step, config.job, prefix)

    def _sub_job_outputs(
        self, step: config_pb2.StepConfig, job: config_pb2.JobConfig, prefix: str
    ) -> None:
        """Checks that ``%response.TASK.NAME%`` in the outputs names a child's final output."""
        graph = TaskGraph.from_job(job)
        start = job.start_task or graph.roots[0]
        reachable = graph.reachable_from(start)
        tasks = {task.task_id: task for task in job.tasks}
        finals = {
            task_id: dataflow.task_output_names(tasks[task_id])
            for task_id in graph.sinks
            if task_id in reachable
        }
        for key, value in dataflow.payload(step.output_config).items():
            if not isinstance(value, str):
                continue
            for placeholder in Template.parse(value).placeholders:
                if placeholder.name != dataflow.RESPONSE or not placeholder.path:
                    continue
                field = f"{prefix}output_config.payload.{key}"
                task_id, *rest = placeholder.path
                if task_id not in finals:
                    self._add(
                        field,
                        f"%{placeholder.text}%: the sub-job has no final task {task_id!r}",
                        "a sub-job's response holds the outputs of its final tasks (those with "
                        f"no successor), by task id: {_listing(finals)}",
                    )
                elif rest and rest[0] not in finals[task_id]:
                    self._add(
                        field,
                        f"%{placeholder.text}%: the sub-job's task {task_id!r} has no output "
                        f"{rest[0]!r}",
                        f"use one of its outputs: {_listing(finals[task_id])}",
                    )

    def _function_call(self, step: config_pb2.StepConfig, prefix: str) -> None:
        path = f"{prefix}function_call_config"
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

    def _outputs(self, output: config_pb2.DataConfig, path: str, scope: _Scope) -> None:
        with_response = scope.plus((dataflow.RESPONSE,))
        for key, value in dataflow.payload(output).items():
            if isinstance(value, str):
                self._template(Template.parse(value), f"{path}.payload.{key}", with_response)

    def _template(self, template: Template, path: str, scope: _Scope) -> None:
        """Reports a template's bad filters, and the names it needs that have no value."""
        self._template_problems(template, path)
        self._names(template.required_names, path, scope)

    def _template_problems(self, template: Template, path: str) -> None:
        for problem in template.problems:
            self._add(path, problem.message, problem.hint)

    def _names(self, names: Iterable[str], path: str, scope: _Scope) -> None:
        for name in sorted(names):
            if name in scope:
                continue
            far = self._far.producer(name, self._task_id) if self._far else None
            if far is not None:
                self._add(
                    path,
                    f"%{name}% has no value here: task {far!r} produces it, but "
                    "a task only receives the outputs of its direct predecessors",
                    f'pass it through the tasks in between (add "{name}": "" to their '
                    "output_config), or link the tasks directly",
                )
            elif self._child:
                known = scope.listing() or "none"
                self._add(
                    path,
                    f"%{name}% has no value: nothing upstream provides {name!r}",
                    f'route it from the sub-job step: add "{name}": "%...%" to its '
                    f"sub_job_config.inputs; or add {name!r} to an input_config or an earlier "
                    f"output of the sub-job (available here: {known})",
                )
            else:
                known = scope.listing() or "none"
                self._add(
                    path,
                    f"%{name}% has no value: nothing upstream provides {name!r}",
                    f"add {name!r} to an input_config, the job input or an earlier output "
                    f"(available here: {known})",
                )

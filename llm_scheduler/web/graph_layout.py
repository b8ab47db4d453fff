"""A layered drawing of a job's task graph, computed here and drawn as SVG by the pages.

Left to right: each task's column is its longest distance from a root (edges that close a cycle
are left out of that, so an invalid config still draws); an edge that spans several columns gets
a waypoint in each column between, so it runs between boxes rather than through them. Within a
column, tasks are ordered by a few barycentric sweeps (each task moves towards the mean position
of its neighbours in the column before, then after), which removes most crossings. Then each
task is placed at the mean height of its predecessors, pushed down only as far as needed to keep
boxes apart. Everything is linear or n·log n in tasks plus links: 1,000 tasks lay out in a few
milliseconds.

A task holding a sub-job step has a ``sub-job`` badge; the step's line names the child job
(``write · sub-job child.json``) and a line under it lists the child's tasks (``↳ draft →
polish``), so a preview shows what the child runs without opening it.

A map task (``for_each``) is drawn as a stack of boxes with a ``for each ITEM in LIST`` line;
on a run page it also shows how many of its items succeeded (``8/12 items · 1 failed``) and a
bar of its items coloured by status.

The result is a JSON-able dict (`layout_job`, `layout_graph`), with the text lines of each box
and the SVG path of each edge already computed, so that the Jinja partial ``_graph.html`` and the
JavaScript ``llmWeb.drawGraph`` draw the same thing without layout code of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.maps import is_map, map_item_variable
from llm_scheduler.config.strategies import is_strategy
from llm_scheduler.v1 import config_pb2

__all__ = [
    "ItemProgress",
    "StepSummary",
    "layout_graph",
    "layout_job",
    "map_label",
    "step_summaries",
]

NODE_WIDTH = 230
COLUMN_GAP = 70
ROW_GAP = 18
PADDING = 16
TITLE_HEIGHT = 22
LINE_HEIGHT = 16
BOTTOM_PADDING = 8
DUMMY_HEIGHT = 6
MAX_STEP_LINES = 6
SWEEPS = 4
# Characters that fit in a box's width (monospace 11 px for steps, 13 px bold for the title).
STEP_CHARS = 32
TITLE_CHARS = 26
ITEMS_CHARS = 38  # a map's progress line (11 px, proportional)
# A map's bar of items: its height and the space it takes in the box.
BAR_HEIGHT = 6
BAR_SPACE = 10
# The order of a map's bar segments (the rest of the bar is its pending items).
BAR_STATUSES = ("succeeded", "failed", "running", "cancelled", "skipped")


@dataclasses.dataclass(frozen=True)
class StepSummary:
    """What a graph box says about one step.

    Attributes:
        name: The step's name (or id, or its position).
        kind: ``model``, ``function``, ``embedding`` or ``sub_job``.
        detail: The model key, the function name, or the child job (its file or job id).
        child_tasks: A sub-job step's child job's task ids, in order.
    """

    name: str
    kind: str
    detail: str
    child_tasks: tuple[str, ...] = ()

    def label(self) -> str:
        """The step as one line: ``name · KEY``, ``name · f()`` or ``name · embedding · KEY``."""
        detail = self.detail
        if self.kind == "function":
            detail = f"{detail}()"
        elif self.kind == "embedding":
            detail = f"embedding · {detail}" if detail else "embedding"
        elif self.kind == "sub_job":
            detail = f"sub-job {detail}"
        return f"{self.name} · {detail}" if detail else self.name

    def children_label(self) -> str:
        """A sub-job step's child tasks as a line (``↳ draft → polish``); "" for other steps."""
        if self.kind != "sub_job":
            return ""
        return "↳ " + (" → ".join(self.child_tasks) if self.child_tasks else "(no tasks)")

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON object (``child_tasks`` only for a sub-job step)."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "detail": self.detail}
        if self.kind == "sub_job":
            data["child_tasks"] = list(self.child_tasks)
        return data


@dataclasses.dataclass(frozen=True)
class ItemProgress:
    """How far a map task's items (or a strategy's variations) have got, for its box on a run page.

    Attributes:
        total: How many items the map's list has; None before the map has read it.
        counts: Items per status name (``succeeded``, ``failed``, ``running``, ``skipped``,
            ``cancelled``); the other items of ``total`` are pending.
        noun: What an item is called: ``items``, or ``variations`` for a strategy.
    """

    total: int | None
    counts: Mapping[str, int]
    noun: str = "items"

    def label(self) -> str:
        """``8/12 items · 1 failed · 3 skipped``: succeeded of all, then the others but pending."""
        if self.total is None:
            return f"{self.noun} not listed yet"
        text = f"{self.counts.get('succeeded', 0)}/{self.total} {self.noun}"
        for status in ("running", "failed", "cancelled", "skipped"):
            if self.counts.get(status):
                text += f" · {self.counts[status]} {status}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The progress as a JSON object: ``total``, ``counts`` and ``label``."""
        return {"total": self.total, "counts": dict(self.counts), "label": self.label()}


def map_label(task: config_pb2.TaskConfig) -> str:
    """What a map task's box says of its list: ``for each item in %sections%``; "" if no map.

    A strategy task is drawn as a map of its variations: ``strategy: model × prompt``.
    """
    if is_strategy(task):
        return "strategy: " + " × ".join(axis.name for axis in task.strategy.axes)
    if not is_map(task):
        return ""
    return f"for each {map_item_variable(task.for_each)} in {task.for_each.items}"


def step_summaries(task: config_pb2.TaskConfig) -> list[StepSummary]:
    """The summaries of a task's steps, in order."""
    summaries = []
    for index, step in enumerate(task.steps):
        name = step.name or step.id or f"step {index}"
        if step.step_type == config_pb2.STEP_TYPE_FUNCTION_CALL:
            summaries.append(StepSummary(name, "function", step.function_call_config.function_name))
        elif step.step_type == config_pb2.STEP_TYPE_EMBEDDING:
            summaries.append(StepSummary(name, "embedding", step.embedding_config.model_key))
        elif step.step_type == config_pb2.STEP_TYPE_SUB_JOB:
            child = step.sub_job_config
            tasks = tuple(task.task_id for task in child.job.tasks)
            source = child.job_path or child.job.job_id or "inline job"
            summaries.append(StepSummary(name, "sub_job", source, tasks))
        else:
            summaries.append(StepSummary(name, "model", step.model_query_config.model_key))
    return summaries


def layout_job(
    job: config_pb2.JobConfig,
    *,
    statuses: Mapping[str, str] | None = None,
    items: Mapping[str, ItemProgress] | None = None,
) -> dict[str, Any]:
    """Lays out a job's task graph.

    Args:
        job: The job config (it need not be valid: unknown successors and cycles still draw).
        statuses: A run status per task id (``RUN_STATUS_SUCCEEDED`` ...), for each node's
            ``status`` field; the pages turn it into a ``status-...`` class.
        items: For a run: the progress of each map task's items (a run page gives every map
            task one, so that its box keeps its height as the run goes on).

    Returns:
        The layout, as described in `layout_graph`.
    """
    graph = TaskGraph.from_job(job)
    names: dict[str, str] = {}
    steps: dict[str, list[StepSummary]] = {}
    maps: dict[str, str] = {}
    for task in job.tasks:
        names.setdefault(task.task_id, task.name)
        steps.setdefault(task.task_id, step_summaries(task))
        if is_map(task) or is_strategy(task):
            maps.setdefault(task.task_id, map_label(task))
    start = job.start_task if job.start_task in names else ""
    return layout_graph(
        graph, names=names, steps=steps, start=start, statuses=statuses, maps=maps, items=items
    )


def layout_graph(
    graph: TaskGraph,
    *,
    names: Mapping[str, str] | None = None,
    steps: Mapping[str, Sequence[StepSummary]] | None = None,
    start: str = "",
    statuses: Mapping[str, str] | None = None,
    maps: Mapping[str, str] | None = None,
    items: Mapping[str, ItemProgress] | None = None,
) -> dict[str, Any]:
    """Lays out a task graph.

    Args:
        graph: The tasks and their links.
        names: Each task's display name, if any.
        steps: Each task's step summaries, listed in its box.
        start: The start task; by default the roots are marked as start.
        statuses: A run status per task id, copied to each node's ``status``.
        maps: The `map_label` of each map task, drawn as a stack of boxes.
        items: The progress of map tasks' items, shown in their boxes.

    Returns:
        ``{"width", "height", "columns", "nodes", "edges"}``. Each node: ``task_id``, ``name``,
        ``x``, ``y`` (top left), ``width``, ``height``, ``column``, ``steps`` (``{"name",
        "kind", "detail"}`` each), ``is_join`` (several predecessors), ``is_start``,
        ``status``, ``is_map``, ``map`` (its label, or ""), ``items`` (`ItemProgress.to_json`,
        or None), ``bars`` (the item bar's segments, ``{"x", "y", "width", "height",
        "status"}``, the first the whole bar), ``tooltip`` and ``lines`` (``{"text", "x", "y",
        "class"}`` relative to the box). Each edge: ``source``, ``target``, ``points``
        (``[x, y]`` pairs) and ``path`` (an SVG path through them).
    """
    names = names or {}
    steps = steps or {}
    statuses = statuses or {}
    maps = maps or {}
    items = items or {}
    order = _order_breaking_cycles(graph)
    position = {task_id: index for index, task_id in enumerate(order)}
    column = _columns(graph, order, position)
    forward = [
        (source, target)
        for source in graph.task_ids
        for target in graph.successors[source]
        if position[source] < position[target]
    ]
    backward = [
        (source, target)
        for source in graph.task_ids
        for target in graph.successors[source]
        if position[source] > position[target]
    ]
    layers, chains, preds, succs = _with_waypoints(graph, order, column, forward)
    _sweep(layers, preds, succs)

    heights = {
        task_id: _box_height(
            len(steps.get(task_id, ())),
            (task_id in maps) + (task_id in items) + _sub_job_lines(steps.get(task_id, ())),
            task_id in items,
        )
        for task_id in graph.task_ids
    }
    tops = _place(layers, preds, heights)
    starts = {start} if start else set(graph.roots)
    nodes = []
    for task_id in graph.task_ids:
        summaries = list(steps.get(task_id, ()))
        x = PADDING + column[task_id] * (NODE_WIDTH + COLUMN_GAP)
        name = names.get(task_id, "")
        label = maps.get(task_id, "")
        progress = items.get(task_id)
        head = _MapHead(label, progress)
        nodes.append(
            {
                "task_id": task_id,
                "name": name,
                "x": x,
                "y": tops[task_id],
                "width": NODE_WIDTH,
                "height": heights[task_id],
                "column": column[task_id],
                "steps": [summary.to_json() for summary in summaries],
                "is_join": len(graph.predecessors[task_id]) > 1,
                "is_start": task_id in starts,
                "status": statuses.get(task_id, ""),
                "is_map": bool(label),
                "map": label,
                "items": None if progress is None else progress.to_json(),
                "bars": _bars(head),
                "tooltip": _tooltip(task_id, name, summaries, head),
                "lines": _lines(task_id, name, summaries, task_id in starts, graph, head),
            }
        )
    by_id = {node["task_id"]: node for node in nodes}
    edges = [_edge(by_id[s], by_id[t], chains[(s, t)], tops, column) for s, t in forward]
    edges += [_back_edge(by_id[s], by_id[t]) for s, t in backward]
    columns = max(column.values(), default=-1) + 1
    width = 2 * PADDING + max(columns * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP, 0)
    height = PADDING + max((tops[key] + heights.get(key, DUMMY_HEIGHT) for key in tops), default=0)
    return {
        "width": width,
        "height": height,
        "columns": columns,
        "nodes": nodes,
        "edges": edges,
    }


def _order_breaking_cycles(graph: TaskGraph) -> list[str]:
    """A topological order; in a cycle, the earliest remaining task (config order) goes next."""
    remaining = {task_id: len(graph.predecessors[task_id]) for task_id in graph.task_ids}
    done: set[str] = set()
    ready = [task_id for task_id in graph.task_ids if remaining[task_id] == 0]
    ready.reverse()  # a stack, popped in config order
    order: list[str] = []
    next_forced = 0
    while len(order) < len(graph.task_ids):
        if not ready:
            while graph.task_ids[next_forced] in done:
                next_forced += 1
            ready.append(graph.task_ids[next_forced])
        task_id = ready.pop()
        if task_id in done:
            continue
        done.add(task_id)
        order.append(task_id)
        for successor in reversed(graph.successors[task_id]):
            remaining[successor] -= 1
            if remaining[successor] == 0 and successor not in done:
                ready.append(successor)
    return order


def _columns(graph: TaskGraph, order: list[str], position: Mapping[str, int]) -> dict[str, int]:
    """Each task's longest distance from a root, over the edges that follow the order."""
    column: dict[str, int] = {}
    for task_id in order:
        column[task_id] = max(
            (column[p] + 1 for p in graph.predecessors[task_id] if position[p] < position[task_id]),
            default=0,
        )
    return column


def _with_waypoints(
    graph: TaskGraph,
    order: list[str],
    column: Mapping[str, int],
    forward: list[tuple[str, str]],
) -> tuple[
    list[list[str]],
    dict[tuple[str, str], list[str]],
    dict[str, list[str]],
    dict[str, list[str]],
]:
    """Columns of tasks and waypoints, the waypoints of each edge, and the links between them."""
    columns = max(column.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(columns)]
    for task_id in order:
        layers[column[task_id]].append(task_id)
    preds: dict[str, list[str]] = {task_id: [] for task_id in graph.task_ids}
    succs: dict[str, list[str]] = {task_id: [] for task_id in graph.task_ids}
    chains: dict[tuple[str, str], list[str]] = {}
    for source, target in forward:
        chain = []
        previous = source
        for layer in range(column[source] + 1, column[target]):
            # Keys that no task id can be (ids are identifiers), so no clash.
            waypoint = f"\0{source}\0{target}\0{layer}"
            layers[layer].append(waypoint)
            preds[waypoint] = [previous]
            succs[waypoint] = []
            succs[previous].append(waypoint)
            chain.append(waypoint)
            previous = waypoint
        succs[previous].append(target)
        preds[target].append(previous)
        chains[(source, target)] = chain
    return layers, chains, preds, succs


def _sweep(
    layers: list[list[str]], preds: Mapping[str, list[str]], succs: Mapping[str, list[str]]
) -> None:
    """Reorders each column by the mean position of each entry's neighbours (in place)."""
    index = {key: i for layer in layers for i, key in enumerate(layer)}

    def reorder(layer: list[str], neighbours: Mapping[str, list[str]]) -> None:
        def barycenter(key: str) -> float:
            near = neighbours[key]
            if not near:
                return float(index[key])
            return sum(index[n] for n in near) / len(near)

        layer.sort(key=barycenter)  # stable: ties keep their order
        for i, key in enumerate(layer):
            index[key] = i

    for _ in range(SWEEPS):
        for layer in layers[1:]:
            reorder(layer, preds)
        for layer in reversed(layers[:-1]):
            reorder(layer, succs)
    for layer in layers[1:]:
        reorder(layer, preds)


def _place(
    layers: list[list[str]], preds: Mapping[str, list[str]], heights: Mapping[str, int]
) -> dict[str, int]:
    """The top of each entry: at its predecessors' mean centre, pushed down to avoid overlap."""
    tops: dict[str, int] = {}
    for layer in layers:
        bottom = PADDING - ROW_GAP
        for key in layer:
            height = heights.get(key, DUMMY_HEIGHT)
            near = preds[key]
            wanted = bottom + ROW_GAP
            if near:
                centre = sum(tops[n] + heights.get(n, DUMMY_HEIGHT) / 2 for n in near) / len(near)
                wanted = max(wanted, round(centre - height / 2))
            tops[key] = wanted
            bottom = wanted + height
    return tops


@dataclasses.dataclass(frozen=True)
class _MapHead:
    """What a box shows of a map under its title: its label, then its items' progress."""

    label: str
    progress: ItemProgress | None


def _sub_job_lines(summaries: Sequence[StepSummary]) -> int:
    """The lines a box gives its sub-job steps' child tasks, one under each step shown."""
    return sum(summary.kind == "sub_job" for summary in summaries[:MAX_STEP_LINES])


def _box_height(step_count: int, map_lines: int = 0, bar: bool = False) -> int:
    lines = min(step_count, MAX_STEP_LINES) + (1 if step_count > MAX_STEP_LINES else 0)
    lines += map_lines
    return (
        TITLE_HEIGHT
        + lines * LINE_HEIGHT
        + (BAR_SPACE if bar else 0)
        + BOTTOM_PADDING
        + (4 if lines else 0)
    )


def _bar_top(head: _MapHead) -> int:
    """The top of a map's item bar: under its label and progress lines."""
    return TITLE_HEIGHT + 4 + (bool(head.label) + 1) * LINE_HEIGHT + 1


def _bars(head: _MapHead) -> list[dict[str, Any]]:
    """A map's item bar: the whole (pending), then a segment per status, in `BAR_STATUSES` order."""
    progress = head.progress
    if progress is None:
        return []
    top = _bar_top(head)
    width = NODE_WIDTH - 16
    bars = [{"x": 8, "y": top, "width": width, "height": BAR_HEIGHT, "status": "pending"}]
    x = 8.0
    for status in BAR_STATUSES:
        count = progress.counts.get(status, 0)
        if not count or not progress.total:
            continue
        part = width * min(count, progress.total) / progress.total
        bars.append(
            {
                "x": round(x, 1),
                "y": top,
                "width": round(max(part, 1.0), 1),
                "height": BAR_HEIGHT,
                "status": status,
            }
        )
        x += part
    return bars


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(
    task_id: str,
    name: str,
    summaries: Sequence[StepSummary],
    is_start: bool,
    graph: TaskGraph,
    head: _MapHead,
) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {"text": _clip(task_id, TITLE_CHARS), "x": 8, "y": 17, "class": "graph-title"}
    ]
    badges = []
    if is_start:
        badges.append("start")
    if len(graph.predecessors[task_id]) > 1:
        badges.append(f"join of {len(graph.predecessors[task_id])}")
    if any(summary.kind == "sub_job" for summary in summaries):
        badges.append("sub-job")
    if badges:
        lines.append(
            {"text": " · ".join(badges), "x": NODE_WIDTH - 8, "y": 15, "class": "graph-badge"}
        )
    y = TITLE_HEIGHT + 4
    if head.label:
        y += LINE_HEIGHT
        lines.append(
            {"text": _clip(head.label, STEP_CHARS), "x": 8, "y": y - 4, "class": "graph-map"}
        )
    if head.progress is not None:
        y += LINE_HEIGHT
        lines.append(
            {
                "text": _clip(head.progress.label(), ITEMS_CHARS),
                "x": 8,
                "y": y - 4,
                "class": "graph-items",
            }
        )
        y += BAR_SPACE
    for summary in summaries[:MAX_STEP_LINES]:
        y += LINE_HEIGHT
        lines.append(
            {"text": _clip(summary.label(), STEP_CHARS), "x": 8, "y": y - 4, "class": "graph-step"}
        )
        if summary.kind == "sub_job":
            y += LINE_HEIGHT
            lines.append(
                {
                    "text": _clip(summary.children_label(), STEP_CHARS - 2),
                    "x": 20,
                    "y": y - 4,
                    "class": "graph-subjob",
                }
            )
    if len(summaries) > MAX_STEP_LINES:
        y += LINE_HEIGHT
        more = len(summaries) - MAX_STEP_LINES
        lines.append(
            {
                "text": f"+{more} more step{'s' if more != 1 else ''}",
                "x": 8,
                "y": y - 4,
                "class": "graph-step",
            }
        )
    del name  # shown in the tooltip; the id is what runs and problems name
    return lines


def _tooltip(task_id: str, name: str, summaries: Sequence[StepSummary], head: _MapHead) -> str:
    title = f"{task_id} — {name}" if name and name != task_id else task_id
    extra = [head.label] if head.label else []
    if head.progress is not None:
        extra.append(head.progress.label())
    steps = []
    for summary in summaries:
        steps.append(summary.label())
        if summary.kind == "sub_job":
            steps.append("  " + summary.children_label())
    return "\n".join([title, *extra, *steps])


def _edge(
    source: Mapping[str, Any],
    target: Mapping[str, Any],
    waypoints: Sequence[str],
    tops: Mapping[str, int],
    column: Mapping[str, int],
) -> dict[str, Any]:
    """An edge from the source's right side to the target's left, through its waypoints.

    Coordinates are whole pixels (box heights are even, so centres are too).
    """
    x0 = source["x"] + source["width"]
    y0 = source["y"] + source["height"] // 2
    points = [[x0, y0]]
    for offset, waypoint in enumerate(waypoints, start=1):
        left = PADDING + (column[source["task_id"]] + offset) * (NODE_WIDTH + COLUMN_GAP)
        y = tops[waypoint] + DUMMY_HEIGHT // 2
        points += [[left, y], [left + NODE_WIDTH, y]]
    points.append([target["x"], target["y"] + target["height"] // 2])
    parts = [f"M {x0} {y0}"]
    for index in range(1, len(points)):
        (xa, ya), (xb, yb) = points[index - 1], points[index]
        if index % 2 == 0:  # through a column, between a waypoint's two points
            parts.append(f"L {xb} {yb}")
        else:
            bend = (xb - xa) // 2
            parts.append(f"C {xa + bend} {ya} {xb - bend} {yb} {xb} {yb}")
    return {
        "source": source["task_id"],
        "target": target["task_id"],
        "points": points,
        "path": " ".join(parts),
    }


def _back_edge(source: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """An edge closing a cycle: a loop out of the source's right side into the target's left."""
    x0, y0 = source["x"] + source["width"], source["y"] + source["height"] // 2
    x1, y1 = target["x"], target["y"] + target["height"] // 2
    reach, low = COLUMN_GAP, max(y0, y1) + 40
    path = (
        f"M {x0} {y0} C {x0 + reach} {y0} {x0 + reach} {y0 + 40} {(x0 + x1) // 2} {low} "
        f"S {x1 - reach} {y1} {x1} {y1}"
    )
    return {
        "source": source["task_id"],
        "target": target["task_id"],
        "points": [[x0, y0], [x1, y1]],
        "path": path,
    }

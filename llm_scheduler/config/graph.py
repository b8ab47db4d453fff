"""The task graph of a job: successors from ``next_task``/``next_tasks``, order, cycles, drawing."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence

from llm_scheduler.v1 import config_pb2

__all__ = ["TaskGraph", "successors_of"]


def successors_of(task: config_pb2.TaskConfig) -> list[str]:
    """The ids a task names as successors, ``next_task`` first, without repeats or blanks."""
    names = [task.next_task, *task.next_tasks]
    return list(dict.fromkeys(name for name in names if name))


@dataclasses.dataclass(frozen=True)
class TaskGraph:
    """The edges between a job's tasks (references to unknown tasks are left out).

    Attributes:
        task_ids: Task ids in config order.
        successors: For each task, the tasks it names as next.
        predecessors: For each task, the tasks that name it, in config order.
    """

    task_ids: tuple[str, ...]
    successors: Mapping[str, tuple[str, ...]]
    predecessors: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_job(cls, job: config_pb2.JobConfig) -> TaskGraph:
        """Builds the graph of a job, in time linear in its tasks and links."""
        return cls.from_links(
            [(task.task_id, task.next_task, task.next_tasks) for task in job.tasks]
        )

    @classmethod
    def from_links(cls, links: Sequence[tuple[str, str, Sequence[str]]]) -> TaskGraph:
        """Builds the graph from ``(task_id, next_task, next_tasks)`` per task, in config order."""
        known = dict.fromkeys([task_id for task_id, _, _ in links])
        if len(known) < len(links):  # a repeated id: its links are merged
            return cls._from_repeated_links(tuple(known), links)
        # Each task's successors are set once; a task's predecessors are one tuple until its
        # second (a join gathers them in a list): a wide job makes no container per task.
        successors: dict[str, tuple[str, ...]] = dict.fromkeys(known, ())
        predecessors: dict[str, tuple[str, ...]] = dict.fromkeys(known, ())
        joins: dict[str, list[str]] = {}
        for task_id, next_task, next_tasks in links:
            names: tuple[str, ...]
            if next_tasks:
                names = tuple(
                    dict.fromkeys(
                        [
                            name
                            for name in (next_task, *next_tasks)
                            if name and name != task_id and name in known
                        ]
                    )
                )
            elif next_task and next_task != task_id and next_task in known:
                names = (next_task,)
            else:
                continue
            successors[task_id] = names
            for name in names:
                if not predecessors[name]:
                    predecessors[name] = (task_id,)
                elif name in joins:
                    joins[name].append(task_id)
                else:
                    joins[name] = [*predecessors[name], task_id]
        for name, gathered in joins.items():
            predecessors[name] = tuple(gathered)
        return cls(task_ids=tuple(known), successors=successors, predecessors=predecessors)

    @classmethod
    def _from_repeated_links(
        cls, ids: tuple[str, ...], links: Sequence[tuple[str, str, Sequence[str]]]
    ) -> TaskGraph:
        """`from_links` when an id is repeated: its tasks' successors are merged."""
        # Dicts as ordered sets: a join's predecessors and a repeated id's successors are
        # gathered without a linear membership test per link.
        successors: dict[str, dict[str, None]] = {task_id: {} for task_id in ids}
        predecessors: dict[str, dict[str, None]] = {task_id: {} for task_id in ids}
        for task_id, next_task, next_tasks in links:
            for name in (next_task, *next_tasks) if next_tasks else (next_task,):
                if name and name in predecessors and name != task_id:
                    successors[task_id][name] = None
                    predecessors[name][task_id] = None
        return cls(
            task_ids=ids,
            successors={k: tuple(v) for k, v in successors.items()},
            predecessors={k: tuple(v) for k, v in predecessors.items()},
        )

    @property
    def roots(self) -> list[str]:
        """Tasks with no predecessor."""
        return [t for t in self.task_ids if not self.predecessors[t]]

    @property
    def sinks(self) -> list[str]:
        """Tasks with no successor."""
        return [t for t in self.task_ids if not self.successors[t]]

    def find_cycle(self) -> list[str] | None:
        """A cycle as a list of task ids (first id repeated at the end), or None.

        Kahn's algorithm first (cheap): only a graph that has a cycle is searched depth-first,
        with an explicit stack, so a chain of any length fits.
        """
        # Only joins wait for a count: a task with one predecessor is free once that one is.
        free = [task_id for task_id, preds in self.predecessors.items() if not preds]
        joins = {
            task_id: len(preds) for task_id, preds in self.predecessors.items() if len(preds) > 1
        }
        ordered = 0
        while free:
            ordered += 1
            for nxt in self.successors[free.pop()]:
                if nxt in joins:
                    joins[nxt] -= 1
                    if joins[nxt]:
                        continue
                free.append(nxt)
        if ordered == len(self.predecessors):
            return None
        done: set[str] = set()
        for root in self.task_ids:
            if root in done:
                continue
            path = [root]  # the current path, and each id's position on it
            on_path = {root: 0}
            pending = [iter(self.successors[root])]
            while pending:
                for nxt in pending[-1]:
                    if nxt in on_path:
                        return [*path[on_path[nxt] :], nxt]
                    if nxt not in done:
                        on_path[nxt] = len(path)
                        path.append(nxt)
                        pending.append(iter(self.successors[nxt]))
                        break
                else:
                    node = path.pop()
                    del on_path[node]
                    done.add(node)
                    pending.pop()
        return None

    def reachable_from(self, start: str) -> set[str]:
        """The tasks reachable from ``start``, itself included."""
        seen = {start}
        todo = [start]
        while todo:
            for nxt in self.successors.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def ancestors(self, task_id: str) -> set[str]:
        """Every task ``task_id`` transitively depends on."""
        seen: set[str] = set()
        todo = list(self.predecessors.get(task_id, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(self.predecessors.get(node, ()))
        return seen

    def topological_order(self) -> list[str]:
        """Task ids so that every task comes after its predecessors (config order on ties).

        Raises:
            ValueError: The graph has a cycle.
        """
        remaining = {t: len(self.predecessors[t]) for t in self.task_ids}
        order: list[str] = []
        ready = collections.deque(t for t in self.task_ids if remaining[t] == 0)
        while ready:
            node = ready.popleft()
            order.append(node)
            for nxt in self.successors[node]:
                remaining[nxt] -= 1
                if remaining[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(self.task_ids):
            raise ValueError("the task graph has a cycle")
        return order

    def levels(self) -> list[list[str]]:
        """Tasks grouped by their longest distance from a root; a level's tasks may run at once."""
        depth: dict[str, int] = {}
        for node in self.topological_order():
            preds = self.predecessors[node]
            depth[node] = max((depth[p] + 1 for p in preds), default=0)
        levels: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for node in self.task_ids:
            levels[depth[node]].append(node)
        return levels

    def render_text(self, step_counts: Mapping[str, int] | None = None) -> str:
        """Draws the graph as text, one level per block, with each task's successors."""
        lines: list[str] = []
        for index, level in enumerate(self.levels()):
            parallel = "  (run in parallel)" if len(level) > 1 else ""
            lines.append(f"level {index}{parallel}")
            for node in level:
                steps = ""
                if step_counts is not None:
                    count = step_counts.get(node, 0)
                    steps = f" [{count} step{'s' if count != 1 else ''}]"
                nexts = self.successors[node]
                arrow = f" -> {', '.join(nexts)}" if nexts else "  (final)"
                joins = self.predecessors[node]
                join = f"  (joins {', '.join(joins)})" if len(joins) > 1 else ""
                lines.append(f"  {node}{steps}{arrow}{join}")
        return "\n".join(lines)

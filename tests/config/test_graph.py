from __future__ import annotations

import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.graph import TaskGraph, successors_of
from llm_scheduler.v1 import config_pb2


def graph_of(text: str) -> TaskGraph:
    job = formats.loads(text, config_pb2.JobConfig, formats.ConfigFormat.JSON, file="job.json")
    return TaskGraph.from_job(job)


# "start" fans out to "pros" and "cons", which join in "report"; "start" feeds it directly too.
DIAMOND = """{"tasks": [
  {"task_id": "start", "next_tasks": ["pros", "cons", "report"]},
  {"task_id": "pros", "next_task": "report"},
  {"task_id": "cons", "next_task": "report"},
  {"task_id": "report", "next_task": "publish"},
  {"task_id": "publish"}
]}"""


def test_successors_of_puts_next_task_first_without_repeats_or_blanks() -> None:
    task = config_pb2.TaskConfig(next_task="b", next_tasks=["c", "", "b", "d", "c"])
    assert successors_of(task) == ["b", "c", "d"]
    assert successors_of(config_pb2.TaskConfig()) == []


def test_successors_and_predecessors() -> None:
    graph = graph_of(DIAMOND)
    assert graph.task_ids == ("start", "pros", "cons", "report", "publish")
    assert graph.successors["start"] == ("pros", "cons", "report")
    assert graph.successors["publish"] == ()
    assert graph.predecessors["report"] == ("start", "pros", "cons")
    assert graph.predecessors["start"] == ()


def test_unknown_and_self_references_are_left_out() -> None:
    graph = graph_of(
        '{"tasks": [{"task_id": "a", "next_task": "a", "next_tasks": ["zzz", "b"]},'
        ' {"task_id": "b"}]}'
    )
    assert graph.successors == {"a": ("b",), "b": ()}
    assert graph.predecessors == {"a": (), "b": ("a",)}


def test_roots_and_sinks() -> None:
    graph = graph_of(DIAMOND)
    assert graph.roots == ["start"]
    assert graph.sinks == ["publish"]
    lone = graph_of(
        '{"tasks": [{"task_id": "a"}, {"task_id": "b", "next_task": "c"}, {"task_id": "c"}]}'
    )
    assert lone.roots == ["a", "b"]
    assert lone.sinks == ["a", "c"]


def test_reachable_and_ancestors() -> None:
    graph = graph_of(DIAMOND)
    assert graph.reachable_from("pros") == {"pros", "report", "publish"}
    assert graph.ancestors("publish") == {"start", "pros", "cons", "report"}
    assert graph.ancestors("start") == set()


def test_find_cycle() -> None:
    assert graph_of(DIAMOND).find_cycle() is None
    two = graph_of(
        '{"tasks": [{"task_id": "a", "next_task": "b"}, {"task_id": "b", "next_task": "a"}]}'
    )
    assert two.find_cycle() == ["a", "b", "a"]
    three = graph_of(
        '{"tasks": [{"task_id": "root", "next_task": "a"},'
        ' {"task_id": "a", "next_task": "b"}, {"task_id": "b", "next_task": "c"},'
        ' {"task_id": "c", "next_task": "a"}]}'
    )
    assert three.find_cycle() == ["a", "b", "c", "a"]


def test_topological_order() -> None:
    graph = graph_of(DIAMOND)
    order = graph.topological_order()
    assert order == ["start", "pros", "cons", "report", "publish"]
    for task_id in order:
        for successor in graph.successors[task_id]:
            assert order.index(task_id) < order.index(successor)
    reversed_config = graph_of(
        '{"tasks": [{"task_id": "c"}, {"task_id": "b", "next_task": "c"},'
        ' {"task_id": "a", "next_task": "b"}]}'
    )
    assert reversed_config.topological_order() == ["a", "b", "c"]


def test_topological_order_of_a_cycle_raises() -> None:
    graph = graph_of(
        '{"tasks": [{"task_id": "a", "next_task": "b"}, {"task_id": "b", "next_task": "a"}]}'
    )
    with pytest.raises(ValueError, match="cycle"):
        graph.topological_order()


def test_levels_use_the_longest_distance_from_a_root() -> None:
    assert graph_of(DIAMOND).levels() == [["start"], ["pros", "cons"], ["report"], ["publish"]]
    assert TaskGraph.from_job(config_pb2.JobConfig()).levels() == []


def test_render_text_shows_parallel_levels_and_joins() -> None:
    text = graph_of(DIAMOND).render_text({"start": 1, "pros": 2, "cons": 2, "report": 1})
    assert text == "\n".join(
        [
            "level 0",
            "  start [1 step] -> pros, cons, report",
            "level 1  (run in parallel)",
            "  pros [2 steps] -> report",
            "  cons [2 steps] -> report",
            "level 2",
            "  report [1 step] -> publish  (joins start, pros, cons)",
            "level 3",
            "  publish [0 steps]  (final)",
        ]
    )


def test_render_text_without_step_counts() -> None:
    graph = graph_of('{"tasks": [{"task_id": "a", "next_task": "b"}, {"task_id": "b"}]}')
    assert graph.render_text() == "level 0\n  a -> b\nlevel 1\n  b  (final)"


def chain(length: int, *, closed: bool = False) -> config_pb2.JobConfig:
    """A job whose tasks t0 -> t1 -> ... form a chain (a cycle back to t0 when ``closed``)."""
    job = config_pb2.JobConfig()
    for index in range(length):
        last = index == length - 1
        job.tasks.add(task_id=f"t{index}", next_task="t0" if last and closed else "")
        if not last:
            job.tasks[index].next_task = f"t{index + 1}"
    return job


def test_long_chains_need_no_recursion() -> None:
    # Longer than Python's recursion limit: the graph algorithms must be iterative.
    graph = TaskGraph.from_job(chain(5000))
    assert graph.find_cycle() is None
    assert graph.topological_order() == [f"t{i}" for i in range(5000)]
    assert len(graph.levels()) == 5000
    assert graph.reachable_from("t0") == set(graph.task_ids)
    assert len(graph.ancestors("t4999")) == 4999
    cycle = TaskGraph.from_job(chain(5000, closed=True)).find_cycle()
    assert cycle == [*(f"t{i}" for i in range(5000)), "t0"]


def test_a_wide_join_keeps_each_predecessor_once_in_config_order() -> None:
    job = config_pb2.JobConfig()
    start = job.tasks.add(task_id="start")
    for index in range(3000):
        start.next_tasks.append(f"w{index}")
        job.tasks.add(task_id=f"w{index}", next_task="end", next_tasks=["end"])
    job.tasks.add(task_id="end")
    graph = TaskGraph.from_job(job)
    assert graph.predecessors["end"] == tuple(f"w{i}" for i in range(3000))
    assert graph.successors["w7"] == ("end",)
    assert graph.levels() == [["start"], [f"w{i}" for i in range(3000)], ["end"]]


def test_a_repeated_task_id_merges_its_links() -> None:
    graph = graph_of(
        '{"tasks": [{"task_id": "a", "next_task": "b"}, {"task_id": "b"},'
        ' {"task_id": "a", "next_tasks": ["c", "b"]}, {"task_id": "c"}]}'
    )
    assert graph.task_ids == ("a", "b", "c")
    assert graph.successors["a"] == ("b", "c")
    assert graph.predecessors["b"] == ("a",)

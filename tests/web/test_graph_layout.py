"""The layered graph layout: columns follow the links, boxes never overlap, any size lays out."""

from __future__ import annotations

import itertools
import json
from typing import Any

import jinja2
import pytest

from llm_scheduler.config import formats
from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.testing.sized_jobs import chain_job, fan_out_job
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web import graph_layout
from llm_scheduler.web.app import TEMPLATES_DIR, status_class
from llm_scheduler.web.graph_layout import (
    MAX_STEP_LINES,
    StepSummary,
    layout_graph,
    layout_job,
    step_summaries,
)
from tests.conftest import REPO_ROOT


def job_of(links: dict[str, list[str]], **fields: Any) -> config_pb2.JobConfig:
    """A job whose tasks (in the given order) name the given successors, one model step each."""
    job = config_pb2.JobConfig(job_id="j", **fields)
    for task_id, successors in links.items():
        task = job.tasks.add(task_id=task_id, next_tasks=successors)
        task.steps.add(name="ask").model_query_config.model_key = "OFFLINE"
    return job


def nodes_by_id(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["task_id"]: node for node in graph["nodes"]}


def assert_no_overlap(graph: dict[str, Any]) -> None:
    boxes = sorted(
        (node["x"], node["y"], node["x"] + node["width"], node["y"] + node["height"])
        for node in graph["nodes"]
    )
    by_column: dict[float, list[tuple[float, float]]] = {}
    for left, top, _, bottom in boxes:
        by_column.setdefault(left, []).append((top, bottom))
    lefts = sorted(by_column)
    for a, b in itertools.pairwise(lefts):
        assert b >= a + graph["nodes"][0]["width"], "columns overlap"
    for spans in by_column.values():
        spans.sort()
        for (_, bottom), (top, _) in itertools.pairwise(spans):
            assert top >= bottom, "boxes of a column overlap"
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= graph["width"]
        assert 0 <= top < bottom <= graph["height"]


def assert_columns_follow_links(graph: dict[str, Any]) -> None:
    nodes = nodes_by_id(graph)
    for edge in graph["edges"]:
        assert nodes[edge["source"]]["column"] < nodes[edge["target"]]["column"]


def crossings(graph: dict[str, Any]) -> int:
    """Crossings between edges that join neighbouring columns (by box centres)."""
    nodes = nodes_by_id(graph)

    def centre(task_id: str) -> float:
        node = nodes[task_id]
        return float(node["y"] + node["height"] / 2)

    spans = [
        (nodes[e["source"]]["column"], centre(e["source"]), centre(e["target"]))
        for e in graph["edges"]
        if nodes[e["target"]]["column"] == nodes[e["source"]]["column"] + 1
    ]
    return sum(
        1
        for (c1, a1, b1), (c2, a2, b2) in itertools.combinations(spans, 2)
        if c1 == c2 and (a1 - a2) * (b1 - b2) < 0
    )


def test_sample_fan_out_job() -> None:
    job = formats.load(REPO_ROOT / "examples/sample_fanout_job_config.json", config_pb2.JobConfig)
    graph = layout_job(job)
    nodes = nodes_by_id(graph)
    assert [nodes[t]["column"] for t in ("outline", "pros", "cons", "verdict")] == [0, 1, 1, 2]
    assert nodes["outline"]["is_start"] and not nodes["pros"]["is_start"]
    assert nodes["verdict"]["is_join"] and not nodes["pros"]["is_join"]
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {
        ("outline", "pros"),
        ("outline", "cons"),
        ("pros", "verdict"),
        ("cons", "verdict"),
    }
    assert nodes["pros"]["steps"] == [{"name": "pros", "kind": "model", "detail": "GEMINI_FLASH"}]
    assert graph["columns"] == 3
    assert_no_overlap(graph)
    assert crossings(graph) == 0
    json.dumps(graph)  # JSON-able


def test_edges_run_from_box_to_box() -> None:
    graph = layout_job(job_of({"a": ["b"], "b": []}))
    a, b = nodes_by_id(graph)["a"], nodes_by_id(graph)["b"]
    (edge,) = graph["edges"]
    assert edge["points"][0] == [a["x"] + a["width"], a["y"] + a["height"] / 2]
    assert edge["points"][-1] == [b["x"], b["y"] + b["height"] / 2]
    assert edge["path"].startswith("M ")


def test_a_long_edge_goes_around_the_boxes_between() -> None:
    # a -> b -> c and a -> c: the a -> c edge crosses b's column beside b, not through it.
    graph = layout_job(job_of({"a": ["b", "c"], "b": ["c"], "c": []}))
    nodes = nodes_by_id(graph)
    assert [nodes[t]["column"] for t in "abc"] == [0, 1, 2]
    long = next(e for e in graph["edges"] if (e["source"], e["target"]) == ("a", "c"))
    assert len(long["points"]) == 4  # two through b's column
    b = nodes["b"]
    for x, y in long["points"][1:3]:
        assert b["x"] <= x <= b["x"] + b["width"]
        assert not b["y"] <= y <= b["y"] + b["height"]
    assert_no_overlap(graph)


def test_ordering_removes_crossings(monkeypatch: pytest.MonkeyPatch) -> None:
    # In config order t1 and t4 (both feeding t5) are split by t2: without the sweeps, the
    # edges t2 -> t3 and t4 -> t5 cross.
    job = job_of(
        {"t0": ["t1", "t2", "t4"], "t1": ["t5"], "t2": ["t3"], "t3": [], "t4": ["t5"], "t5": []}
    )
    graph = layout_job(job)
    assert crossings(graph) == 0
    assert_columns_follow_links(graph)
    assert_no_overlap(graph)
    monkeypatch.setattr(graph_layout, "_sweep", lambda *_: None)
    assert crossings(layout_job(job)) > 0


def test_a_cycle_still_draws() -> None:
    graph = layout_job(job_of({"a": ["b"], "b": ["c"], "c": ["a"]}))
    assert len(graph["nodes"]) == 3
    assert len(graph["edges"]) == 3
    assert_no_overlap(graph)
    nodes = nodes_by_id(graph)
    assert nodes["a"]["column"] < nodes["b"]["column"] < nodes["c"]["column"]


def test_unknown_successors_and_repeated_ids_are_left_out() -> None:
    job = job_of({"a": ["ghost"]})
    job.tasks.add(task_id="a")
    graph = layout_job(job)
    assert [n["task_id"] for n in graph["nodes"]] == ["a"]
    assert graph["edges"] == []


def test_an_empty_graph() -> None:
    graph = layout_job(config_pb2.JobConfig())
    assert graph["nodes"] == [] and graph["edges"] == [] and graph["columns"] == 0


def test_start_task_is_marked() -> None:
    job = job_of({"a": ["c"], "b": ["c"], "c": []}, start_task="b")
    nodes = nodes_by_id(layout_job(job))
    assert [t for t, n in nodes.items() if n["is_start"]] == ["b"]
    roots = nodes_by_id(layout_job(job_of({"a": ["c"], "b": ["c"], "c": []})))
    assert {t for t, n in roots.items() if n["is_start"]} == {"a", "b"}


def test_step_lines_and_summaries() -> None:
    task = config_pb2.TaskConfig(task_id="t")
    for index in range(MAX_STEP_LINES + 2):
        step = task.steps.add(id=str(index))
        step.step_type = config_pb2.STEP_TYPE_FUNCTION_CALL
        step.function_call_config.function_name = "json_parse"
    task.steps.add(name="ask").model_query_config.model_key = "GPT_4O"
    summaries = step_summaries(task)
    assert summaries[0] == StepSummary("0", "function", "json_parse")
    assert summaries[0].label() == "0 · json_parse()"
    assert summaries[-1].label() == "ask · GPT_4O"
    embedding = task.steps.add(name="vec", step_type=config_pb2.STEP_TYPE_EMBEDDING)
    embedding.embedding_config.model_key = "GEMINI_EMBEDDING"
    summaries = step_summaries(task)
    assert summaries[-1] == StepSummary("vec", "embedding", "GEMINI_EMBEDDING")
    assert summaries[-1].label() == "vec · embedding · GEMINI_EMBEDDING"
    job = config_pb2.JobConfig(tasks=[task])
    (node,) = layout_job(job)["nodes"]
    texts = [line["text"] for line in node["lines"]]
    assert texts[0] == "t"
    assert texts[-1] == "+4 more steps"
    assert len(node["steps"]) == MAX_STEP_LINES + 4
    assert all(line["y"] < node["height"] for line in node["lines"])


def test_statuses_and_names() -> None:
    graph = TaskGraph.from_job(job_of({"a": ["b"], "b": []}))
    layout = layout_graph(
        graph,
        names={"a": "First <b>"},
        steps={"a": [StepSummary("s", "model", "OFFLINE")]},
        statuses={"a": "RUN_STATUS_SUCCEEDED"},
    )
    nodes = nodes_by_id(layout)
    assert nodes["a"]["status"] == "RUN_STATUS_SUCCEEDED"
    assert nodes["b"]["status"] == ""
    assert nodes["a"]["name"] == "First <b>"
    assert nodes["a"]["tooltip"] == "a — First <b>\ns · OFFLINE"


def test_a_thousand_task_fan_out() -> None:
    graph = layout_job(fan_out_job(1000))
    nodes = nodes_by_id(graph)
    assert graph["columns"] == 3
    assert len(graph["nodes"]) == 1000
    assert len(graph["edges"]) == 2 * 998
    assert sum(1 for n in graph["nodes"] if n["column"] == 1) == 998
    assert nodes["end"]["is_join"] and nodes["start"]["is_start"]
    assert_columns_follow_links(graph)
    assert_no_overlap(graph)


def test_a_thousand_task_chain() -> None:
    graph = layout_job(chain_job(1000))
    assert graph["columns"] == 1000
    assert len(graph["edges"]) == 999
    assert {node["y"] for node in graph["nodes"]} == {graph["nodes"][0]["y"]}  # a straight line
    assert_columns_follow_links(graph)
    assert_no_overlap(graph)


def render_partial(**context: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["status_class"] = status_class
    return env.get_template("_graph.html").render(**context)


def test_the_partial_draws_every_node_escaped() -> None:
    job = job_of({"a": ["b"], "b": []})
    job.tasks[0].name = "<script>alert(1)</script>"
    job.tasks[0].steps[0].name = "<img src=x onerror=alert(1)>"
    graph = layout_job(job, statuses={"a": "RUN_STATUS_FAILED"})
    html = render_partial(graph=graph, graph_id="g1", graph_selectable=True)
    assert 'data-task-id="a"' in html and 'data-task-id="b"' in html
    assert "graph-node status-failed is-start" in html
    assert "graph-node status-pending" in html
    assert 'id="g1-arrow"' in html and "url(#g1-arrow)" in html
    assert 'tabindex="0"' in html
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    plain = render_partial(graph=graph)
    assert 'id="graph"' in plain and "tabindex" not in plain

"""A strategy run in a store, through the run pages: the graph, the task list, the compare table.

The strategy job of tests/engine/test_strategy (three offline models × two prompts) runs on
every store backend; pages read it back through `read_job_run`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from fastapi.testclient import TestClient

from llm_scheduler.config import formats
from llm_scheduler.execution.reader import read_job_run
from llm_scheduler.trace import to_trace
from llm_scheduler.v1 import config_pb2
from llm_scheduler.web.strategy_view import SHORT_OUTPUT_CHARS
from tests.engine.test_strategy import names, strategy_job
from tests.web.conftest import store_of
from tests.web.runs_support import run_offline

# Offline model keys: the offline model answers any ``offline:`` key, no registry needed.
MODELS = ["offline:alpha", "offline:beta", "offline:gamma"]
# A text long enough that each variation's answer (the offline model echoes the prompt) is cut.
LONG_TEXT = "The cat sat on the mat, and the dog lay by the door. " * 3


def long_strategy_job() -> config_pb2.JobConfig:
    """The strategy job of tests/engine/test_strategy over `LONG_TEXT`, with offline models."""
    job = strategy_job(MODELS)
    job.input_config.payload["text"] = LONG_TEXT
    return job


def task_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(task for task in data["tasks"] if task["task_id"] == task_id)


def node_of(data: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(node for node in data["graph"]["nodes"] if node["task_id"] == task_id)


def test_a_strategy_is_drawn_as_a_stack_of_its_variations(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), long_strategy_job())
    data = any_store_client.get(f"/runs/{run_id}.json").json()
    assert data["run"]["status"] == "succeeded"
    rewrite = task_of(data, "rewrite")
    assert rewrite["is_strategy"] is True
    assert rewrite["is_map"] is False
    assert rewrite["items_label"] == "6/6 variations"
    node = node_of(data, "rewrite")
    assert node["is_map"] is True
    assert node["map"] == "strategy: model × prompt"
    assert node["items"]["label"] == "6/6 variations"
    assert task_of(data, "compare")["is_strategy"] is False
    html = any_store_client.get(f"/runs/{run_id}").text
    assert "6/6 variations" in html
    assert "is-map" in html


def test_a_strategy_task_compares_its_variations(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), long_strategy_job())
    task = any_store_client.get(f"/runs/{run_id}/tasks/rewrite.json").json()
    strategy = task["strategy"]
    assert strategy["axes"] == ["model", "prompt"]
    assert strategy["variations_total"] == 6
    rows = strategy["variations"]
    assert [row["variation"] for row in rows] == names(MODELS)
    assert rows[0]["parameters"] == {"model": MODELS[0], "prompt": "concise"}
    for row in rows:
        assert row["status"] == "SUCCEEDED"
        assert row["output"] and row["output"] == row["outputs"]["draft"]
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["tokens"] == row["input_tokens"] + row["output_tokens"]
        assert row["latency_seconds"] >= 0
        assert len(row["output_short"]) <= SHORT_OUTPUT_CHARS
        assert row["output_cut"] == (len(row["output"]) > SHORT_OUTPUT_CHARS)
        if not row["output_cut"]:
            assert row["output_short"] == row["output"]
    html = any_store_client.get(f"/runs/{run_id}/tasks/rewrite").text
    assert 'id="strategy-variations"' in html
    for name in names(MODELS):
        assert f'data-variation="{name}"' in html
    assert all(row["output_cut"] for row in rows)
    assert all(LONG_TEXT.strip() in row["output"] for row in rows)
    # Each output is in the page in full, behind its short form.
    assert html.count('<details class="output-full">') == len(rows)
    for row in rows:
        assert escape(row["output"], quote=False) in html


def test_a_task_that_is_no_strategy_has_no_compare_table(any_store_client: TestClient) -> None:
    run_id = run_offline(store_of(any_store_client), long_strategy_job())
    task = any_store_client.get(f"/runs/{run_id}/tasks/compare.json").json()
    assert task["strategy"] is None
    assert (
        'id="strategy-variations"' not in any_store_client.get(f"/runs/{run_id}/tasks/compare").text
    )


def test_an_uploaded_traces_strategy_compares_its_variations(client: TestClient) -> None:
    store = store_of(client)
    job_run = read_job_run(store, run_offline(store, long_strategy_job()))
    assert job_run is not None
    trace = json.loads(formats.dumps(to_trace(job_run), formats.ConfigFormat.JSON))
    data = client.post("/api/traces/view", json={"trace": trace}).json()
    assert task_of(data, "rewrite")["items_label"] == "6/6 variations"
    strategy = data["details"]["rewrite"]["strategy"]
    assert [row["variation"] for row in strategy["variations"]] == names(MODELS)
    assert data["details"]["compare"]["strategy"] is None

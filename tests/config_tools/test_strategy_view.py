"""config_reader on strategy tasks: every variation before a run, a compare table after."""

from __future__ import annotations

import asyncio
import json
import pathlib

from llm_scheduler import ModelClient, RunContext, Validator, run_job
from llm_scheduler.config.formats import ConfigFormat, dumps
from llm_scheduler.config_tools.config_reader import describe
from llm_scheduler.config_tools.strategy_view import change_table, variation_table
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.engine.strategy_compare import (
    compare_strategy_runs,
    parse_variation_name,
    variation_rows,
)
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2, run_pb2
from tests.clitools import run_tool
from tests.conftest import REPO_ROOT
from tests.engine.test_strategy import names, strategy_job

OFFLINE = ["offline:a", "offline:b"]


def _run(job: config_pb2.JobConfig, replay: run_pb2.JobRun | None = None) -> run_pb2.JobRun:
    Validator().check_job(job)
    context = RunContext(
        models=ModelClient(offline=True),
        replay=ReplaySource(replay) if replay is not None else None,
    )
    return asyncio.run(run_job(job, context))


def test_the_preview_lists_every_variation_by_name() -> None:
    text = describe("job", strategy_job(OFFLINE))
    assert "strategy tasks:" in text
    assert "rewrite  4 variations (model x prompt), in parallel" in text
    for name in names(OFFLINE):
        assert f"\n    {name}  model_key=" in text
    assert 'prompt="Say it briefly"' in text
    serial = describe("job", strategy_job(OFFLINE, in_series=True, only=names(OFFLINE)[:3]))
    assert "3 variations (model x prompt, 3 listed in only), one at a time" in serial


def test_config_reader_previews_a_strategy_job(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "strategy.json"
    path.write_bytes(dumps(strategy_job(OFFLINE), ConfigFormat.JSON))
    result = run_tool("config_reader", f"--input_path={path}")
    assert result.code == 0, result.stderr
    for name in names(OFFLINE):
        assert name in result.stderr


def test_the_compare_rows_hold_parameters_status_output_tokens_cost_and_latency() -> None:
    job_run = _run(strategy_job(OFFLINE))
    rows = variation_rows(job_run, "rewrite")
    assert [row.variation for row in rows] == names(OFFLINE)
    assert rows[0].parameters == {"model": "offline:a", "prompt": "concise"}
    assert all(row.status == "SUCCEEDED" and row.input_tokens > 0 for row in rows)
    assert "Say it briefly: The cat sat" in rows[0].output_text()
    table = variation_table(rows).splitlines()
    assert table[0].split() == [
        "MODEL", "PROMPT", "STATUS", "OUTPUT", "TOKENS", "IN/OUT", "COST", "LATENCY",
    ]  # fmt: skip
    assert len(table) == 1 + 4
    assert table[1].startswith("offline:a  concise  succeeded  [offline a ")
    assert parse_variation_name("t[x=1,y=two]") == {"x": "1", "y": "two"}


def test_two_runs_compare_variation_by_variation() -> None:
    first = _run(strategy_job(OFFLINE[:1]))
    second = _run(strategy_job(OFFLINE), replay=first)
    changes = compare_strategy_runs(first, second, "rewrite")
    assert [(c.variation, c.changed) for c in changes] == [
        (names(OFFLINE)[0], []),
        (names(OFFLINE)[1], []),
        (names(OFFLINE)[2], ["added"]),
        (names(OFFLINE)[3], ["added"]),
    ]
    assert changes[0].after is not None and changes[0].after.reused
    lines = change_table(changes).splitlines()
    assert lines[1].endswith("nothing") and lines[3].endswith("added")


def test_config_reader_compares_a_stored_run_and_two_runs(tmp_path: pathlib.Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"

    async def dispatch() -> None:
        with open_store(url) as store:
            context = RunContext(models=ModelClient(offline=True))
            try:
                await Dispatcher(store, context, workers=2).run(until_idle=True)
            finally:
                await context.models.aclose()

    with open_store(url) as store:
        first = submit_job(store, strategy_job(OFFLINE[:1]), offline=True)
        second = submit_job(store, strategy_job(OFFLINE), offline=True)
    asyncio.run(dispatch())

    table = run_tool("config_reader", f"--store={url}", f"--run_id={second}", "--compare=rewrite")
    assert table.code == 0, table.stderr
    assert len(table.stdout.splitlines()) == 1 + 4
    assert "4/4 variations succeeded" in table.stderr
    as_json = run_tool(
        "config_reader", f"--store={url}", f"--run_id={second}", "--compare=rewrite", "--json"
    )
    rows = json.loads(as_json.stdout)
    assert [row["variation"] for row in rows] == names(OFFLINE)
    assert {
        "parameters",
        "status",
        "outputs",
        "input_tokens",
        "cost_usd",
        "latency_seconds",
    } <= set(rows[0])
    both = run_tool(
        "config_reader",
        f"--store={url}",
        f"--run_id={second}",
        "--compare=rewrite",
        f"--compare_with={first}",
        "--json",
    )
    assert both.code == 0, both.stderr
    changes = json.loads(both.stdout)
    assert [change["changed"] for change in changes][2:] == [["added"], ["added"]]
    assert "4 variations" in both.stderr

    wrong = run_tool("config_reader", f"--store={url}", f"--run_id={second}", "--compare=compare")
    assert wrong.code != 0
    assert "no strategy" in wrong.stderr and "rewrite" in wrong.stderr
    alone = run_tool("config_reader", f"--store={url}", "--compare=rewrite")
    assert alone.code != 0 and "--compare goes with --run_id" in alone.stderr


def test_job_runner_needs_the_key_of_every_model_a_strategy_varies() -> None:
    sample = REPO_ROOT / "examples" / "sample_strategy_job_config.json"
    result = run_tool("job_runner", f"--input_path={sample}")
    assert result.code == 2, result.stderr
    assert "3 API keys are not set" in result.stderr
    for env_var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        assert f"  - {env_var}" in result.stderr


def test_task_runner_runs_every_variation_of_a_strategy_task(tmp_path: pathlib.Path) -> None:
    task = strategy_job(OFFLINE).tasks[0]
    task.ClearField("next_task")
    path = tmp_path / "task.json"
    path.write_bytes(dumps(task, ConfigFormat.JSON))
    result = run_tool("task_runner", f"--input_path={path}", "--offline", "--var=text=The cat sat.")
    assert result.code == 0, result.stderr
    drafts = json.loads(result.stdout)["draft"]
    assert sorted(drafts) == sorted(names(OFFLINE))

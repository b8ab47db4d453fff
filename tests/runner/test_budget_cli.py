"""--budget_usd on job_runner (in process, and through a store) and job_submitter."""

from __future__ import annotations

import pathlib

from llm_scheduler import dumps
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution.budget_ledger import read_budget
from llm_scheduler.store import open_store
from llm_scheduler.testing import FakeProviderServer
from tests.clitools import run_tool
from tests.conftest import FAKE_CREDENTIALS
from tests.engine.test_budget import budget_models_file, chain_job, reply_words


def _setup(
    tmp_path: pathlib.Path, server: FakeProviderServer
) -> tuple[pathlib.Path, dict[str, str]]:
    server.responder = reply_words
    models = budget_models_file(tmp_path / "models.json", server)
    job = tmp_path / "job.json"
    job.write_bytes(dumps(chain_job(), ConfigFormat.JSON))
    return job, {**FAKE_CREDENTIALS, "LLM_SCHEDULER_MODELS_FILE": str(models)}


def test_job_runner_stops_at_the_budget_in_process_and_through_a_store(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    job, env = _setup(tmp_path, fake_server)
    # --cache=off: the chain's calls are identical requests, which the cache would answer.
    result = run_tool(
        "job_runner", f"--input_path={job}", "--cache=off", "--budget_usd=0.001", env=env
    )
    assert result.code == 1, result.stderr
    assert fake_server.count() == 4
    assert "job failed: task 't4' failed: the run's budget of $0.001000 would be exceeded" in (
        result.stderr
    )
    fake_server.reset()
    fake_server.responder = reply_words
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    stored = run_tool(
        "job_runner",
        f"--input_path={job}",
        f"--store={url}",
        "--cache=off",
        "--budget_usd=0.001",
        env=env,
    )
    assert stored.code == 1 and fake_server.count() == 4
    run_id = stored.stderr.split("run ", 1)[1].split()[0]
    resumed = run_tool(
        "job_runner",
        f"--resume={run_id}",
        f"--store={url}",
        "--cache=off",
        "--budget_usd=0.002",
        env=env,
    )
    assert resumed.code == 0, resumed.stderr
    assert fake_server.count() == 6


def test_job_submitter_records_the_budget_with_the_run(
    tmp_path: pathlib.Path, fake_server: FakeProviderServer
) -> None:
    job, env = _setup(tmp_path, fake_server)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    result = run_tool(
        "job_submitter", f"--input_path={job}", f"--store={url}", "--budget_usd=0.25", env=env
    )
    assert result.code == 0, result.stderr
    assert "with a budget of $0.25" in result.stderr
    with open_store(url) as store:
        ledger = read_budget(store, result.stdout.strip())
    assert ledger is not None and ledger.budget_usd == 0.25 and ledger.spent_usd == 0.0
    for amount in ("-1", "0"):
        bad = run_tool(
            "job_submitter", f"--input_path={job}", f"--store={url}", f"--budget_usd={amount}"
        )
        assert bad.code == 2 and "a budget is an amount in US dollars above 0" in bad.stderr

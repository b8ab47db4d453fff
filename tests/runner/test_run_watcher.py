"""run_watcher as a subprocess over SQLite runs, and ProgressPrinter's terminal mode."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

from llm_scheduler import ModelClient, RunContext, load_config, loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.engine.context import EngineEvent, EventKind
from llm_scheduler.errors import ProviderError
from llm_scheduler.execution.cancel import cancel_run
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.events import read_events
from llm_scheduler.execution.protocol import handle_task_run
from llm_scheduler.execution.submit import submit_job
from llm_scheduler.models.base import Usage
from llm_scheduler.models.client import RetryEvent
from llm_scheduler.runner.progress import ProgressPrinter
from llm_scheduler.store import open_store
from llm_scheduler.v1 import config_pb2
from tests.conftest import REPO_ROOT

JOB = REPO_ROOT / "examples" / "sample_fanout_job_config.json"


def watcher(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_SCHEDULER_")}
    return subprocess.Popen(
        [sys.executable, "-m", "llm_scheduler.runner.run_watcher", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )


def run_watcher(*args: str) -> tuple[int, str, str]:
    process = watcher(*args)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def submit(store_url: str, job: config_pb2.JobConfig) -> str:
    with open_store(store_url) as store:
        return submit_job(store, job)


def dispatch_offline(store_url: str) -> None:
    async def body() -> None:
        context = RunContext(models=ModelClient(offline=True))
        with open_store(store_url) as store:
            await Dispatcher(store, context).run(until_idle=True)

    asyncio.run(body())


@pytest.fixture
def store_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def finished_run(store_url: str) -> str:
    run_id = submit(store_url, load_config(str(JOB), config_pb2.JobConfig))
    dispatch_offline(store_url)
    return run_id


def test_watching_a_finished_run_prints_its_progress_and_summary(
    store_url: str, finished_run: str
) -> None:
    code, stdout, stderr = run_watcher(f"--run_id={finished_run}", f"--store={store_url}")
    assert code == 0, stderr
    summary = json.loads(stdout)
    with open_store(store_url) as store:
        recorded = read_events(store, finished_run)
    assert summary["status"] == "SUCCEEDED"
    assert (summary["tasks_succeeded"], summary["tasks_total"]) == (4, 4)
    assert summary["events"] == len(recorded) and summary["cache_hits"] == 0
    assert int(summary["usage"]["input_tokens"]) > 0
    # Not a terminal: plain lines, no status bar.
    assert "[verdict] step 1/1 verdict done in" in stderr
    assert "[verdict] task succeeded" in stderr
    assert "\r" not in stderr
    assert f"run {finished_run} in {store_url}: succeeded, 4/4 tasks succeeded" in stderr
    assert "0 cache hits, 0 steps reused" in stderr


def test_watching_follows_a_run_live_until_it_finishes(
    store_url: str, tmp_path: pathlib.Path
) -> None:
    run_id = submit(store_url, load_config(str(JOB), config_pb2.JobConfig))
    process = watcher(f"--run_id={run_id}", f"--store={store_url}")
    try:
        # Dispatch once the watcher waits for changes (it registers a wakeup entry then).
        wake = tmp_path / "state.db.wake"
        deadline = time.monotonic() + 30
        while not (wake.exists() and any(wake.iterdir())):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the watcher never started waiting"
            time.sleep(0.02)
        dispatch_offline(store_url)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)
    assert (summary["tasks_succeeded"], summary["events"]) == (4, 17)
    assert "[outline] task started" in stderr
    assert "job Review an idea from two sides succeeded" in stderr


def test_a_failed_run_exits_1(store_url: str) -> None:
    step = {
        "step_type": "STEP_TYPE_FUNCTION_CALL",
        "function_call_config": {"function_name": "json_parse", "request": {"text": "no"}},
    }
    text = json.dumps({"job_id": "bad", "tasks": [{"task_id": "parse", "steps": [step]}]})
    run_id = submit(store_url, loads(text, config_pb2.JobConfig, ConfigFormat.JSON))
    dispatch_offline(store_url)
    code, stdout, stderr = run_watcher(f"--run_id={run_id}", f"--store={store_url}")
    assert code == 1, stderr
    assert json.loads(stdout)["status"] == "FAILED"
    assert "[parse] step 1/1" in stderr and "FAILED: FunctionCallError" in stderr
    assert "[parse] task failed" in stderr


def test_a_cancelled_run_exits_1_with_the_usage_of_what_ran(store_url: str) -> None:
    run_id = submit(store_url, load_config(str(JOB), config_pb2.JobConfig))

    async def outline_then_cancel() -> None:
        context = RunContext(models=ModelClient(offline=True))
        with open_store(store_url) as store:
            outcome = await handle_task_run(store, run_id, "outline", context)
            assert outcome.action == "succeeded"
            assert cancel_run(store, run_id) == ["cons", "pros"]

    asyncio.run(outline_then_cancel())
    code, stdout, stderr = run_watcher(f"--run_id={run_id}", f"--store={store_url}")
    assert code == 1, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "CANCELLED" and summary["error"] == "cancelled by user"
    assert (summary["tasks_succeeded"], summary["tasks_total"]) == (1, 4)
    assert int(summary["usage"]["input_tokens"]) > 0  # the outline's, summed from its task
    assert f"run {run_id} in {store_url}: cancelled, 1/4 tasks succeeded" in stderr


def test_replay_timeline_prints_every_event_with_its_relative_time(
    store_url: str, finished_run: str
) -> None:
    code, stdout, stderr = run_watcher(
        f"--run_id={finished_run}", f"--store={store_url}", "--replay_timeline"
    )
    assert code == 0, stderr
    with open_store(store_url) as store:
        recorded = [event for _, event in read_events(store, finished_run)]
    lines = stdout.splitlines()
    assert len(lines) == len(recorded) == 17
    times = []
    for line, event in zip(lines, recorded, strict=True):
        match = re.match(r"^\s*(\d+\.\d{3})s (.*)$", line)
        assert match, line
        times.append(float(match.group(1)))
        if event.task_id:
            assert f"[{event.task_id}]" in match.group(2)
    assert times[0] == 0.0 and times == sorted(times)
    assert lines[0].endswith("job Review an idea from two sides started")
    assert re.search(
        r"\[verdict\] step 1/1 verdict done in .*, \d+ tok, \$0\.000000$", stdout, re.M
    )
    assert f"run {finished_run}: 17 events from 1 worker(s)" in stderr


def test_unknown_run_and_missing_run_id_exit_2(store_url: str) -> None:
    code, _, stderr = run_watcher("--run_id=nope", f"--store={store_url}")
    assert code == 2 and "no job run 'nope'" in stderr
    code, _, stderr = run_watcher(f"--store={store_url}", "--replay_timeline")
    assert code == 2 and "--run_id is required" in stderr


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def step(
    kind: EventKind,
    task: str,
    index: int,
    detail: str = "",
    usage: Usage | None = None,
    cost_usd: float = 0.0,
) -> EngineEvent:
    return EngineEvent(
        kind, task, index, 2, f"s{index}", detail, "r", usage or Usage(), cost_usd=cost_usd
    )


def test_progress_printer_draws_a_status_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TERM", raising=False)
    out = FakeTerminal()
    printer = ProgressPrinter(out)
    printer.event(EngineEvent(EventKind.JOB_STARTED, name="demo"))
    for task in ("a", "b"):
        printer.event(EngineEvent(EventKind.TASK_STARTED, task, run_id="r"))
    printer.event(step(EventKind.STEP_STARTED, "a", 0))
    printer.event(step(EventKind.CACHE_HIT, "a", 0))
    printer.event(step(EventKind.STEP_FINISHED, "a", 0, "0.10s", Usage(1000, 234), 0.0012))
    printer.event(step(EventKind.STEP_STARTED, "b", 0))
    text = out.getvalue()
    assert text.startswith("   0.00s job demo started\n")
    # One status line, redrawn in place: the bar, totals, and the tasks in flight.
    assert "\r\x1b[K[#####-----] 1/2 steps  0 tasks done  1,234 tok  $0.0012  " in text
    assert "1 cached" in text
    assert text.endswith("| b 0/2")
    assert "step 1/2" not in text  # step lines are not printed on a terminal

    printer.event(step(EventKind.STEP_FINISHED, "b", 0, detail="0.1s"))
    printer.event(step(EventKind.STEP_STARTED, "a", 1))
    printer.event(step(EventKind.STEP_REUSED, "a", 1))
    printer.event(step(EventKind.STEP_FINISHED, "a", 1, detail="0s"))
    printer.event(EngineEvent(EventKind.TASK_FINISHED, "a", detail="succeeded", run_id="r"))
    printer.retry(
        RetryEvent("FAST", 1, ProviderError("HTTP 429", provider="openai", retryable=True), 0.5)
    )
    printer.event(step(EventKind.STEP_STARTED, "b", 1))
    printer.event(step(EventKind.STEP_FAILED, "b", 1, detail="ProviderError: 500"))
    printer.event(EngineEvent(EventKind.TASK_FINISHED, "b", detail="failed", run_id="r"))
    text = out.getvalue()
    # Permanent lines erase the status line first and end with a newline.
    assert re.search(r"\r\x1b\[K +\d+\.\d\ds \[a\] task succeeded\n", text)
    assert re.search(r"\r\x1b\[K +\d+\.\d\ds FAST: HTTP 429 - retry 1 in 0\.5s\n", text)
    assert "[b] step 2/2 s1 FAILED: ProviderError: 500\n" in text
    assert "[#######---] 3/4 steps  1 tasks done  1,234 tok  $0.0012" in text
    assert "1 cached  1 reused" in text
    # Nothing runs any more: the status line is erased, so later output starts clean.
    assert text.endswith("[b] task failed\n")

    printer.event(EngineEvent(EventKind.JOB_FINISHED, name="demo", detail="failed"))
    assert re.search(
        r"job demo failed  \(3/4 steps  1 tasks done  1 failed  1,234 tok  \$0\.0012  "
        r"\d+\.\ds  1 cached  1 reused\)\n$",
        out.getvalue(),
    )


def test_progress_printer_keeps_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer.event(EngineEvent(EventKind.TASK_STARTED, "a"))
    printer.event(step(EventKind.STEP_STARTED, "a", 0))
    printer.event(step(EventKind.CACHE_HIT, "a", 0))
    printer.event(step(EventKind.STEP_FINISHED, "a", 0, detail="0.10s"))
    printer.event(EngineEvent(EventKind.TASK_FINISHED, "a", detail="succeeded"))
    lines = [line[9:] for line in out.getvalue().splitlines()]
    assert lines == [
        "[a] task started",
        "[a] step 1/2 s0 ...",
        "[a] cache_hit ",
        "[a] step 1/2 s0 done in 0.10s",
        "[a] task succeeded",
    ]
    assert "\r" not in out.getvalue()

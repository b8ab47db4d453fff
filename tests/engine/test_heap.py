"""Runs and validation keep the garbage collector off their way, and give it back."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref
from collections.abc import Iterable

import pytest

from llm_scheduler import ModelClient, RunContext, Validator, loads, run_job
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.function_steps import FunctionRegistry
from llm_scheduler.heap import collector_paused, frozen_heap
from llm_scheduler.v1 import config_pb2, run_pb2


def _task(name: str) -> dict[str, object]:
    return {
        "task_id": name,
        "input_config": {"payload": {"name": name}},
        "steps": [
            {
                "step_type": "STEP_TYPE_FUNCTION_CALL",
                "function_call_config": {"function_name": "probe", "request": {"name": "%name%"}},
            }
        ],
    }


def _job(job_id: str, names: list[str]) -> config_pb2.JobConfig:
    """``start`` -> one task per name, each calling ``probe``."""
    tasks = [{**_task("start"), "next_tasks": names}, *(_task(name) for name in names)]
    text = json.dumps({"job_id": job_id, "tasks": tasks})
    return loads(text, config_pb2.JobConfig, ConfigFormat.JSON)


@pytest.fixture(autouse=True)
def _nothing_frozen_around() -> None:
    assert gc.get_freeze_count() == 0


def test_objects_from_before_the_run_are_frozen_during_it_and_unfrozen_after() -> None:
    made_before: list[list[int]] = [
        [] for _ in range(100)
    ]  # tracked objects that exist when the run starts
    seen: list[bool] = []

    async def probe(name: str) -> str:
        frozen = gc.get_freeze_count()
        seen.append(frozen >= len(made_before))
        return name

    functions = FunctionRegistry.with_builtins()
    functions.register(probe, "probe")
    context = RunContext(models=ModelClient(offline=True), functions=functions)
    record = asyncio.run(run_job(_job("frozen", ["a", "b"]), context))
    assert record.status == run_pb2.RUN_STATUS_SUCCEEDED
    assert seen == [True, True, True]
    assert gc.get_freeze_count() == 0  # everything is the collector's again


def test_runs_overlapping_in_threads_unfreeze_only_when_the_last_ends() -> None:
    inside = threading.Barrier(2)
    counts: list[int] = []

    async def probe(name: str) -> str:
        if name == "held":
            await asyncio.to_thread(inside.wait, 10)  # both runs are in progress here
            counts.append(gc.get_freeze_count())
        return name

    functions = FunctionRegistry.with_builtins()
    functions.register(probe, "probe")
    context = RunContext(models=ModelClient(offline=True), functions=functions)
    results: list[run_pb2.JobRun] = []

    def run(job_id: str) -> None:
        results.append(asyncio.run(run_job(_job(job_id, ["held"]), context)))

    threads = [threading.Thread(target=run, args=(f"run{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r.status for r in results] == [run_pb2.RUN_STATUS_SUCCEEDED] * 2
    assert len(counts) == 2 and all(count > 0 for count in counts)
    assert gc.get_freeze_count() == 0


def test_a_failing_body_still_unfreezes() -> None:
    with pytest.raises(ValueError, match="boom"), frozen_heap():
        assert gc.get_freeze_count() > 0
        with frozen_heap():  # nested: the outer one still holds the freeze after this ends
            pass
        assert gc.get_freeze_count() > 0
        raise ValueError("boom")
    assert gc.get_freeze_count() == 0


def test_validation_pauses_the_collector_and_resumes_it() -> None:
    seen: list[bool] = []

    class Watching(Validator):
        def _check_job(self, job: config_pb2.JobConfig, variables: Iterable[str]) -> None:
            seen.append(gc.isenabled())
            super()._check_job(job, variables)

    functions = FunctionRegistry.with_builtins()
    functions.register(lambda name: name, "probe")
    Watching(functions=functions).check_job(_job("paused", ["a"]))
    assert seen == [False] and gc.isenabled()


def test_a_paused_collector_stays_off_if_it_was_off_and_nested_pauses_resume_once() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: left off
    finally:
        gc.enable()
    with pytest.raises(ValueError, match="boom"), collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()  # the outer pause still holds
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_run_starting_while_another_is_in_progress_freezes_nothing_more() -> None:
    class Node:
        other: object = None

    with frozen_heap():
        node = Node()
        node.other = node  # a cycle made during the first run, garbage once `node` goes
        gone = weakref.ref(node)
        del node
        with frozen_heap():  # a second run starts: the cycle must stay collectable
            gc.collect()
            assert gone() is None

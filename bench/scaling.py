"""How the engine's cost grows with a job's size, in process, with no HTTP (W7 and W8).

``python -m bench.scaling VARIANT --size=N`` builds and validates a job of size ``N`` (not
timed), runs it once in this process and prints one JSON line: wall and CPU seconds of the run,
and the process's resident memory before the run and at its peak. Each size runs in a fresh
process, so the memory figures are the run's own.

- **W7 chain**: one task of ``N`` steps, each reading the previous step's answer: model steps
  on the in-process offline model (``chain_*``), or function steps calling the built-in
  ``length`` on a text holding the previous result (``fchain_*``, `jobs.function_chain_job`).
  The bare loop makes the same calls in a Python ``for`` loop.
- **W8 wide**: ``N`` independent one-step tasks (offline model) after a start task, at most 64
  at once; the bare program runs ``N`` coroutines under a semaphore of 64 with
  ``asyncio.gather``. At ``N`` = 100,000 this is the issue's "100,000-task wide job".
- **validate**: the time `Validator.check_job` takes on a fan-out of ``N`` tasks whose steps
  are all the same (the first check, which also derives the step plans).
- **validate_distinct**: the same on W8's wide job, whose ``N`` tasks each have a prompt of
  their own ("Item 17: %subject%"), so no two steps share their checks or plans.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import baseline, jobs
from llm_scheduler import (
    ModelClient,
    ModelRegistry,
    RunContext,
    Validator,
    run_job,
)
from llm_scheduler.models.base import ModelRequest
from llm_scheduler.models.offline import OfflineAdapter
from llm_scheduler.testing.sized_jobs import fan_out_job
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["CHAIN_SIZES", "QUICK_CHAIN_SIZES", "QUICK_WIDE_SIZES", "VARIANTS", "WIDE_SIZES"]

CHAIN_SIZES = (200, 2_000, 20_000)
WIDE_SIZES = (1_000, 10_000, 100_000)
QUICK_CHAIN_SIZES = (20, 200)
QUICK_WIDE_SIZES = (100, 1_000)
WIDE_CAP = 64  # tasks (and bare coroutines) in flight
Result = dict[str, Any]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


async def _timed(run: Callable[[], Awaitable[object]]) -> Result:
    before = _current_rss_mb()
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "rss_before_mb": before,
        "rss_mb": _rss_mb(),
    }


def _context(registry: ModelRegistry, max_concurrency: int = 64) -> RunContext:
    client = ModelClient(registry, offline=False, credentials={})
    return RunContext(models=client, max_concurrency=max_concurrency)


def _check(record: run_pb2.JobRun) -> None:
    if record.status != run_pb2.RUN_STATUS_SUCCEEDED:
        raise RuntimeError(f"the benchmark job failed: {record.error.message}")


def wide_offline_job(tasks: int, registry: ModelRegistry) -> config_pb2.JobConfig:
    """W8: W3's wide job on the offline model."""
    return jobs.wide_job(tasks, registry, jobs.OFFLINE_KEY)


async def chain_bare(size: int) -> Result:
    adapter = OfflineAdapter()

    async def run() -> None:
        previous = jobs.SEED
        for i in range(size):
            request = ModelRequest(
                model="offline",
                system_prompt="",
                user_prompt=f"Step {i}: continue from: {previous}",
            )
            previous = (await adapter.generate(request)).text

    return await _timed(run)


async def chain_engine(size: int) -> Result:
    registry = ModelRegistry()
    context = _context(registry)
    job = jobs.chain_job(size, jobs.OFFLINE_KEY, registry)
    _check(await run_job(jobs.chain_job(2, jobs.OFFLINE_KEY, registry), context))

    async def run() -> None:
        _check(await run_job(job, context))

    return await _timed(run)


async def fchain_bare(size: int) -> Result:
    async def run() -> None:
        baseline.bare_function_chain(size, jobs.SEED)

    return await _timed(run)


async def fchain_engine(size: int) -> Result:
    registry = ModelRegistry()
    context = _context(registry)
    job = jobs.function_chain_job(size, registry)
    _check(await run_job(jobs.function_chain_job(2, registry), context))

    async def run() -> None:
        _check(await run_job(job, context))

    return await _timed(run)


async def wide_bare(size: int) -> Result:
    adapter = OfflineAdapter()
    limit = asyncio.Semaphore(WIDE_CAP)

    async def one(i: int) -> str:
        async with limit:
            request = ModelRequest(
                model="offline", system_prompt="", user_prompt=f"Item {i}: {jobs.TOPIC}"
            )
            return (await adapter.generate(request)).text

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(size)))

    return await _timed(run)


async def wide_engine(size: int) -> Result:
    registry = ModelRegistry()
    context = _context(registry, WIDE_CAP)
    job = wide_offline_job(size, registry)
    _check(await run_job(wide_offline_job(2, registry), context))

    async def run() -> None:
        _check(await run_job(job, context))

    return await _timed(run)


def _validation(job: config_pb2.JobConfig) -> Result:
    """The time the first `Validator.check_job` of ``job`` takes."""
    cpu, wall = time.process_time(), time.perf_counter()
    Validator().check_job(job)
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "rss_mb": _rss_mb(),
    }


async def validate(size: int) -> Result:
    return _validation(fan_out_job(size))


async def validate_distinct(size: int) -> Result:
    return _validation(jobs.wide_job(size, ModelRegistry(), jobs.OFFLINE_KEY, validate=False))


VARIANTS: dict[str, Callable[[int], Awaitable[Result]]] = {
    "chain_bare": chain_bare,
    "chain_engine": chain_engine,
    "fchain_bare": fchain_bare,
    "fchain_engine": fchain_engine,
    "wide_bare": wide_bare,
    "wide_engine": wide_engine,
    "validate": validate,
    "validate_distinct": validate_distinct,
}


def measure(variant: str, size: int) -> Result:
    """Runs one variant at one size in this process."""
    result: list[Result] = []

    async def main() -> None:
        result.append(await VARIANTS[variant](size))

    asyncio.run(main())
    return {"variant": f"scaling_{variant}", "size": size, **result[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure one scaling variant at one size.")
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.variant, args.size)), flush=True)


if __name__ == "__main__":
    main()

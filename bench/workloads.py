"""One measurement of one workload variant, in a fresh process (so its peak RSS is its own).

``python -m bench.workloads VARIANT --sizes=JSON --server=http://127.0.0.1:PORT`` warms up, runs
the variant once, and prints one JSON line: ``{"variant", "seconds", "rss_mb", ...}``. The
runner (`bench.run`) sets the fake server's latency before starting it.

Building and validating configs is not timed (a config is built once and run many times); the
clock covers the run, from the first request to the last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx2 as httpx

from bench import baseline, jobs
from bench.fake_openai_server import fetch_stats, post_control
from bench.lean_client import LeanClient
from bench.sizes import Sizes
from llm_scheduler import ModelClient, ModelRegistry, RunContext, run_job
from llm_scheduler.engine.replay import ReplaySource
from llm_scheduler.execution.local_run import run_in_store
from llm_scheduler.models.offline import OfflineAdapter
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.telemetry import flush_telemetry, setup_telemetry, shutdown_telemetry
from llm_scheduler.trace import read_trace, write_trace
from llm_scheduler.v1 import config_pb2, run_pb2

__all__ = ["VARIANTS", "main", "measure"]

_WARMUP_STEPS = 2
# Timed runs per process for the in-process chains (W1 bare, engine, persisted).
_INNER_RUNS = 5
Result = dict[str, Any]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _timed(run: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = await run()
    return time.perf_counter() - started, value


def _check(record: run_pb2.JobRun) -> run_pb2.JobRun:
    if record.status != run_pb2.RUN_STATUS_SUCCEEDED:
        raise RuntimeError(f"the benchmark job failed: {record.error.message}")
    return record


class _Env:
    """What a variant needs: sizes, the server, a scratch folder and registries."""

    def __init__(self, sizes: Sizes, server: str, folder: pathlib.Path) -> None:
        self.sizes = sizes
        self.server = server
        self.base_url = f"{server}/v1"
        self.folder = folder

    def registry(self, max_concurrency: int = 1000) -> ModelRegistry:
        return jobs.registry_for(self.base_url, max_concurrency, self.folder)

    def client(self, registry: ModelRegistry) -> ModelClient:
        return ModelClient(registry, offline=False, credentials={})


async def _engine(
    job: config_pb2.JobConfig, context: RunContext, warmup: config_pb2.JobConfig
) -> Result:
    _check(await run_job(warmup, context))
    seconds, record = await _timed(lambda: run_job(job, context))
    _check(record)
    await context.models.aclose()
    return {"seconds": seconds}


async def _median_of_runs(run: Callable[[], Awaitable[Any]]) -> Result:
    """The median of `_INNER_RUNS` timed runs: the in-process chains take milliseconds, where
    one run in a fresh process varies by a third from run to run on a shared machine."""
    times = [(await _timed(run))[0] for _ in range(_INNER_RUNS)]
    return {"seconds": statistics.median(times), "runs": times}


async def w1_bare(env: _Env) -> Result:
    adapter = OfflineAdapter()
    await baseline.bare_chain(adapter, "offline", _WARMUP_STEPS, jobs.SEED)
    steps = env.sizes.chain_steps
    return await _median_of_runs(lambda: baseline.bare_chain(adapter, "offline", steps, jobs.SEED))


async def w1_engine(env: _Env) -> Result:
    registry = env.registry()
    context = RunContext(models=env.client(registry))
    job = jobs.chain_job(env.sizes.chain_steps, jobs.OFFLINE_KEY, registry)
    _check(await run_job(jobs.chain_job(_WARMUP_STEPS, jobs.OFFLINE_KEY, registry), context))

    async def run() -> None:
        _check(await run_job(job, context))

    return await _median_of_runs(run)


async def w1_engine_otel(env: _Env) -> Result:
    """W1 in process with OpenTelemetry export on, over OTLP/HTTP to the fake server's process
    (it answers ``/v1/traces`` and ``/v1/metrics`` as a collector would, decoding nothing).

    Set up as a user would (`setup_telemetry` from ``OTEL_EXPORTER_OTLP_ENDPOINT``): runs queue
    their records, which a background thread builds into spans every 5 s or once 2,048 wait,
    and the SDK's batch processor exports from its thread. The final flush (building and
    sending what is left) is timed apart (``flush_seconds``) and exports are counted.
    """
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = env.server
    os.environ.setdefault("OTEL_SERVICE_NAME", "llm-scheduler-bench")
    if not setup_telemetry():
        raise RuntimeError("OpenTelemetry export did not start (is the otel extra installed?)")
    try:
        result = await w1_engine(env)
        started = time.perf_counter()
        flushed = flush_telemetry()
        result["flush_seconds"] = time.perf_counter() - started
    finally:
        shutdown_telemetry()
    stats = fetch_stats(env.server)
    if not flushed or not stats.get("otlp_requests"):
        raise RuntimeError(f"nothing was exported: {stats}")
    return {**result, "otlp_requests": stats["otlp_requests"], "otlp_bytes": stats["otlp_bytes"]}


async def w1_persisted(env: _Env) -> Result:
    registry = env.registry()
    context = RunContext(models=env.client(registry))
    job = jobs.chain_job(env.sizes.chain_steps, jobs.OFFLINE_KEY, registry)
    warmup = jobs.chain_job(_WARMUP_STEPS, jobs.OFFLINE_KEY, registry)
    with SqliteStore(env.folder / "state.db") as store:
        _check(await run_in_store(store, warmup, context, workers=1))

        async def run() -> None:
            _check(await run_in_store(store, job, context, workers=1))

        return await _median_of_runs(run)


async def w1_http_baseline(env: _Env) -> Result:
    client = baseline.new_client(env.base_url)
    await baseline.chain(client, jobs.BENCH_MODEL, _WARMUP_STEPS, jobs.SEED)
    steps = env.sizes.chain_steps
    seconds, _ = await _timed(lambda: baseline.chain(client, jobs.BENCH_MODEL, steps, jobs.SEED))
    await client.close()
    return {"seconds": seconds}


async def w1_http_engine(env: _Env) -> Result:
    registry = env.registry()
    context = RunContext(models=env.client(registry))
    job = jobs.chain_job(env.sizes.chain_steps, jobs.HTTP_KEY, registry)
    return await _engine(job, context, jobs.chain_job(_WARMUP_STEPS, jobs.HTTP_KEY, registry))


async def w2_baseline(env: _Env) -> Result:
    client = baseline.new_client(env.base_url)
    await baseline.chain(client, jobs.BENCH_MODEL, _WARMUP_STEPS, jobs.SEED)
    width = env.sizes.fanout_width
    seconds, _ = await _timed(
        lambda: baseline.fan_out_join(client, jobs.BENCH_MODEL, width, jobs.TOPIC)
    )
    await client.close()
    return {"seconds": seconds}


async def w2_engine(env: _Env) -> Result:
    registry = env.registry(max_concurrency=max(1000, env.sizes.fanout_width))
    context = RunContext(
        models=env.client(registry), max_concurrency=max(100, env.sizes.fanout_width)
    )
    job = jobs.fan_out_job(env.sizes.fanout_width, registry)
    return await _engine(job, context, jobs.chain_job(_WARMUP_STEPS, jobs.HTTP_KEY, registry))


async def w3_baseline(env: _Env) -> Result:
    client = baseline.new_client(env.base_url)
    await baseline.chain(client, jobs.BENCH_MODEL, _WARMUP_STEPS, jobs.SEED)
    sizes = env.sizes
    seconds, _ = await _timed(
        lambda: baseline.wide(
            client, jobs.BENCH_MODEL, sizes.wide_calls, sizes.wide_concurrency, jobs.TOPIC
        )
    )
    await client.close()
    return {"seconds": seconds}


async def _w3(env: _Env, task_limit: int) -> Result:
    cap = env.sizes.wide_concurrency
    registry = env.registry(max_concurrency=cap)  # the cap on calls in flight
    context = RunContext(models=env.client(registry), max_concurrency=task_limit)
    job = jobs.wide_job(env.sizes.wide_calls, registry)
    return await _engine(job, context, jobs.chain_job(_WARMUP_STEPS, jobs.HTTP_KEY, registry))


async def w3_engine(env: _Env) -> Result:
    """The cap where the baseline puts it, on calls (the model entry's ``max_concurrency``);
    tasks are not limited further, as the baseline starts every coroutine at once."""
    return await _w3(env, task_limit=env.sizes.wide_calls)


async def w3_engine_tasks_capped(env: _Env) -> Result:
    """Tasks capped too (``RunContext.max_concurrency`` = the cap): a task's own work before and
    after its call then holds one of the cap's slots, so fewer calls are in flight."""
    return await _w3(env, task_limit=env.sizes.wide_concurrency)


async def _w6_timed(env: _Env, run: Callable[[], Awaitable[str]]) -> Result:
    """Times a W6 run (wall and this process's CPU time: on a busy machine the CPU time moves
    less); checks the join got every answer, and reports the calls in flight."""
    post_control(env.server, {"reset": True})
    cpu_started = time.process_time()
    seconds, joined = await _timed(run)
    cpu_seconds = time.process_time() - cpu_started
    answers = len(joined.split("\n")) if joined else 0
    if answers != env.sizes.map_items:
        raise RuntimeError(f"W6 joined {answers} answers, not {env.sizes.map_items}")
    stats = fetch_stats(env.server)
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "items": env.sizes.map_items,
        "max_in_flight": stats["max_in_flight"],
    }


async def w6_baseline(env: _Env) -> Result:
    """W6 by hand: the list, one call per item under a semaphore, the answers joined."""
    client = baseline.new_client(env.base_url)
    await baseline.chain(client, jobs.BENCH_MODEL, _WARMUP_STEPS, jobs.SEED)
    sizes = env.sizes

    async def run() -> str:
        items = jobs.map_items(sizes.map_items)
        return await baseline.map_join(client, jobs.BENCH_MODEL, items, sizes.map_concurrency)

    result = await _w6_timed(env, run)
    await client.close()
    return result


async def w6_engine(env: _Env) -> Result:
    """W6: a function step makes the list, a map runs one model step per item (at most
    ``map_concurrency`` in flight: the map's ``max_in_flight``, the job's and the model's caps
    alike), a join task receives the answers as a list and joins them."""
    sizes = env.sizes
    cap = sizes.map_concurrency
    registry = env.registry(max_concurrency=cap)
    functions = jobs.map_functions()
    context = RunContext(models=env.client(registry), functions=functions, max_concurrency=cap)
    job = jobs.map_job(sizes.map_items, cap, registry, functions)
    _check(await run_job(jobs.chain_job(_WARMUP_STEPS, jobs.HTTP_KEY, registry), context))

    async def run() -> str:
        record = _check(await run_job(job, context))
        join = next(task for task in record.tasks if task.task_id == "join")
        return str(join.outputs.fields["final"].string_value)

    result = await _w6_timed(env, run)
    await context.models.aclose()
    return result


async def w5_replay(env: _Env) -> Result:
    """W1 over HTTP once, exported as a trace, then replayed unchanged from the trace file."""
    registry = env.registry()
    client = env.client(registry)
    job = jobs.chain_job(env.sizes.chain_steps, jobs.HTTP_KEY, registry)
    warmup = jobs.chain_job(_WARMUP_STEPS, jobs.HTTP_KEY, registry)
    _check(await run_job(warmup, RunContext(models=client)))
    original_seconds, original = await _timed(lambda: run_job(job, RunContext(models=client)))
    trace = env.folder / "w1_trace.json"
    write_trace(trace, _check(original))
    recorded = read_trace(trace)
    calls_before = fetch_stats(env.server)["chat_completions"]

    async def replay() -> run_pb2.JobRun:
        return await run_job(job, RunContext(models=client, replay=ReplaySource(recorded)))

    seconds, replayed = await _timed(replay)
    calls = fetch_stats(env.server)["chat_completions"] - calls_before
    await client.aclose()
    steps = [step for task in _check(replayed).tasks for step in task.steps]
    return {
        "seconds": seconds,
        "original_seconds": original_seconds,
        "provider_calls": calls,
        "steps_reused": sum(1 for step in steps if step.reused_from_run_id),
        "steps": len(steps),
    }


_CLIENT_WARMUP_CALLS = 20


async def _sequential_calls(env: _Env, ask: Callable[[str], Awaitable[str]]) -> Result:
    for i in range(_CLIENT_WARMUP_CALLS):
        await ask(f"warm-up {i}")
    calls = env.sizes.chain_steps
    started = time.perf_counter()
    for i in range(calls):
        await ask(f"Item {i}: {jobs.TOPIC}")
    return {"seconds": time.perf_counter() - started, "calls": calls}


async def client_sdk(env: _Env) -> Result:
    """One call's cost to the client: the openai SDK, as the baseline uses it."""
    client = baseline.new_client(env.base_url)
    try:
        return await _sequential_calls(
            env, lambda prompt: baseline.ask(client, jobs.BENCH_MODEL, prompt)
        )
    finally:
        await client.close()


async def client_httpx(env: _Env) -> Result:
    """The same call through httpx (the SDK's HTTP layer), JSON by hand."""
    async with httpx.AsyncClient(base_url=env.base_url) as client:

        async def ask(prompt: str) -> str:
            response = await client.post(
                "/chat/completions",
                json={"model": jobs.BENCH_MODEL, "messages": [{"role": "user", "content": prompt}]},
            )
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])

        return await _sequential_calls(env, ask)


async def client_lean(env: _Env) -> Result:
    """The same call on one keep-alive connection over asyncio streams (`bench.lean_client`)."""
    client = LeanClient(env.base_url)
    try:
        return await _sequential_calls(env, lambda prompt: client.ask(jobs.BENCH_MODEL, prompt))
    finally:
        await client.close()


VARIANTS: dict[str, Callable[[_Env], Coroutine[Any, Any, Result]]] = {
    "w1_bare": w1_bare,
    "w1_engine": w1_engine,
    "w1_engine_otel": w1_engine_otel,
    "w1_persisted": w1_persisted,
    "w1_http_baseline": w1_http_baseline,
    "w1_http_engine": w1_http_engine,
    "w2_baseline": w2_baseline,
    "w2_engine": w2_engine,
    "w3_baseline": w3_baseline,
    "w3_engine": w3_engine,
    "w3_engine_tasks_capped": w3_engine_tasks_capped,
    "w5_replay": w5_replay,
    "w6_baseline": w6_baseline,
    "w6_engine": w6_engine,
    "client_sdk": client_sdk,
    "client_httpx": client_httpx,
    "client_lean": client_lean,
}


def measure(variant: str, sizes: Sizes, server: str) -> Result:
    """Runs one variant in this process and returns its measurement."""
    with tempfile.TemporaryDirectory(prefix="llm-scheduler-bench-") as folder:
        env = _Env(sizes, server, pathlib.Path(folder))
        result = asyncio.run(VARIANTS[variant](env))
    return {"variant": variant, **result, "rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure one benchmark variant.")
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--sizes", required=True, help="a Sizes object as JSON")
    parser.add_argument("--server", required=True, help="the fake server, http://127.0.0.1:PORT")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.variant, Sizes.from_json(args.sizes), args.server)), flush=True)


if __name__ == "__main__":
    main()

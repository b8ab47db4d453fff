"""Dispatchers racing on one store: a fan-out job run by 1 and by several dispatcher processes.

Each dispatcher is the real CLI (``dispatcher --until_idle --offline``) in its own process, as
several machines (or function instances) would share one Firestore database. The job is a start
task, parallel branches and a join (12 tasks by default), every task one offline model step, so
the time is the protocol's: claims, step writes and the completions of concurrent branches of
one run.

    python -m bench.contention [--store=firestore|sqlite] [--tasks=12] [--dispatchers=1,3]
                               [--repetitions=2] [--workers=4] [--latency-ms=MS]

Prints one line per run and the median per dispatcher count: by default the seconds from the
submit to the job run's end with the dispatchers already running (throughput); with ``--cold``
the seconds until every ``dispatcher --until_idle`` started after the submit has exited
(process start-up included). On Firestore it starts Google's emulator.

With ``--latency-ms`` each dispatcher is a bench process (``python -m bench.contention worker``)
running the same `Dispatcher` in process, whose offline model answers after that many
milliseconds (an ``asyncio.sleep``, as a provider's latency: the worker's slots wait on I/O, not
on the CPU); 0 is the offline model as it is. Each line then also gives the CPU time the
dispatcher processes used, per task.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

from llm_scheduler import ModelClient, RunContext
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.dispatcher import Dispatcher
from llm_scheduler.execution.documents import RUNNABLE
from llm_scheduler.models.base import ModelRequest, ModelResponse
from llm_scheduler.models.offline import OfflineAdapter
from llm_scheduler.store import open_store
from llm_scheduler.testing.firestore_emulator import FirestoreEmulator

BRANCHES = 10
BIN = pathlib.Path(sys.executable).parent


def fan_out_job(branches: int = BRANCHES) -> dict[str, object]:
    """A start task, ``branches`` branches and a join, each one model step."""

    def task(task_id: str, prompt: str, **links: object) -> dict[str, object]:
        return {
            "task_id": task_id,
            "steps": [
                {
                    "model_query_config": {"model_key": "GEMINI_FLASH", "user_prompt": prompt},
                    "output_config": {"payload": {f"{task_id}_out": ""}},
                }
            ],
            **links,
        }

    names = [f"b{i:05d}" for i in range(branches)]
    tasks = [task("start", "Outline %topic%", next_tasks=names)]
    tasks += [task(b, f"Branch {b} of %start_out%", next_task="join") for b in names]
    tasks.append(task("join", "Join " + " ".join(f"%{b}_out%" for b in names[:20])))
    return {
        "job_id": "contention",
        "input_config": {"payload": {"topic": "owls"}},
        "tasks": tasks,
    }


@contextlib.contextmanager
def store_urls(kind: str, folder: pathlib.Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    """The environment for the CLIs and an endless supply of empty store URLs."""
    if kind == "sqlite":
        yield {}, [f"sqlite:///{folder / f'state-{i}.db'}" for i in range(100)]
        return
    with FirestoreEmulator() as emulator:
        env = {"FIRESTORE_EMULATOR_HOST": emulator.host}
        yield env, [f"firestore://bench-{uuid.uuid4().hex[:10]}" for _ in range(100)]


def one_run(
    url: str,
    env: dict[str, str],
    dispatchers: int,
    job_file: pathlib.Path,
    workers: int,
    *,
    warm: bool,
    latency_ms: float | None = None,
) -> tuple[float, float | None]:
    """Seconds to run the job with ``dispatchers`` processes, and the CPU seconds they used.

    Warm: the dispatchers are started and ready first, then the job is submitted, and the time
    runs from the submit to the job run's end (its ``created_at`` to its ``finished_at``:
    throughput, without process start-up). Cold: the job is submitted, then ``dispatcher
    --until_idle`` processes are started, and the time runs until the last one exits (start-up
    included). With ``latency_ms`` the dispatchers are bench workers (`_work`) whose model
    answers after that latency, always warm; they report the CPU time they used from ready to
    stop (None for the ``dispatcher`` CLI).
    """
    environ = {**os.environ, **env, "LLM_SCHEDULER_OFFLINE": "1"}
    command = [str(BIN / "dispatcher"), "--offline", f"--store={url}", f"--workers={workers}"]
    if latency_ms is not None:
        command = [
            sys.executable,
            "-m",
            "bench.contention",
            "worker",
            f"--store-url={url}",
            f"--workers={workers}",
            f"--latency-ms={latency_ms}",
        ]

    def submit() -> str:
        submitted = subprocess.run(
            [str(BIN / "job_submitter"), f"--input_path={job_file}", f"--store={url}", "--quiet"],
            env=environ,
            capture_output=True,
            text=True,
            check=True,
        )
        return submitted.stdout.strip().splitlines()[-1]

    cpu: float | None = None
    if warm or latency_ms is not None:
        output = subprocess.DEVNULL if latency_ms is None else subprocess.PIPE
        processes = [
            subprocess.Popen(command, env=environ, stdout=output, stderr=subprocess.PIPE, text=True)
            for _ in range(dispatchers)
        ]
        for process in processes:
            assert process.stderr is not None
            if not process.stderr.readline().startswith("dispatching"):
                raise RuntimeError("a dispatcher failed to start")
            # Keep reading, so that a full pipe never blocks it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
        run_id = submit()
        with _env(env), open_store(url) as store:
            while not (job := store.get(docs.job_run_path(run_id)) or {}).get("finished_at"):
                time.sleep(0.02)
        # From the submit's commit to the last one, by the run's own timestamps: the running
        # dispatchers start on the run before the submitting process has exited, and a poll
        # sees its end late.
        elapsed = _seconds(job["finished_at"]) - _seconds(job["created_at"])
        for process in processes:
            process.send_signal(signal.SIGINT)
        if latency_ms is not None:
            cpu = sum(float(process.communicate(timeout=60)[0] or 0) for process in processes)
        for process in processes:
            process.wait(timeout=60)
    else:
        run_id = submit()
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                [*command, "--until_idle", "--quiet"],
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(dispatchers)
        ]
        for process in processes:
            process.wait(timeout=600)
        elapsed = time.monotonic() - started
    with _env(env), open_store(url) as store:
        job = store.get(docs.job_run_path(run_id)) or {}
    if job.get("status") != docs.Status.SUCCEEDED:
        raise RuntimeError(f"run {run_id} ended {job.get('status')}: {job.get('error')}")
    return elapsed, cpu


class _SlowOffline(OfflineAdapter):
    """The offline model answering after a fixed latency, as a provider over the network would."""

    latency = 0.0

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return await super().generate(request)


async def _work(url: str, workers: int, latency_ms: float) -> None:
    """One dispatcher process (``worker``): dispatches until SIGINT, the model slowed down."""
    _SlowOffline.latency = latency_ms / 1000
    client = ModelClient(offline=True, credentials={})
    # Every key resolves to the offline provider (``offline=True``): this process's adapter for
    # it is the slow one.
    client._adapters[("offline", "", "")] = _SlowOffline()
    store = open_store(url)
    dispatcher = Dispatcher(store, RunContext(models=client), workers=workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await asyncio.to_thread(store.find, "task_runs", "status", list(RUNNABLE))
    print(f"dispatching {url} ({workers} workers, {latency_ms} ms per call)", file=sys.stderr)
    sys.stderr.flush()
    ready = time.process_time()
    try:
        await dispatcher.run(stop=stop)
    finally:
        await client.aclose()
        store.close()
    print(f"{time.process_time() - ready:.6f}", flush=True)


def _seconds(timestamp: object) -> float:
    return datetime.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv: list[str] | None = None) -> None:
    if (argv if argv is not None else sys.argv[1:])[:1] == ["worker"]:
        worker = argparse.ArgumentParser(description="one dispatcher process of the bench")
        worker.add_argument("command")
        worker.add_argument("--store-url", required=True)
        worker.add_argument("--workers", type=int, required=True)
        worker.add_argument("--latency-ms", type=float, required=True)
        options = worker.parse_args(argv)
        asyncio.run(_work(options.store_url, options.workers, options.latency_ms))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["firestore", "sqlite"], default="firestore")
    parser.add_argument("--tasks", type=int, default=BRANCHES + 2)
    parser.add_argument("--dispatchers", default="1,3")
    parser.add_argument("--workers", type=int, default=4, help="per dispatcher")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start the dispatchers after the submit and count their start-up (as the figures "
        "measured before the protocol change were)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="run bench dispatchers whose (offline) model answers after this many ms",
    )
    parser.add_argument("--repetitions", type=int, default=2)
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.dispatchers.split(",")]
    with (
        tempfile.TemporaryDirectory() as tmp,
        store_urls(args.store, pathlib.Path(tmp)) as (
            env,
            urls,
        ),
    ):
        job_file = pathlib.Path(tmp) / "fan_out.json"
        job_file.write_text(json.dumps(fan_out_job(args.tasks - 2)))
        results: dict[int, list[float]] = {count: [] for count in counts}
        supply = iter(urls)
        latency = "" if args.latency_ms is None else f", {args.latency_ms:g} ms per call"
        for repetition in range(args.repetitions):
            for count in counts:
                seconds, cpu = one_run(
                    next(supply),
                    env,
                    count,
                    job_file,
                    args.workers,
                    warm=not args.cold,
                    latency_ms=args.latency_ms,
                )
                results[count].append(seconds)
                cpu_text = "" if cpu is None else f", CPU {cpu * 1000 / args.tasks:.2f} ms/task"
                print(
                    f"{args.store}: {args.tasks} tasks, {count} dispatcher(s) x {args.workers} "
                    f"workers{latency}, run {repetition + 1}: {seconds:.2f} s "
                    f"({args.tasks / seconds:.1f} tasks/s{cpu_text})",
                    flush=True,
                )
        first = statistics.median(results[counts[0]])
        for count, times in results.items():
            median = statistics.median(times)
            print(
                f"{args.store}: {args.tasks} tasks, {count} dispatcher(s) x {args.workers} "
                f"workers{latency}: median {median:.2f} s ({args.tasks / median:.1f} tasks/s, "
                f"{first / median:.2f}x {counts[0]} dispatcher(s); "
                f"runs: {', '.join(f'{t:.2f}' for t in times)})"
            )


if __name__ == "__main__":
    main()

"""How fast `list_runs` pages through a SQLite store holding many job runs.

``python -m bench.run_list [--runs=10000] [--repeat=21] [--prompt-chars=0]`` fills a fresh
SQLite store with job-run documents of the shape `submit_job` writes (the sample fan-out job's
config inline, finished runs with usage, cost and outputs) and four task runs each, written
directly in batches; then it times, as the median of ``--repeat`` calls on a warm cache:

- the first page (50 runs, newest first);
- a page filtered on status (FAILED, a tenth of the runs) and one on a job id (a fifth);
- a deep page, 50 runs after a cursor about nine tenths of the way down;
- the same first page read without the index, as `Store.page` does for a store that does not
  override it (reads the whole collection), for comparison.

``--prompt-chars`` lengthens the job's system prompt, so that each run document carries a
larger inline config (it stays inline up to 16 KiB); the list reads none of it.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from llm_scheduler import loads
from llm_scheduler.config.formats import ConfigFormat
from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.documents import Status
from llm_scheduler.execution.run_list import MAX_LIMIT, RunPage, list_runs
from llm_scheduler.execution.submit import new_task_run_doc, submit_job
from llm_scheduler.store import Store
from llm_scheduler.store.base import Doc
from llm_scheduler.store.sqlite import SqliteStore
from llm_scheduler.v1 import config_pb2

__all__ = ["fill", "main", "measure"]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
JOB_FILE = REPO_ROOT / "examples" / "sample_fanout_job_config.json"
JOBS = 5
BATCH = 2000
PAGE = 50
# Status of the i-th run (of every 20): mostly succeeded, a tenth failed, a few in progress.
_STATUSES = [Status.SUCCEEDED] * 16 + [Status.FAILED] * 2 + [Status.RUNNING, Status.PENDING]


def _job(prompt_chars: int) -> config_pb2.JobConfig:
    job = loads(JOB_FILE.read_text(), config_pb2.JobConfig, ConfigFormat.JSON)
    if prompt_chars:
        job.tasks[0].steps[0].model_query_config.system_prompt = "x" * prompt_chars
    return job


def _run_doc(template: Doc, index: int, start: float) -> tuple[str, Doc]:
    run_id = f"idea_review-{index:06d}"
    created = start + index * 7.0 + random.random()
    status = _STATUSES[index % len(_STATUSES)]
    job_id = f"job-{index % JOBS}"
    doc: Doc = {
        **template,
        "run_id": run_id,
        "job_id": job_id,
        "config": {**template["config"], "job_id": job_id},
        "status": status,
        "created_at": docs.iso(created),
    }
    if status != Status.PENDING:
        doc["started_at"] = docs.iso(created + 0.5)
    if status in (Status.SUCCEEDED, Status.FAILED):
        failed = status == Status.FAILED
        doc.update(
            {
                "finished_at": docs.iso(created + 0.5 + random.uniform(2, 60)),
                "tasks_succeeded": 2 if failed else 4,
                "tasks_failed": 1 if failed else 0,
                "tasks_skipped": 1 if failed else 0,
                "usage": {"input_tokens": "1834", "output_tokens": "612"},
                "cost_usd": 0.00042,
            }
        )
        if failed:
            doc["error"] = {"type": "ProviderError", "message": "task 'pros' failed: 500"}
        else:
            doc["outputs"] = {"verdict": {"verdict": "A fine idea, with two caveats. " * 8}}
    return docs.job_run_path(run_id), doc


def fill(store: Store, runs: int, prompt_chars: int = 0) -> None:
    """Writes ``runs`` job runs, each with four task runs, like those of the sample job."""
    random.seed(7)
    template_id = submit_job(store, _job(prompt_chars), run_id="template")
    template = store.get(docs.job_run_path(template_id))
    assert template is not None
    start = time.time() - runs * 7.0
    for first in range(0, runs, BATCH):
        items: list[tuple[str, Doc]] = []
        for index in range(first, min(first + BATCH, runs)):
            path, doc = _run_doc(template, index, start)
            items.append((path, doc))
            run_id = doc["run_id"]
            for task_id in ("outline", "pros", "cons", "verdict"):
                task = new_task_run_doc(run_id, task_id, start)
                items.append((docs.task_run_path(run_id, task_id), task))
        store.create_all(items)


def _median_ms(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _deep_cursor(store: Store, depth: int) -> str:
    """The cursor after the first ``depth`` runs (found with pages of up to 500)."""
    size = max(1, min(MAX_LIMIT, depth))
    cursor = ""
    for _ in range(depth // size):
        page: RunPage = list_runs(store, limit=size, cursor=cursor)
        cursor = page.next_cursor
    return cursor


def measure(store: Store, runs: int, repeat: int) -> dict[str, float]:
    """Median milliseconds of each kind of page (see the module docstring)."""
    deep = _deep_cursor(store, runs * 9 // 10)
    first = list_runs(store, limit=PAGE)
    assert len(first.runs) == PAGE and first.next_cursor
    assert list_runs(store, limit=PAGE, cursor=deep).runs, "the deep page is empty"

    def unindexed() -> None:
        Store.page(store, "job_runs", order_by="created_at", limit=PAGE + 1)

    return {
        "first_page_ms": _median_ms(lambda: list_runs(store, limit=PAGE), repeat),
        "status_page_ms": _median_ms(lambda: list_runs(store, limit=PAGE, status="FAILED"), repeat),
        "job_page_ms": _median_ms(lambda: list_runs(store, limit=PAGE, job_id="job-3"), repeat),
        "deep_page_ms": _median_ms(lambda: list_runs(store, limit=PAGE, cursor=deep), repeat),
        "unindexed_first_page_ms": _median_ms(unindexed, max(1, min(repeat, 3))),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--prompt-chars", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "state.db"
        with SqliteStore(path) as store:
            started = time.perf_counter()
            fill(store, args.runs, args.prompt_chars)
            fill_seconds = time.perf_counter() - started
            doc = store.get(docs.job_run_path("idea_review-000000")) or {}
            figures = measure(store, args.runs, args.repeat)
        size = sum(p.stat().st_size for p in pathlib.Path(tmp).glob("state.db*"))
    print(
        f"{args.runs} job runs ({len(json.dumps(doc))} bytes each as JSON), "
        f"{args.runs * 4} task runs; filled in {fill_seconds:.1f} s, {size / 2**20:.0f} MiB"
    )
    names = {
        "first_page_ms": "first page (50)",
        "status_page_ms": "page filtered on status=FAILED",
        "job_page_ms": "page filtered on job_id",
        "deep_page_ms": f"deep page (after {args.runs * 9 // 10} runs)",
        "unindexed_first_page_ms": "first page without the index (Store.page default)",
    }
    for key, label in names.items():
        repeats = max(1, min(args.repeat, 3)) if key.startswith("unindexed") else args.repeat
        print(f"{label}: {figures[key]:.2f} ms (median of {repeats})")
    print(json.dumps({"runs": args.runs, **{k: round(v, 3) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()

"""Times config validation of large jobs: ``python -m bench.validation [--tasks=10000]``.

Two shapes of ``--tasks`` tasks: a fan-out (a start task names every other task but one in
``next_tasks``, and one final task joins them) and a chain (``next_task`` links). For each it
prints the time to build the task graph and to validate the job (the first of
``--repetitions`` runs, which also derives the step plans, and their median), and exits with 1
when a first validation takes longer than ``--budget`` seconds. Validation used to be
quadratic (10,000 tasks: 30 s to 2 min); it is linear now.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable

from llm_scheduler.config.graph import TaskGraph
from llm_scheduler.config.validation import Validator
from llm_scheduler.testing.sized_jobs import chain_job, fan_out_job

__all__ = ["chain_job", "fan_out_job", "main"]


def _seconds(work: Callable[[], object], repetitions: int) -> tuple[float, float]:
    """The first and the median time of ``repetitions`` runs of ``work``."""
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times[0], statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Measures, prints a line per job shape, and returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per validation")
    args = parser.parse_args(argv)
    over = False
    for name, build in (("fan-out", fan_out_job), ("chain", chain_job)):
        job = build(args.tasks)
        _, graph = _seconds(functools.partial(TaskGraph.from_job, job), args.repetitions)
        # The first validation also derives the step plans, which later ones find cached.
        first, median = _seconds(functools.partial(Validator().check_job, job), args.repetitions)
        over = over or first > args.budget
        print(
            f"{name:8} {args.tasks} tasks: TaskGraph.from_job {graph:.3f} s; "
            f"Validator.check_job first {first:.3f} s, median {median:.3f} s "
            f"(budget {args.budget:.1f} s)"
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

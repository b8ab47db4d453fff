"""A smoke run of the benchmark: tiny sizes, one repetition, no Firestore. Speed is not checked."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8")


def test_quick_benchmark_prints_a_table_with_every_workload() -> None:
    # The bench starts a dozen processes; tracing the engine in each under coverage would only
    # slow the smoke run down (this test checks the bench, not the engine's coverage).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--repetitions=1", "--no-firestore"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a speed check: a busy machine takes ~100 s
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| W")]
    for workload in WORKLOADS:
        assert any(row.startswith(f"| {workload} ") for row in rows), f"no {workload} row"
    assert any(row.startswith("| W4 sqlite") for row in rows)
    assert any(row.startswith("| W1 chain, in process, OpenTelemetry on |") for row in rows)
    # W7/W8: every size of the quick growth series measured, and the two validation rows.
    assert len([row for row in rows if row.startswith(("| W7 ", "| W8 "))]) == 6
    lines = completed.stdout.splitlines()
    for label in ("a fan-out (tasks of one shape)", "W8's job (a prompt per task)"):
        assert any(line.startswith(f"| Validation of {label} | 1,000 tasks | 0.") for line in lines)
    # The client-cost table: one measured row per client.
    clients = [line for line in completed.stdout.splitlines() if " µs | " in line]
    assert len([row for row in clients if "SDK" in row or "httpx" in row or "asyncio" in row]) == 3

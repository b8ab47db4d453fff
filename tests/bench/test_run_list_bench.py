"""A smoke run of bench.run_list: a few hundred runs, one repetition. Speed is not checked."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_run_list_bench_prints_each_figure() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run_list", "--runs=300", "--repeat=1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("300 job runs (")
    assert any(line.startswith("deep page (after 270 runs): ") for line in lines)
    figures = json.loads(lines[-1])
    assert set(figures) == {
        "runs",
        "first_page_ms",
        "status_page_ms",
        "job_page_ms",
        "deep_page_ms",
        "unindexed_first_page_ms",
    }

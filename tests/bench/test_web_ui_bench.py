"""A smoke run of bench.web_ui at tiny sizes: it produces every figure. Speed is not checked.

Like the browser tests, it is skipped without /usr/bin/chromium, except in CI (``CI=true``),
where that is a failure (`make browser` installs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llm_scheduler.testing.chromium import CHROMIUM, missing_chromium_message
from tests.conftest import REPO_ROOT

FIGURES = {
    "list_json_server",
    "list_html_server",
    "run_json_server",
    "run_html_server",
    "list_browser_dcl",
    "list_browser_usable",
    "run_browser_dcl",
    "run_browser_interactive",
    "live_latency",
}
TARGETS = {"list_json_server", "list_html_server", "run_browser_interactive", "live_latency"}


def test_web_ui_bench_prints_every_figure_with_its_target() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI: `make browser` installs it")
        pytest.skip(missing_chromium_message())
    # The web server is a subprocess of the bench; tracing it for coverage would only slow it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS_")}
    sizes = ["--runs=200", "--tasks=20", "--samples=3", "--requests=3", "--navigations=2"]
    completed = subprocess.run(
        [sys.executable, "-m", "bench.web_ui", *sizes],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = completed.stdout.splitlines()
    result = json.loads(lines[-1])
    assert result["sizes"] == {
        "runs": 200,
        "tasks": 20,
        "requests": 3,
        "navigations": 2,
        "samples": 3,
    }
    figures = result["figures"]
    assert set(figures) == FIGURES
    for key, figure in figures.items():
        # 3 requests, 3 live events, 2 page loads.
        assert figure["count"] == (2 if "_browser_" in key else 3), key
        assert (figure["target_ms"] is not None) == (key in TARGETS)
        assert figure["status"] in (("met", "missed") if key in TARGETS else ("—",))
    rows = [line for line in lines if line.startswith(("| Run list", "| Run page", "| Live"))]
    assert len(rows) == len(FIGURES)

"""Structured log entries: one whole JSON line each, severities by outcome, labels."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from llm_scheduler.execution import documents as docs
from llm_scheduler.execution.log_entries import (
    LABELS_FIELD,
    format_entry,
    labels_for_path,
    severity_of,
    write_entry,
)

# Writes entries from many threads at once to a real stdout (a pipe), as a function instance
# serving concurrent requests does; sizes vary so that writes straddle buffer boundaries.
_WRITERS = """
import sys, threading
from llm_scheduler.execution.log_entries import write_entry

THREADS, ENTRIES = int(sys.argv[1]), int(sys.argv[2])
start = threading.Barrier(THREADS)

def work(thread: int) -> None:
    start.wait()
    for n in range(ENTRIES):
        write_entry(
            "INFO",
            f"entry {n} of thread {thread} " + "x" * ((n * 37 + thread * 101) % 3000),
            labels={"run_id": f"R{thread}", "task_id": f"T{n}"},
            thread=thread,
            n=n,
        )

threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_entries_written_concurrently_are_each_one_whole_line() -> None:
    threads, entries = 16, 300
    result = subprocess.run(
        [sys.executable, "-c", _WRITERS, str(threads), str(entries)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == threads * entries
    parsed = [json.loads(line) for line in lines]  # every line is exactly one entry
    seen = {(entry["thread"], entry["n"]) for entry in parsed}
    assert len(seen) == threads * entries
    assert all(entry[LABELS_FIELD]["run_id"] == f"R{entry['thread']}" for entry in parsed)


@pytest.mark.parametrize(
    ("action", "severity"),
    [
        ("succeeded", "INFO"),
        ("noop", "DEBUG"),
        ("handed_off", "NOTICE"),
        ("lost_lease", "NOTICE"),
        ("cancelled", "NOTICE"),
        ("failed", "ERROR"),
        ("discarded", "WARNING"),
        ("accepted", "INFO"),
        ("rejected", "WARNING"),
        ("something_new", "INFO"),
    ],
)
def test_severity_follows_the_outcome(action: str, severity: str) -> None:
    assert severity_of(action) == severity


def test_labels_name_the_run_task_or_request() -> None:
    assert labels_for_path(docs.task_run_path("R", "T")) == {"run_id": "R", "task_id": "T"}
    assert labels_for_path(docs.job_run_path("R")) == {"run_id": "R"}
    assert labels_for_path("run_requests/Q") == {"request_id": "Q"}
    assert labels_for_path("elsewhere/x/y/z") == {}
    assert labels_for_path("") == {}


def test_an_entry_is_one_json_line_with_labels_as_strings() -> None:
    line = format_entry("ERROR", "boom\nsecond line", labels={"run_id": "R"}, steps=3, when=b"x")
    assert line.endswith("\n") and line.count("\n") == 1
    entry = json.loads(line)
    assert entry == {
        "severity": "ERROR",
        "message": "boom\nsecond line",
        "run_id": "R",
        LABELS_FIELD: {"run_id": "R"},
        "steps": 3,
        "when": "b'x'",
    }


def test_write_entry_writes_to_the_given_stream() -> None:
    stream = io.StringIO()
    write_entry("NOTICE", "hello", stream=stream)
    assert json.loads(stream.getvalue()) == {"severity": "NOTICE", "message": "hello"}

"""Trace files: one JSON file holding a run, to read, edit and replay (see docs/traces.md).

A trace is the `Trace` message of ``run.proto`` in the proto JSON mapping with snake_case names,
``//`` comments allowed as in configs. ``schema`` and ``schema_version`` say what the file is,
so a reader can refuse what it does not understand instead of misreading it.
"""

from __future__ import annotations

import pathlib

from llm_scheduler import __version__
from llm_scheduler.config import formats
from llm_scheduler.errors import ConfigError
from llm_scheduler.v1 import run_pb2

__all__ = [
    "TRACE_SCHEMA",
    "TRACE_SCHEMA_VERSION",
    "loads_trace",
    "read_trace",
    "to_trace",
    "write_trace",
]

TRACE_SCHEMA = "llm-scheduler.trace"
# Bump when a trace written now could be misread by an older reader (see docs/traces.md).
TRACE_SCHEMA_VERSION = 1

# Traces hold every prompt and response of a run, so they may be far larger than configs.
MAX_TRACE_BYTES = 256 * 2**20

_HINT_REEXPORT = "export the run again with trace_export or job_runner --trace_out"


def to_trace(job_run: run_pb2.JobRun) -> run_pb2.Trace:
    """A trace of a run, stamped with the current format version and time."""
    trace = run_pb2.Trace(schema=TRACE_SCHEMA, schema_version=TRACE_SCHEMA_VERSION)
    trace.exported_at.GetCurrentTime()
    trace.job_run.CopyFrom(job_run)
    return trace


def write_trace(path: str | pathlib.Path, job_run: run_pb2.JobRun) -> None:
    """Writes a run as a trace file (UTF-8 JSON).

    Raises:
        OSError: The file cannot be written.
    """
    pathlib.Path(path).write_bytes(formats.dumps(to_trace(job_run), formats.ConfigFormat.JSON))


def read_trace(path: str | pathlib.Path) -> run_pb2.JobRun:
    """Reads a trace file and returns its run.

    Unknown fields are errors, each with its field path, as in configs.

    Raises:
        ConfigError: The file is missing or unreadable, not a trace, of a format version this
            llm-scheduler does not read, or not a valid trace.
    """
    file = str(path)
    data = formats.read_bytes(path, max_bytes=MAX_TRACE_BYTES)
    return loads_trace(formats.decode_text(data, file, "a trace is a UTF-8 JSON file"), file)


def loads_trace(text: str, file: str = "") -> run_pb2.JobRun:
    """Parses a trace's text (as `read_trace` reads a file) and returns its run.

    Args:
        text: The trace, JSON.
        file: Where it came from, for error messages (a file name, or e.g. an upload's).

    Raises:
        ConfigError: It is not a trace, of a format version this llm-scheduler does not read,
            or not a valid trace.
    """
    header = _header(text)
    if header is not None:
        _check_header(header, file)
    # Invalid JSON (header None) is reported here, with its line and column.
    trace = formats.loads(text, run_pb2.Trace, formats.ConfigFormat.JSON, file=file)
    if not trace.HasField("job_run"):
        raise ConfigError.single(
            "job_run",
            "the trace holds no run",
            f"a trace needs its job_run; {_HINT_REEXPORT}",
            file,
        )
    return trace.job_run


def _header(text: str) -> dict[str, object] | None:
    try:
        tree = formats.parse_json(text)
    except ConfigError:  # reported in full when the trace is loaded
        return None
    return tree if isinstance(tree, dict) else None


def _check_header(tree: dict[str, object], file: str) -> None:
    schema = tree.get("schema")
    if schema != TRACE_SCHEMA:
        if schema is None and ("run_id" in tree or "tasks" in tree):
            # What job_runner --trace_out wrote before traces had a header (never released).
            raise ConfigError.single(
                "schema",
                "not an llm-scheduler trace: this looks like a bare JobRun record, written "
                "before trace files had a schema",
                f"{_HINT_REEXPORT}, or wrap the record as "
                f'{{"schema": "{TRACE_SCHEMA}", "schema_version": {TRACE_SCHEMA_VERSION}, '
                '"job_run": ...}',
                file,
            )
        found = "no schema field" if schema is None else f"schema {schema!r}"
        raise ConfigError.single(
            "schema",
            f"not an llm-scheduler trace ({found}; a trace has schema {TRACE_SCHEMA!r})",
            "pass a file written by trace_export or job_runner --trace_out",
            file,
        )
    version = _version(tree.get("schema_version"))
    if version == TRACE_SCHEMA_VERSION:
        return
    if version is not None and version > TRACE_SCHEMA_VERSION:
        raise ConfigError.single(
            "schema_version",
            f"this trace has format version {version}, and this llm-scheduler ({__version__}) "
            f"reads version {TRACE_SCHEMA_VERSION} only",
            "upgrade llm-scheduler (pip install --upgrade llm-scheduler) to read it",
            file,
        )
    found = (
        "no schema_version"
        if "schema_version" not in tree
        else f"schema_version {tree['schema_version']!r}"
    )
    raise ConfigError.single(
        "schema_version",
        f"unknown trace format version ({found}); this llm-scheduler ({__version__}) reads "
        f"version {TRACE_SCHEMA_VERSION}",
        f'set "schema_version": {TRACE_SCHEMA_VERSION} if the file is in that format, '
        f"or {_HINT_REEXPORT}",
        file,
    )


def _version(value: object) -> int | None:
    # The proto JSON mapping allows integers as numbers or decimal strings.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None

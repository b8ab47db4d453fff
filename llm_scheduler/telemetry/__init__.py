"""Optional OpenTelemetry export of runs: a span per job run, task run and step, and metrics.

Turned on by the standard environment when the ``otel`` extra is installed (see
docs/observability.md)::

    pip install 'llm-scheduler[otel]'
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318
    export OTEL_SERVICE_NAME=my-pipeline

The command-line tools and the cloud function call `setup_telemetry` themselves; a program
calls it once at start (and `flush_telemetry` before a cloud function returns). A job run is one
trace even when many processes ran it: spans are built from the finished run records with ids
derived from the run's ids (`ids`), and a run submitted while a span is current joins its trace.

This package imports no OpenTelemetry module until export is turned on.
"""

from llm_scheduler.telemetry.hooks import RunTelemetry
from llm_scheduler.telemetry.settings import (
    CAPTURE_CONTENT_VARIABLES,
    TelemetrySettings,
    flush_telemetry,
    setup_telemetry,
    shutdown_telemetry,
    telemetry_session,
    telemetry_settings,
    with_telemetry,
)

__all__ = [
    "CAPTURE_CONTENT_VARIABLES",
    "SCOPE_NAME",
    "SCOPE_VERSION",
    "RunTelemetry",
    "TelemetrySettings",
    "flush_telemetry",
    "setup_telemetry",
    "shutdown_telemetry",
    "telemetry_session",
    "telemetry_settings",
    "with_telemetry",
]

# The instrumentation scope of the spans and metrics.
SCOPE_NAME = "llm_scheduler"
SCOPE_VERSION = "1"

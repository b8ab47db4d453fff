"""Turning export on from the standard OpenTelemetry environment, and off again at exit.

Export is on when the ``otel`` extra is installed and an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT``, or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` for one signal), unless ``OTEL_SDK_DISABLED`` is true.
The OpenTelemetry packages are imported only then.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from llm_scheduler.telemetry import hooks

__all__ = [
    "CAPTURE_CONTENT_VARIABLES",
    "TelemetrySettings",
    "flush_telemetry",
    "setup_telemetry",
    "shutdown_telemetry",
    "telemetry_session",
    "telemetry_settings",
    "with_telemetry",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Either opts in to prompts and responses on step spans (they may hold personal data): ours, and
# the one OpenTelemetry's GenAI instrumentations read.
CAPTURE_CONTENT_VARIABLES = (
    "LLM_SCHEDULER_OTEL_CAPTURE_CONTENT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
)
_TRUE = {"true", "1", "yes", "on", "span_only", "event_only", "span_and_event"}
_INSTALL_HINT = "pip install 'llm-scheduler[otel]'"
_warned_missing = False


class TelemetrySettings:
    """What the environment asks for.

    Attributes:
        traces: Export spans (an endpoint for traces is set, and traces are not turned off by
            ``OTEL_TRACES_EXPORTER=none``).
        metrics: Export metrics (likewise, for metrics).
        capture_content: Put prompts and responses on step spans.
        disabled: ``OTEL_SDK_DISABLED`` is true.
        sample_ratio: The share of runs (without a parent's decision) whose spans are exported:
            ``OTEL_TRACES_SAMPLER`` ``always_off`` (0), ``traceidratio`` or
            ``parentbased_traceidratio`` (``OTEL_TRACES_SAMPLER_ARG``), else 1.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        def flag(name: str) -> bool:
            return environ.get(name, "").strip().lower() in _TRUE

        def endpoint(signal: str) -> bool:
            return bool(
                environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
                or environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
            )

        def exporter_off(signal: str) -> bool:
            return environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none"

        self.disabled = flag("OTEL_SDK_DISABLED")
        self.traces = not self.disabled and endpoint("TRACES") and not exporter_off("TRACES")
        self.metrics = not self.disabled and endpoint("METRICS") and not exporter_off("METRICS")
        self.capture_content = any(flag(name) for name in CAPTURE_CONTENT_VARIABLES)
        sampler = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower()
        self.sample_ratio = 1.0
        if sampler in ("always_off", "parentbased_always_off"):
            self.sample_ratio = 0.0
        elif sampler in ("traceidratio", "parentbased_traceidratio"):
            try:
                ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1"))
                self.sample_ratio = min(max(ratio, 0.0), 1.0)
            except ValueError:
                self.sample_ratio = 1.0

    @property
    def enabled(self) -> bool:
        """Whether anything is to be exported."""
        return self.traces or self.metrics


def telemetry_settings(environ: Mapping[str, str] | None = None) -> TelemetrySettings:
    """The settings of ``environ`` (the process's environment by default)."""
    return TelemetrySettings(os.environ if environ is None else environ)


def extra_installed() -> bool:
    """Whether the ``otel`` extra's packages can be imported."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
        )
    except ImportError:  # a parent package missing or blocked
        return False


def setup_telemetry(*, instance_id: str = "", environ: Mapping[str, str] | None = None) -> bool:
    """Starts exporting runs when the environment asks for it; returns whether export is on.

    Idempotent: a second call keeps the receiver in place. With an endpoint set but the extra
    missing, logs a warning naming the install command and exports nothing. Export stops at
    exit (`shutdown_telemetry` runs then, flushing what is buffered).

    Args:
        instance_id: This process's ``service.instance.id`` (e.g. a worker id); a random one by
            default. ``OTEL_RESOURCE_ATTRIBUTES`` wins.
        environ: The environment to read (the process's by default); the OpenTelemetry SDK
            reads the process's for endpoints, headers and the resource in any case.
    """
    global _warned_missing
    if hooks.active is not None:
        return True
    settings = telemetry_settings(environ)
    if not settings.enabled:
        return False
    if not extra_installed():
        if not _warned_missing:
            _warned_missing = True
            _log.warning(
                "an OTLP endpoint is set but OpenTelemetry is not installed; nothing is "
                "exported (install it with: %s)",
                _INSTALL_HINT,
            )
        return False
    from llm_scheduler.telemetry.exporter import OtelRunTelemetry

    hooks.install(
        OtelRunTelemetry.over_otlp_http(
            capture_content=settings.capture_content,
            traces=settings.traces,
            metrics=settings.metrics,
            instance_id=instance_id,
            sample_ratio=settings.sample_ratio,
        )
    )
    atexit.register(shutdown_telemetry)
    return True


def flush_telemetry(timeout_millis: int = 30_000) -> bool:
    """Exports what is buffered (a cloud function before it returns: its instance may freeze).

    Returns:
        Whether everything went within the timeout (True when export is off).
    """
    active = hooks.active
    return active.force_flush(timeout_millis) if active is not None else True


def shutdown_telemetry() -> None:
    """Flushes and stops exporting; runs may go on, unexported."""
    active = hooks.active
    hooks.uninstall()
    if active is not None:
        active.shutdown()


@contextlib.contextmanager
def telemetry_session(*, instance_id: str = "") -> Iterator[bool]:
    """`setup_telemetry` on entry, `shutdown_telemetry` on exit (when this call set it up)."""
    started = hooks.active is None and setup_telemetry(instance_id=instance_id)
    try:
        yield hooks.active is not None
    finally:
        if started:
            shutdown_telemetry()


def with_telemetry(body: Callable[[], T]) -> Callable[[], T]:
    """``body`` run in a `telemetry_session` (a command-line tool's body)."""

    @functools.wraps(body)
    def traced() -> T:
        with telemetry_session():
            return body()

    return traced

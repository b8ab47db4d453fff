"""A local OTLP/HTTP receiver for tests: decodes what exporters send with `opentelemetry.proto`."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2


def _value(value: common_pb2.AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclasses.dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, dict[str, Any]]]
    start: int
    end: int


@dataclasses.dataclass
class Metric:
    name: str
    unit: str
    points: list[tuple[dict[str, Any], float]]  # attributes, sum (or value)
    resource: dict[str, Any]


class OtlpReceiver:
    """Receives OTLP/HTTP protobuf exports on ``/v1/traces`` and ``/v1/metrics``."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.metrics: list[Metric] = []
        self.requests = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                response: Message
                if self.path == "/v1/traces":
                    receiver._traces(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
                    response = trace_service_pb2.ExportTraceServiceResponse()
                elif self.path == "/v1/metrics":
                    request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
                    receiver._metrics(request)
                    response = metrics_service_pb2.ExportMetricsServiceResponse()
                else:
                    self.send_error(404)
                    return
                payload = response.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _traces(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            Span(
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent_span_id=span.parent_span_id.hex(),
                                name=span.name,
                                kind=span.kind,
                                attributes=attributes(span.attributes),
                                resource=resource,
                                status_code=span.status.code,
                                status_message=span.status.message,
                                events=[(e.name, attributes(e.attributes)) for e in span.events],
                                start=span.start_time_unix_nano,
                                end=span.end_time_unix_nano,
                            )
                        )

    def _metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        with self._lock:
            self.requests += 1
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        kind = metric.WhichOneof("data") or "sum"
                        points: list[tuple[dict[str, Any], float]] = []
                        for point in getattr(metric, kind).data_points:
                            if kind == "histogram":
                                points.append((attributes(point.attributes), point.sum))
                            else:
                                value = point.as_double or point.as_int
                                points.append((attributes(point.attributes), value))
                        self.metrics.append(Metric(metric.name, metric.unit, points, resource))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        """Waits until ``condition`` holds (exports arrive from other processes' threads)."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "the expected exports never arrived"
            time.sleep(0.05)

    def otel_env(self) -> dict[str, str]:
        """The environment that points an exporting process here."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint}

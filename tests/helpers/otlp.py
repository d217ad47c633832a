"""An OTLP/HTTP receiver on 127.0.0.1 that decodes what it gets."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class OtlpReceiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP traces endpoint that decodes what it gets; with ``forward_to``, also a recording proxy."""

    spans: list[dict[str, Any]] = []
    bodies: list[bytes] = []
    auth: list[tuple[str | None, frozenset[str]]] = []
    """Per traces export: its ``x-otlp-auth`` header and the services whose spans it carried."""
    metric_bodies: list[bytes] = []
    forward_to: str | None = None
    delay_s: float = 0.0
    """How long each answer takes (a slow backend)."""
    metrics_status: int = 200
    """What ``/v1/metrics`` answers (405: a traces-only backend such as Phoenix)."""
    log_bodies: list[bytes] = []
    logs_status: int = 200
    """What ``/v1/logs`` answers."""
    lock = threading.Lock()
    arrived = threading.Condition(lock)

    @classmethod
    def wait_for(cls, enough: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> list[dict[str, Any]]:
        """Blocks until ``enough(spans)`` holds (checked at each export received), or fails after ``timeout``."""
        with cls.arrived:
            if not cls.arrived.wait_for(lambda: enough(cls.spans), timeout):
                pytest.fail(f"spans did not arrive in {timeout}s: {[(s['service'], s['name']) for s in cls.spans]}")
            return list(cls.spans)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.delay_s:
            threading.Event().wait(self.delay_s)  # a slow backend: the answer comes this much later
        if self.path in ("/v1/metrics", "/v1/logs"):
            metrics = self.path == "/v1/metrics"
            (self.metric_bodies if metrics else self.log_bodies).append(body)
            status = self.metrics_status if metrics else self.logs_status
            if status != 200:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            answer = ExportMetricsServiceResponse() if metrics else ExportLogsServiceResponse()
            self._reply(answer.SerializeToString())
            return
        request = ExportTraceServiceRequest.FromString(body)
        self.bodies.append(body)
        if self.forward_to is not None:
            forwarded = urllib.request.Request(
                self.forward_to + self.path, data=body, headers={"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(forwarded, timeout=30) as response:
                assert response.status == 200
        with self.lock:
            services = frozenset(
                a.value.string_value
                for r in request.resource_spans
                for a in r.resource.attributes
                if a.key == "service.name"
            )
            self.auth.append((self.headers.get("x-otlp-auth"), services))
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "path": self.path,
                                "service": attrs.get("service.name"),
                                "name": span.name,
                                "kind": Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                                "scope": scope_spans.scope.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex() or None,
                                "attributes": {a.key: _any_value(a.value) for a in span.attributes},
                            }
                        )
            self.arrived.notify_all()
        self._reply(ExportTraceServiceResponse().SerializeToString())

    def _reply(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _any_value(value: Any) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "bool_value", "double_value") else kind

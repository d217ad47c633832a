from __future__ import annotations

import os
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_tracing.testing import capture_spans

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "servers" / "probe_server.py"
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The process-wide provider, set once: mcp 2.x's own spans (scope "mcp-python-sdk") can only go there, and
# the tests must see them to prove they are replaced rather than duplicated. mcp_tracing itself is always
# given the test's local provider.
GLOBAL_EXPORTER = InMemorySpanExporter()
_global_provider = TracerProvider()
_global_provider.add_span_processor(SimpleSpanProcessor(GLOBAL_EXPORTER))
trace.set_tracer_provider(_global_provider)


@pytest.fixture
def capture() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A local provider for mcp_tracing; finished spans of the global provider are merged into its exporter."""
    GLOBAL_EXPORTER.clear()
    with capture_spans() as (provider, exporter):
        yield provider, _Merged(exporter)


class _Merged(InMemorySpanExporter):
    """The local exporter's spans followed by whatever reached the global provider during the test."""

    def __init__(self, local: InMemorySpanExporter) -> None:
        super().__init__()
        self._local = local

    def get_finished_spans(self):  # type: ignore[no-untyped-def]
        return tuple(self._local.get_finished_spans()) + tuple(GLOBAL_EXPORTER.get_finished_spans())

    def clear(self) -> None:
        self._local.clear()
        GLOBAL_EXPORTER.clear()


QUICK_MODULES: frozenset[str] = frozenset(
    {
        "test_agent",
        "test_analyze",
        "test_architecture",
        "test_both_directions",
        "test_cancellation",
        "test_client_v2",
        "test_deploy",
        "test_fuzz",
        "test_hostile_tools",
        "test_inprocess",
        "test_noise",
        "test_paths_inprocess",
        "test_privacy",
        "test_propagation",
        "test_sampling",
        "test_store_cli",
        "test_waterfall",
    }
)
"""The fast tier (``scripts/test --quick``): modules whose tests run in this process (memory streams, in-process
ASGI), bar those marked ``subprocess``. Everything else spawns real processes."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in QUICK_MODULES and item.get_closest_marker("subprocess") is None:
            item.add_marker(pytest.mark.quick)


@pytest.fixture
def spans_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where spawned servers write their spans (forwarded to them as an MCP_TRACING_* variable)."""
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv("MCP_TRACING_EXAMPLE_SPANS", str(path))
    return path


@pytest.fixture(autouse=True)
def _hash_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A fixed key: hashes are comparable across processes and nothing is written to the real home.
    monkeypatch.setenv("MCP_TRACING_HASH_KEY", "test-key")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # The CLI's --store sets MCP_TRACING_STORE for what it starts: put back as it was after each test, whatever
    # order the tests run in.
    monkeypatch.delenv("MCP_TRACING_STORE", raising=False)
    # The stores this process writes, which children are told: none left over from another test.
    from mcp_tracing import store

    monkeypatch.setattr(store, "_writing", [])


def other_python() -> str:
    """The interpreter of the other mcp major version's venv (scripts/test sets it); skips the test without it.

    Under CI a missing interpreter fails the test instead: the cross-version check must not go quiet.
    """
    path = os.environ.get("MCP_TRACING_OTHER_PYTHON")
    if path and Path(path).exists():
        return path
    if os.environ.get("CI"):
        pytest.fail("CI must set MCP_TRACING_OTHER_PYTHON to the other mcp major version's interpreter")
    pytest.skip("MCP_TRACING_OTHER_PYTHON is not set (scripts/test sets it)")


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
        if self.path == "/v1/metrics":
            self.metric_bodies.append(body)
            if self.metrics_status != 200:
                self.send_response(self.metrics_status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._reply(ExportMetricsServiceResponse().SerializeToString())
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

    def log_message(self, *args: object) -> None:
        pass


def _any_value(value: Any) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "bool_value", "double_value") else kind


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An OTLP endpoint that accepts connections and never answers (the backlog holds them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    OtlpReceiver.spans = []
    OtlpReceiver.bodies = []
    OtlpReceiver.auth = []
    OtlpReceiver.metric_bodies = []
    OtlpReceiver.forward_to = None
    OtlpReceiver.delay_s = 0.0
    OtlpReceiver.metrics_status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), OtlpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", OtlpReceiver.spans
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from helpers.otlp import OtlpReceiver
from opentelemetry import trace
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
        "test_cli",
        "test_both_directions",
        "test_cancellation",
        "test_client_v2",
        "test_deploy",
        "test_fuzz",
        "test_hostile_tools",
        "test_inprocess",
        "test_logs",
        "test_readme",
        "test_noise",
        "test_paths_inprocess",
        "test_privacy",
        "test_propagation",
        "test_sampling",
        "test_hot_path",
        "test_settings",
        "test_store_cli",
        "test_store_index",
        "test_ui",
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
    from mcp_tracing.store import exporter

    monkeypatch.setattr(exporter, "_writing", [])


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
    OtlpReceiver.log_bodies = []
    OtlpReceiver.logs_status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), OtlpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", OtlpReceiver.spans
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

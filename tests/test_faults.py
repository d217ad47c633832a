"""The fault suite: what tracing must survive without changing what the traced program does.

Timeouts and caller cancellation are in test_cancellation.py, the proxy's crashes in test_proxy.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import all_spans, http_probe, probe_params, structured
from mcp import ClientSession
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing.testing import SpanRecord

pytestmark = pytest.mark.anyio

FAULTS_CLIENT = Path(__file__).resolve().parent / "servers" / "faults_client.py"


def closed_port() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now: connections are refused


@pytest.mark.subprocess
@pytest.mark.parametrize("endpoint_kind", ["down", "black hole"])
def test_an_unreachable_otlp_endpoint_changes_nothing_and_exit_does_not_hang(
    endpoint_kind: str, black_hole: str, tmp_path: Path
) -> None:
    """Tool calls all succeed; the export queue stays bounded (20,000 spans, 512 queued at most); the process
    exits on its own, the exporters giving up after their 2 s timeout (bounded by the 60 s guard below)."""
    endpoint = black_hole if endpoint_kind == "black hole" else closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_STORE"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT="2",
        OTEL_BSP_MAX_QUEUE_SIZE="512",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        OTEL_METRIC_EXPORT_TIMEOUT="2000",
        MCP_TRACING_STORE=str(tmp_path / "unused.db"),
    )
    done = subprocess.run(
        [sys.executable, str(FAULTS_CLIENT), "50", "20000"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "calls ok 50"
    grown = float(lines[1].split("grew ")[1].split(" MB")[0])
    # Measured: ~11 MB with the queue bounded at 512; 62 MB with a queue that keeps all 20,000 spans of 2 kB.
    assert grown < 30, lines[1]


@pytest.mark.subprocess
async def test_a_server_crashing_mid_call_ends_the_client_span_with_an_error(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    with provider.get_tracer("tests").start_as_current_span("agent.run"):
        async with mcp_tracing.stdio_client(probe_params()) as (read, write):
            async with ClientSession(read, write) as session:
                mcp_tracing.trace_session(session, tracer_provider=provider)
                with anyio.fail_after(30):
                    await session.initialize()
                    with pytest.raises(Exception):  # noqa: B017 - whatever the SDK line raises for a dead peer
                        await session.call_tool("crash", {"code": 3})
    (client,) = [s for s in all_spans(exporter, spans_file) if s.name == "tools/call crash" and s.kind == "CLIENT"]
    assert client.status == "ERROR" and client.attributes[attr.ERROR_TYPE]
    assert client.end_ns >= client.start_ns


async def concurrent_calls(session: ClientSession, provider: TracerProvider, count: int) -> dict[int, Any]:
    """``count`` calls at once, each in a task under a span of its own; returns each task's span id and report."""
    tracer = provider.get_tracer("tests")
    reports: dict[int, Any] = {}

    async def one(index: int) -> None:
        with tracer.start_as_current_span(f"task {index}") as span:
            result = await session.call_tool("context_report", {})
            reports[span.get_span_context().span_id] = structured(result)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            for index in range(count):
                tasks.start_soon(one, index)
    return reports


def assert_none_misparented(spans: list[SpanRecord], reports: dict[int, Any], count: int) -> None:
    """Each task's client span is its child, each server span the child of its own client span, and each tool
    saw its own server span as current: no call borrowed another's context."""
    by_id = {s.span_id: s for s in spans}
    clients = [s for s in spans if s.name == "tools/call context_report" and s.kind == "CLIENT"]
    servers = [s for s in spans if s.name == "tools/call context_report" and s.kind == "SERVER"]
    assert len(clients) == len(servers) == len(reports) == count
    misparented = 0
    for task_id, report in reports.items():
        server = by_id.get(report["span_id"])
        client = by_id.get(server.parent_id) if server and server.parent_id else None
        if client is None or client.kind != "CLIENT" or client.parent_id != format(task_id, "016x"):
            misparented += 1
    assert misparented == 0


@pytest.mark.subprocess
async def test_200_concurrent_calls_over_stdio_are_never_misparented(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    async with mcp_tracing.stdio_client(probe_params()) as (read, write):
        async with ClientSession(read, write) as session:
            mcp_tracing.trace_session(session, tracer_provider=provider)
            await session.initialize()
            reports = await concurrent_calls(session, provider, 200)
    assert_none_misparented(all_spans(exporter, spans_file), reports, 200)


@pytest.mark.subprocess
async def test_200_concurrent_calls_over_http_are_never_misparented(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    async with http_probe(spans_file) as url:
        async with mcp_tracing.streamable_http_client(url) as (read, write, *_):
            async with ClientSession(read, write) as session:
                mcp_tracing.trace_session(session, tracer_provider=provider)
                await session.initialize()
                reports = await concurrent_calls(session, provider, 200)
    assert_none_misparented(all_spans(exporter, spans_file), reports, 200)

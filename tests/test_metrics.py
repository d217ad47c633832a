"""The MCP semantic conventions' four duration histograms: names, units, buckets, attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from helpers.inprocess import connected, make_server
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing.metrics import BUCKETS, measured_session

CONVENTIONS_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300]


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], HistogramDataPoint, str]]]:
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], HistogramDataPoint, str]]] = {}
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:  # type: ignore[union-attr]
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), point, metric.unit))  # type: ignore[arg-type]
    return out


async def exchange(provider: TracerProvider, meters: MeterProvider) -> None:
    server = mcp_tracing.instrument_server(make_server(), tracer_provider=provider, meter_provider=meters)
    async with connected(server) as session:
        mcp_tracing.trace_session(session, tracer_provider=provider, meter_provider=meters)
        await session.initialize()
        await session.call_tool("echo", {"text": "a"})
        await session.call_tool("echo", {"text": "b"})
        await session.call_tool("save", {"record": "not a dict"})  # a tool error
        try:
            await session.get_prompt("no_such_prompt")
        except Exception:
            pass


def test_operation_and_session_histograms_follow_the_conventions(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = capture
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    anyio.run(exchange, provider, meters)
    found = points(reader)
    assert set(found) == {
        "mcp.client.operation.duration",
        "mcp.server.operation.duration",
        "mcp.server.session.duration",
    }
    assert list(BUCKETS) == CONVENTIONS_BUCKETS
    for name, rows in found.items():
        for _, point, unit in rows:
            assert unit == "s" and list(point.explicit_bounds) == CONVENTIONS_BUCKETS, name
    for side in ("client", "server"):
        rows = {frozenset(a.items()): p for a, p, _ in found[f"mcp.{side}.operation.duration"]}
        version = next(a for a, _, _ in found[f"mcp.{side}.operation.duration"] if a["mcp.method.name"] == "initialize")
        protocol = version.get("mcp.protocol.version")
        echo = {
            "mcp.method.name": "tools/call",
            "gen_ai.tool.name": "echo",
            "gen_ai.operation.name": "execute_tool",
            **({"mcp.protocol.version": protocol} if protocol else {}),
            # The in-memory server runs under a session span, as a stdio server does.
            **({"network.transport": "pipe"} if side == "server" else {}),
        }
        assert rows[frozenset(echo.items())].count == 2, (side, list(rows))
        failed_tool = {**echo, "gen_ai.tool.name": "save", "error.type": "tool_error"}
        assert rows[frozenset(failed_tool.items())].count == 1, (side, list(rows))
        prompt = [a for a, _, _ in found[f"mcp.{side}.operation.duration"] if a.get("gen_ai.prompt.name")]
        assert prompt and "error.type" in prompt[0], side  # a JSON-RPC code, or the type where it raised
        for attributes, _, _ in found[f"mcp.{side}.operation.duration"]:  # never ids, hashes, sizes
            assert not {"jsonrpc.request.id", "mcp_tracing.tool.args_hash", "mcp_tracing.tool.result_size"} & set(
                attributes
            )
    ((session_attributes, session_point, _),) = found["mcp.server.session.duration"]
    assert session_attributes == {"network.transport": "pipe"} and session_point.count == 1


def test_client_sessions_are_measured_from_open_to_close() -> None:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    info = TransportInfo("tcp", "127.0.0.1", 8000)
    with measured_session(info, meters):
        pass
    try:
        with measured_session(TransportInfo("pipe"), meters):
            raise OSError("spawn failed")
    except OSError:
        pass
    rows = sorted((sorted(a.items()), p.count) for a, p, _ in points(reader)["mcp.client.session.duration"])
    assert rows == [
        ([("error.type", "OSError"), ("network.transport", "pipe")], 1),
        (
            [
                ("network.protocol.name", "http"),
                ("network.transport", "tcp"),
                ("server.address", "127.0.0.1"),
                ("server.port", 8000),
            ],
            1,
        ),
    ]


def test_with_an_otlp_endpoint_configure_exports_the_histograms_there(
    otlp_receiver: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    from helpers.otlp import OtlpReceiver
    from helpers.processes import run_python
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    endpoint, _ = otlp_receiver
    done = run_python(["-m", "mcp_tracing.cli", "demo"], OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    assert done.returncode == 0, done.stderr
    names = set()
    for body in OtlpReceiver.metric_bodies:
        for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                names.update(metric.name for metric in scope_metrics.metrics)
    assert {
        "mcp.client.operation.duration",
        "mcp.server.operation.duration",
        "mcp.client.session.duration",
        "mcp.server.session.duration",
    } <= names

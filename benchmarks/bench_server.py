"""The server the benchmarks call: one ``echo`` tool, traced as ``BENCH_MODE`` says (mcp 1.x and 2.x).

* ``untraced``: no OpenTelemetry SDK at all (mcp 2.x's own spans are no-ops);
* ``sdk``: an SDK TracerProvider, so mcp 2.x's built-in ``OpenTelemetryMiddleware`` records its spans;
* ``traced``: the same provider, and ``mcp_tracing.instrument_server`` (metrics into an SDK MeterProvider);
* ``propagation``: as ``traced`` but with no MeterProvider; the client sends unsampled context, so nothing
  is recorded: context passes through, that is all;
* ``floor`` (mcp 2.x): the same provider and meters, and ``floor.py``'s middleware instead of the SDK's: the
  same spans and metrics as ``traced``, made with the OpenTelemetry SDK directly.

Spans are batched to an exporter that drops them: what is measured is making them, not shipping them.
``BENCH_TRANSPORT=http`` serves streamable HTTP on 127.0.0.1 (prints ``URL ...``), else stdio.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

MODE = os.environ.get("BENCH_MODE", "untraced")
HTTP = os.environ.get("BENCH_TRANSPORT") == "http"

if MODE != "untraced":
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    trace.set_tracer_provider(provider)
    if MODE != "propagation":
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))

try:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server: Any = MCPServer("bench")
    make_app = server.streamable_http_app
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x only

    server = FastMCP("bench")
    make_app = server.streamable_http_app

import mcp_tracing  # noqa: E402 - after the SDK, as an application would

if MODE in ("traced", "propagation"):
    mcp_tracing.instrument_server(server)
elif MODE == "floor":
    import floor  # benchmarks/, this script's directory
    from opentelemetry import metrics as otel_metrics, trace as otel_trace

    floor.install_server(server, otel_trace.get_tracer_provider(), otel_metrics.get_meter_provider())


@server.tool()
def echo(text: str) -> str:
    """Returns its argument: the call costs the protocol, nothing else."""
    return text


async def serve_http() -> None:
    import logging

    import uvicorn

    logging.getLogger("mcp").setLevel(logging.WARNING)
    app = make_app()
    if MODE in ("traced", "propagation"):
        app = mcp_tracing.TraceContextMiddleware(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"URL http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])


if __name__ == "__main__":
    if HTTP:
        asyncio.run(serve_http())
    else:
        import logging

        logging.disable(logging.INFO)  # mcp 1.x logs every request at INFO on stderr
        server.run()
        sys.exit(0)

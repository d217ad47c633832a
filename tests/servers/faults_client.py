"""Run by tests/test_faults.py in a subprocess: a traced client and server in one process (memory streams),
exporting over OTLP to wherever ``OTEL_EXPORTER_OTLP_ENDPOINT`` points (down, or a black hole).

Prints ``calls ok N`` once the calls are done, ``spans made N`` and the growth of the peak RSS; then exits,
which flushes and shuts the exporter down at exit.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import anyio
from opentelemetry import trace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.inprocess import connected, make_server

import mcp_tracing

CALLS = int(sys.argv[1])
SPANS = int(sys.argv[2])


async def main() -> None:
    mcp_tracing.configure("faults")
    server = mcp_tracing.instrument_server(make_server())
    async with connected(server) as session:
        mcp_tracing.trace_session(session)
        await session.initialize()
        for i in range(CALLS):
            result = await session.call_tool("echo", {"text": f"call {i}"})
            assert result.content[0].text == f"call {i}", result  # type: ignore[union-attr]
    print(f"calls ok {CALLS}", flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracer = trace.get_tracer("faults")
    for i in range(SPANS):  # far more than the export queue holds, with nowhere to send them
        with tracer.start_as_current_span("burst", attributes={"i": i, "payload": "x" * 2_000}):
            pass
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"spans made {SPANS}, peak RSS grew {grown_mb:.1f} MB", flush=True)


anyio.run(main)

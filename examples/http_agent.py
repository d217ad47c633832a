"""A scripted agent (no LLM) that calls a traced streamable-HTTP MCP server and prints one trace.

    python examples/http_agent.py

It starts ``http_server.py`` on 127.0.0.1 (a free port), asks it two questions over MCP, stops it, and
prints the tree: the agent's spans, and under each ``tools/call`` the server's HTTP span and MCP span.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
from _setup import SPANS_FILE_ENV, print_trace, setup_tracing
from mcp import ClientSession
from opentelemetry import trace

import mcp_tracing

HERE = Path(__file__).resolve().parent


async def run_agent(url: str) -> str:
    tracer = trace.get_tracer("examples.agent")
    with tracer.start_as_current_span("agent.session") as session_span:
        async with mcp_tracing.streamable_http_client(url) as (read, write, *_):
            async with ClientSession(read, write) as session:
                mcp_tracing.trace_session(session)
                await session.initialize()
                with tracer.start_as_current_span("agent.turn", attributes={"turn_number": 1}):
                    await session.call_tool("query", {"sql": "SELECT count(*) FROM orders"})
                    await session.call_tool("query", {"sql": "SELECT customer FROM orders WHERE total > 10"})
    return format(session_span.get_span_context().trace_id, "032x")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        spans_file = Path(tmp) / "spans.jsonl"
        os.environ[SPANS_FILE_ENV] = str(spans_file)
        provider = setup_tracing("agent")
        server = subprocess.Popen(
            [sys.executable, str(HERE / "http_server.py")], stdout=subprocess.PIPE, text=True, env=os.environ
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[1]
            trace_id = anyio.run(run_agent, url)
        finally:
            server.terminate()
            server.wait(timeout=20)
        provider.force_flush()
        print_trace(spans_file, trace_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

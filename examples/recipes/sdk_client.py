"""Recipe: mcp 2.x's own ``Client``, traced, against a stdio server it spawns and an HTTP server (README, Recipes).

    python sdk_client.py SERVER_SCRIPT URL

Spans go where ``configure()`` sends them (the local store by default, ``$MCP_TRACING_STORE``); so do the
spawned server's, whatever the SDK passes a child.
"""

from __future__ import annotations

import sys

import anyio
from mcp import Client, StdioServerParameters
from opentelemetry import trace

import mcp_tracing

mcp_tracing.configure("agent")
tracer = trace.get_tracer("agent")


async def main(server_script: str, url: str) -> None:
    with tracer.start_as_current_span("agent.request"):
        params = StdioServerParameters(command=sys.executable, args=[server_script])
        async with mcp_tracing.trace_session(Client(params)) as client:  # spawns carrying the context
            await client.call_tool("work", {"n": 1})
        async with mcp_tracing.trace_session(Client(url)) as client:  # a traceparent on every request
            await client.call_tool("work", {"n": 2})


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])

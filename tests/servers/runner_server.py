"""An MCP server on the SDK's own runner (mcp 2.x ``MCPServer.run``, mcp 1.x ``FastMCP.run``), with nothing of
mcp_tracing but ``configure()`` and ``instrument_server()``: no middleware, no shutdown code of its own.

    python runner_server.py streamable-http|sse PORT
    python runner_server.py [stdio]
"""

from __future__ import annotations

import sys
from typing import Any

from opentelemetry import trace

import mcp_tracing

transport = sys.argv[1] if len(sys.argv) > 1 else "stdio"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
mcp_tracing.configure("runner-server")
tracer = trace.get_tracer("tests.runner")

try:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server: Any = MCPServer("runner")

    def run() -> None:
        if transport == "stdio":
            server.run()
        else:
            server.run(transport=transport, host="127.0.0.1", port=port)

except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x only

    server = FastMCP("runner", host="127.0.0.1", port=port)

    def run() -> None:
        server.run(transport)


mcp_tracing.instrument_server(server)


@server.tool()
def work(n: int) -> int:
    """Doubles ``n`` inside a span of its own."""
    with tracer.start_as_current_span("runner.work"):
        return n * 2


run()

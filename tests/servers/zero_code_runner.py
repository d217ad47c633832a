"""An MCP server with no tracing code at all, on the SDK's own streamable-HTTP runner, for
``opentelemetry-instrument`` (mcp 2.x ``MCPServer.run``, mcp 1.x ``FastMCP.run``).

    opentelemetry-instrument python zero_code_runner.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

port = int(sys.argv[1])
try:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server: Any = MCPServer("zero-code")

    def run() -> None:
        server.run(transport="streamable-http", host="127.0.0.1", port=port)

except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x only

    server = FastMCP("zero-code", host="127.0.0.1", port=port)

    def run() -> None:
        server.run("streamable-http")


@server.tool()
def work(n: int) -> int:
    """Doubles ``n``."""
    return n * 2


run()

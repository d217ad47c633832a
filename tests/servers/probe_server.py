"""A stdio MCP server for the tests (mcp 1.x and 2.x): reports what it received, fails on demand.

``PROBE_TRACED=0`` runs it without mcp_tracing, to compare what a client receives with and without it.
Spans go to ``$MCP_TRACING_EXAMPLE_SPANS`` (see examples/_setup.py).
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from _probe_tools import add_probe_tools
from _setup import setup_tracing

import mcp_tracing

try:
    from mcp.server.mcpserver import MCPServer as McpServer  # mcp 2.x
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as McpServer  # type: ignore[no-redef]

provider = setup_tracing("probe-server")
server = McpServer("probe")
if os.environ.get("PROBE_TRACED", "1") == "1":
    mcp_tracing.instrument_server(server)

add_probe_tools(server)
REPORTED_PREFIXES = ("OTEL_", "MCP_TRACING_", "TRACE", "BAGGAGE", "CALLER_")


@server.tool()
def boom(secret: str) -> str:
    """Raises: the SDK turns this into an ``isError`` result."""
    raise ValueError(f"boom with {secret}")


@server.tool()
def crash(code: int) -> str:
    """Dies in the middle of the call, unanswered (the fault suite's crashing server)."""
    sys.stdout.flush()
    os._exit(code)


@server.tool()
def env_report() -> dict[str, object]:
    """The environment this process was spawned with (the parts the tests care about)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(REPORTED_PREFIXES)}
    return {
        "env": env,
        "has_path": "PATH" in os.environ,
        "service_name": provider.resource.attributes.get("service.name"),
        "python": sys.executable,
        "mcp_version": importlib.metadata.version("mcp"),
    }


if __name__ == "__main__":
    if os.environ.get("PROBE_SIGTERM_EXIT"):  # an application with a SIGTERM handler of its own
        import signal

        signal.signal(signal.SIGTERM, lambda *_: os._exit(int(os.environ["PROBE_SIGTERM_EXIT"])))
    server.run()

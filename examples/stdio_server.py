"""A filesystem-style MCP server over stdio, traced with mcp_tracing (runs on mcp 1.x and 2.x).

Its spans land under the calling agent's ``tools/call`` span: context arrives in ``params._meta`` for
each request, and in ``TRACEPARENT`` for the process as a whole.

Run by ``stdio_agent.py``; by hand: ``python examples/stdio_server.py`` (speaks MCP on stdin/stdout).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from _setup import setup_tracing
from opentelemetry import trace

import mcp_tracing

try:
    from mcp.server.mcpserver import MCPServer as McpServer  # mcp 2.x
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP as McpServer  # type: ignore[no-redef]

setup_tracing("files-server")
logging.getLogger("mcp").setLevel(logging.WARNING)  # mcp 1.x logs every request at INFO
ROOT = Path(os.environ.get("FILES_ROOT", ".")).resolve()
tracer = trace.get_tracer("examples.files")

server = McpServer("files")
mcp_tracing.instrument_server(server)


def _inside_root(path: str) -> Path:
    target = (ROOT / path).resolve()
    if ROOT not in target.parents and target != ROOT:
        raise ValueError("path outside the served directory")
    return target


@server.tool()
def read_file(path: str) -> str:
    """Returns the text of a file under the served directory."""
    with tracer.start_as_current_span("fs.read") as span:
        text = _inside_root(path).read_text()
        span.set_attribute("fs.bytes", len(text.encode()))
        return text


@server.tool()
def search(word: str) -> list[str]:
    """Lists the files under the served directory whose text contains ``word``."""
    with tracer.start_as_current_span("fs.scan") as span:
        hits = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and word in p.read_text())
        span.set_attribute("fs.hits", len(hits))
        return hits


if __name__ == "__main__":
    server.run()

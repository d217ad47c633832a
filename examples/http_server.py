"""A SQL-style MCP server over streamable HTTP, traced with mcp_tracing (runs on mcp 1.x and 2.x).

Serves a real SQLite database read-only on 127.0.0.1. Prints ``URL <endpoint>`` once it listens.

    python examples/http_server.py [--stateless] [--json]

Each POST gets an HTTP SERVER span (``TraceContextMiddleware``, from the ``traceparent`` header); each MCP
message a SERVER span under the client's span (from ``_meta``), linked to that HTTP span.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from _setup import setup_tracing
from opentelemetry import trace

import mcp_tracing

STATELESS = "--stateless" in sys.argv
JSON_RESPONSE = "--json" in sys.argv

setup_tracing("sql-server")
logging.getLogger("mcp").setLevel(logging.WARNING)  # the SDK logs every session at INFO
tracer = trace.get_tracer("examples.sql")

try:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server: Any = MCPServer("sql")
    make_app = lambda: server.streamable_http_app(stateless_http=STATELESS, json_response=JSON_RESPONSE)  # noqa: E731
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x only

    server = FastMCP("sql", stateless_http=STATELESS, json_response=JSON_RESPONSE)
    make_app = server.streamable_http_app

mcp_tracing.instrument_server(server)
DB = Path(os.environ.get("SQL_DB") or Path(tempfile.mkdtemp()) / "shop.db")


def _create(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL);
            DELETE FROM orders;
            INSERT INTO orders (customer, total) VALUES ('ada', 12.5), ('alan', 99.0), ('grace', 7.25);
            """
        )


@server.tool()
def query(sql: str) -> list[list[Any]]:
    """Runs one read-only SQL statement and returns its rows."""
    with tracer.start_as_current_span("db.query", attributes={"db.system.name": "sqlite"}) as span:
        with sqlite3.connect(f"file:{DB}?mode=ro", uri=True) as db:
            rows = [list(row) for row in db.execute(sql).fetchall()]
        span.set_attribute("db.response.returned_rows", len(rows))
        return rows


async def main() -> None:
    _create(DB)
    app = mcp_tracing.TraceContextMiddleware(make_app())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", int(os.environ.get("PORT", "0"))))
    sock.listen(128)
    print(f"URL http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())

"""An MCP server mounted at ``/billing`` in a FastAPI app (with FastAPI's own telemetry) beside a REST route,
served by uvicorn on 127.0.0.1. Prints ``PORT <n>`` once listening. Spans go to ``$MCP_TRACING_STORE``.

``BILLING_WRAP=1`` also wraps the mounted app in ``TraceContextMiddleware`` by hand, as the README showed before
``instrument_server`` did it itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from opentelemetry import trace

import mcp_tracing

mcp_tracing.configure("billing")
server = MCPServer("billing")
mcp_tracing.instrument_server(server)


@server.tool()
def work(n: int) -> int:
    """Doubles ``n`` inside a span of its own."""
    with trace.get_tracer("tests.billing").start_as_current_span("billing.work"):
        return n * 2


mcp_app: Any = server.streamable_http_app()
if os.environ.get("BILLING_WRAP") == "1":
    mcp_app = mcp_tracing.TraceContextMiddleware(mcp_app)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with server.session_manager.run():  # a mounted app's own lifespan never runs
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
def health() -> dict[str, bool]:
    return {"ok": True}


app.mount("/billing", mcp_app)


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())

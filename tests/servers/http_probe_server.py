"""A streamable-HTTP MCP server for the tests (mcp 1.x and 2.x), served by uvicorn on 127.0.0.1.

Binds a free port itself and prints ``PORT <n>`` before serving (the socket already listens, so a client
may connect at once). Settings come from the environment:

* ``PROBE_STATELESS``/``PROBE_JSON``: ``1`` for stateless sessions / JSON responses instead of SSE;
* ``PROBE_TRACED``: ``0`` serves without mcp_tracing (the baseline the tests compare against);
* ``PROBE_POLICY``: the trust policy (``default``, ``gateway``, ``untrusted``);
* ``PROBE_MIDDLEWARE_POLICY``: the HTTP middleware's, when it differs from the server's;
* ``PROBE_REQUESTS``: a JSON-lines file where every HTTP request's method, trace headers and JSON body
  are recorded, as the server received them (outermost, before mcp_tracing sees them).

Spans go to ``$MCP_TRACING_EXAMPLE_SPANS`` (see examples/_setup.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

import uvicorn
from _probe_tools import add_probe_tools
from _setup import setup_tracing

import mcp_tracing

stateless = os.environ.get("PROBE_STATELESS") == "1"
json_response = os.environ.get("PROBE_JSON") == "1"
traced = os.environ.get("PROBE_TRACED", "1") == "1"
policy: Any = os.environ.get("PROBE_POLICY", "default")

try:
    from mcp.server.mcpserver import MCPServer  # mcp 2.x

    server: Any = MCPServer("http-probe")
    make_app = lambda: server.streamable_http_app(stateless_http=stateless, json_response=json_response)  # noqa: E731
except ImportError:  # mcp 1.x
    from mcp.server.fastmcp import FastMCP  # pyright: ignore[reportAttributeAccessIssue]  # mcp 1.x only

    server = FastMCP("http-probe", stateless_http=stateless, json_response=json_response)
    make_app = server.streamable_http_app

setup_tracing("http-probe")


add_probe_tools(server)


RECORDED = ("traceparent", "tracestate", "baggage", "mcp-session-id")


def recorder(app: Any, path: str) -> Any:
    async def record(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k.decode() in RECORDED]
        body = bytearray()

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        parsed = json.loads(body) if body else None
                    except ValueError:
                        parsed = None
                    line = json.dumps({"method": scope["method"], "headers": headers, "body": parsed})
                    with open(path, "a") as file:
                        file.write(line + "\n")
            return message

        if scope["method"] != "POST":
            with open(path, "a") as file:
                file.write(json.dumps({"method": scope["method"], "headers": headers, "body": None}) + "\n")
            await app(scope, receive, send)
            return
        await app(scope, recording_receive, send)

    return record


def build() -> Any:
    if traced:
        mcp_tracing.instrument_server(server, policy=policy)
    app = make_app()
    if traced:
        app = mcp_tracing.TraceContextMiddleware(
            app, policy=cast(Any, os.environ.get("PROBE_MIDDLEWARE_POLICY") or policy)
        )
    requests = os.environ.get("PROBE_REQUESTS")
    return recorder(app, requests) if requests else app


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(build(), log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())

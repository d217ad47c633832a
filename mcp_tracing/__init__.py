"""OpenTelemetry tracing for MCP clients and servers, over stdio and streamable HTTP.

One trace from the agent's ``tools/call`` span into the server's own spans, across the process
boundary: context travels in ``params._meta`` (SEP-414) and, for spawned stdio servers, in the child's
environment (``TRACEPARENT``).

Usage::

    import mcp_tracing

    # agent
    async with mcp_tracing.stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)
            ...

    # server
    mcp_tracing.instrument_server(server)
"""

from __future__ import annotations

from mcp_tracing import agent
from mcp_tracing._sdk.adapter import register as _register_sdk_adapter
from mcp_tracing._version import __version__
from mcp_tracing.asgi import TraceContextMiddleware
from mcp_tracing.client import trace_session
from mcp_tracing.config import configure
from mcp_tracing.http import instrument_http_client, streamable_http_client
from mcp_tracing.instrumentor import McpInstrumentor
from mcp_tracing.server import TracingServerMiddleware, instrument_server
from mcp_tracing.stdio import stdio_client

__all__ = [
    "McpInstrumentor",
    "TraceContextMiddleware",
    "TracingServerMiddleware",
    "__version__",
    "agent",
    "configure",
    "instrument_http_client",
    "instrument_server",
    "stdio_client",
    "streamable_http_client",
    "trace_session",
]

_register_sdk_adapter()  # the core reaches the SDK only through the adapter registered here (see _core/registry.py)

"""What both SDK lines' adapters share: a server's outbound tracer per connection, the HTTP-session test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.client_tracer import ClientTracer
from mcp_tracing._core.shutdown import serving_http
from mcp_tracing._core.transport import TransportInfo

__all__ = ["OUTBOUND", "connection_tracer", "is_http_session"]

OUTBOUND: Final = "_mcp_tracing_outbound_"
"""Marks a connection (1.x session, 2.x dispatcher) whose outbound messages are traced already."""


def connection_tracer(tracer: ClientTracer, peer: Callable[[], tuple[object, object]], *, http: bool) -> ClientTracer:
    """The server's outbound tracer for one connection: its protocol version and transport."""
    transport = TransportInfo(attr.TRANSPORT_TCP) if http else tracer.transport
    return tracer.for_connection(peer, transport)


def is_http_session(run_kwargs: Mapping[str, Any]) -> bool:
    # mcp 1.x's streamable-HTTP session manager also serves each HTTP session through ``run`` and is the only
    # caller that passes ``stateless``; SSE connections (both lines) come through ``run`` too, while uvicorn
    # serves. Neither is the process's (stdio) session.
    return "stateless" in run_kwargs or serving_http()

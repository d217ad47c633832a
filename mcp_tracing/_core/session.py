"""The server process's ``mcp.server.session`` span: opened under the spawner's ``TRACEPARENT`` when a server
starts serving, ended (and flushed, bounded) when its input ends or SIGTERM arrives."""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, TracerProvider

from mcp_tracing._core import attributes as attr, shutdown as _shutdown
from mcp_tracing.propagation import extract_env

__all__ = ["end_session_span", "start_session_span"]


_open_sessions: list[tuple[Span, TracerProvider | None]] = []
_lock = threading.Lock()


def start_session_span(tracer: trace.Tracer, tracer_provider: TracerProvider | None) -> Span:
    """Opens the process's ``mcp.server.session`` span under the spawner's ``TRACEPARENT`` (or ambient); it
    ends at SIGTERM too, and the spans are flushed then."""
    span = tracer.start_span(attr.SERVER_SESSION_SPAN, context=extract_env(), kind=SpanKind.INTERNAL)
    with _lock:
        _open_sessions.append((span, tracer_provider))
    _shutdown.before_sigterm(_end_open_sessions)  # instrument_server registered the provider's flush
    return span


def end_session_span(span: Span, tracer_provider: TracerProvider | None, *, flush: bool = True) -> None:
    """Ends a session span and flushes (bounded: ``MCP_TRACING_SHUTDOWN_TIMEOUT``), so the spans of a finished
    server are exported before the spawner's grace runs out and it is terminated."""
    with _lock:
        if (span, tracer_provider) not in _open_sessions:
            return
        _open_sessions.remove((span, tracer_provider))
    span.end()
    if flush:
        _shutdown.flush(tracer_provider)


def _end_open_sessions() -> None:
    with _lock:
        pending = list(_open_sessions)
    for span, provider in pending:
        end_session_span(span, provider, flush=False)  # SIGTERM flushes once, after

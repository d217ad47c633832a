"""Server side: one SERVER span per inbound MCP request and notification, under the caller's span.

Usage::

    from mcp.server.mcpserver import MCPServer        # mcp 2.x (FastMCP on mcp 1.x)
    import mcp_tracing

    server = MCPServer("files")
    mcp_tracing.instrument_server(server)

    @server.tool()
    def read_file(path: str) -> str: ...             # spans opened here nest under "tools/call read_file"

The parent of each server span is chosen in this order:

1. the context in the message's ``params._meta`` (SEP-414), attached whole so its baggage is visible;
2. otherwise the process's session span (``mcp.server.session``), itself a child of the spawner's
   ``TRACEPARENT`` for a stdio server;
3. otherwise the ambient context, which for a fresh process means a new root.

Malformed carriers count as absent and never raise. On mcp 2.x the SDK's ``OpenTelemetryMiddleware`` is
replaced in place (never two SERVER spans); on mcp 1.x, which has no tracing, requests are wrapped
where the SDK dispatches them.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Span, SpanKind, TracerProvider

from . import _attributes as attr
from . import _spans
from ._version import __version__
from .propagation import extract_meta

__all__ = ["TracingServerMiddleware", "instrument_server"]

_logger = logging.getLogger(__name__)


@dataclass
class ServerTracer:
    """Span logic for every inbound message of one server, and its open session spans."""

    tracer: trace.Tracer
    tracer_provider: TracerProvider | None
    server_name: str | None = None
    session_spans: list[Span] = field(default_factory=lambda: [])

    def parent(self, meta: object) -> Context | None:
        """The context a server span starts in (see the module docstring); ``None`` means ambient."""
        extracted = extract_meta(meta)
        if extracted is not None:
            return extracted
        if self.session_spans:
            return trace.set_span_in_context(self.session_spans[-1])
        return None

    @contextmanager
    def span(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        meta: object,
        *,
        request_id: object = None,
        protocol_version: str | None = None,
        transport: str | None = None,
        start_time: int | None = None,
    ) -> Generator[Span | None, None, None]:
        """Opens the SERVER span of one message and makes it current; yields ``None`` if tracing is off."""
        if not is_instrumentation_enabled():
            yield None
            return
        try:
            parent = self.parent(meta)
            if transport is None and self.session_spans:
                transport = attr.TRANSPORT_PIPE
            span = self.tracer.start_span(
                _spans.span_name(method, params),
                context=parent,
                kind=SpanKind.SERVER,
                attributes=_spans.message_attributes(
                    method,
                    params,
                    request_id=request_id,
                    protocol_version=protocol_version,
                    transport=transport,
                    server_name=self.server_name,
                ),
                start_time=start_time,
            )
            _spans.record_arguments(span, method, params)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
        except Exception:
            _logger.exception("mcp_tracing could not start a server span; handling the message untraced")
            yield None
            return
        try:
            yield span
        except BaseException as exc:
            _safely(_spans.record_exception, span, method, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def record(self, span: Span | None, method: str, result: object = None, *, error_code: object = None) -> None:
        """Records the response sent for a message: its result, or the code of its JSON-RPC error."""
        if span is None:
            return
        if error_code is not None:
            _safely(_spans.record_error_code, span, method, error_code)
        else:
            _safely(_spans.record_result, span, method, result)


def _safely(record: Any, *args: Any) -> None:
    try:
        record(*args)
    except Exception:
        _logger.exception("mcp_tracing could not record a span outcome")


class TracingServerMiddleware:
    """mcp 2.x ``ServerMiddleware`` that opens the SERVER span of every inbound message.

    ``instrument_server`` puts it where the SDK's ``OpenTelemetryMiddleware`` was; add it yourself only
    if you build the middleware list by hand, and then remove the SDK's.
    """

    def __init__(self, tracer: ServerTracer) -> None:
        self._tracer = tracer

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        method: str = ctx.method
        with self._tracer.span(
            method,
            ctx.params,
            ctx.meta,
            request_id=ctx.request_id,
            protocol_version=ctx.protocol_version,
        ) as span:
            if span is None:
                return await call_next(ctx)
            result = await call_next(ctx)
            self._tracer.record(span, method, result)
            return result


_S = TypeVar("_S")


def instrument_server(server: _S, *, tracer_provider: TracerProvider | None = None) -> _S:
    """Traces every message a server receives, and returns the same server.

    Args:
        server: a low-level ``mcp.server.lowlevel.Server`` (mcp 1.x or 2.x), an mcp 1.x ``FastMCP`` or an
            mcp 2.x ``MCPServer``. Instrumenting it twice logs a warning and changes nothing.
        tracer_provider: where spans go; the global provider when omitted.

    Returns:
        ``server`` itself.

    Raises:
        TypeError: ``server`` is not an MCP server this version of mcp_tracing knows.
    """
    from . import _compat

    tracer = ServerTracer(
        trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider),
        tracer_provider,
    )
    _compat.install_server(server, tracer)
    return server

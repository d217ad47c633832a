"""Client side of streamable HTTP: a ``traceparent`` header on every request the client sends.

Client. Every HTTP request carries the context of the MCP message it carries: a POST carrying a request
carries that request's CLIENT span (the same span as its ``params._meta``); the standalone GET stream, the
DELETE and POSTs carrying responses carry the session's context. mcp 2.x hands the caller's context to its
HTTP tasks; mcp 1.x sends from a task started at connect time, so there the context is read back from the
body's ``_meta``. ::

    async with mcp_tracing.streamable_http_client("http://127.0.0.1:8000/mcp") as (read, write, *_):
        async with ClientSession(read, write) as session:
            mcp_tracing.trace_session(session)

or, with an HTTP client of your own (``httpx2.AsyncClient`` on mcp 2.x, ``httpx.AsyncClient`` on 1.x)::

    client = mcp_tracing.instrument_http_client(httpx2.AsyncClient(headers=...))

With ``http_spans=True`` the OpenTelemetry httpx instrumentation adds an HTTP CLIENT span per request, a
child of the MCP span (on 1.x too), and the header then carries that HTTP span.

The server side (``TraceContextMiddleware``, the trust policies) is ``mcp_tracing.asgi``; its names are still
importable from here."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import TracerProvider

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.bounds import bounded
from mcp_tracing._core.registry import adapter, registered_transport, sdk_original
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing.asgi import (  # the server side, importable from here as before
    POLICIES as POLICIES,
    SCOPE_KEY as SCOPE_KEY,
    HttpRequestInfo as HttpRequestInfo,
    Policy as Policy,
    TraceContextMiddleware as TraceContextMiddleware,
    full_route as full_route,
    request_info as request_info,
)
from mcp_tracing.metrics import measured_session
from mcp_tracing.propagation import extract_meta, inject_headers

__all__ = ["instrument_http_client", "streamable_http_client"]

_logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------- client


class _TracingTransport:
    """Wraps an httpx/httpx2 async transport: context attached and injected for each HTTP request."""

    def __init__(
        self, inner: Any, state: TransportInfo, *, read_body: bool, session_context: Context, switch: Switch
    ) -> None:
        self._inner = inner
        self._state = state
        self._read_body = read_body
        self._session_context = session_context
        self._switch = switch

    async def handle_async_request(self, request: Any) -> Any:
        if not self._switch.http_active():
            return await self._inner.handle_async_request(request)
        token = None
        try:
            ctx = self._context_for(request)
            token = otel_context.attach(ctx)
            inject_headers(request.headers, context=ctx)
        except Exception:
            _logger.exception("mcp_tracing could not add trace context to an HTTP request")
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            if token is not None:
                otel_context.detach(token)
        session_id = response.headers.get("mcp-session-id")
        if session_id:
            self._state.session_id = bounded(session_id)
        return response

    def _context_for(self, request: Any) -> Context:
        # The standalone GET stream and the DELETE belong to the session, not to the message whose sending
        # happened to open them.
        if request.method != "POST":
            return self._session_context
        # mcp 1.x: the POST runs in the transport's own task, whose context is the connect-time one; the
        # message's own context is in its _meta. The substring test keeps large bodies unparsed.
        if self._read_body:
            content: bytes = request.content
            if b'"_meta"' in content:
                ctx = _meta_context(content)
                if ctx is not None:
                    return ctx
        return otel_context.get_current()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> _TracingTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _meta_context(content: bytes) -> Context | None:
    try:
        message: object = json.loads(content)
    except ValueError:
        return None
    if not isinstance(message, dict):  # a batch carries several contexts: leave it to the current one
        return None
    params = cast(dict[str, object], message).get("params")
    return extract_meta(cast(dict[str, object], params).get("_meta")) if isinstance(params, dict) else None


def instrument_http_client(
    client: Any,
    *,
    http_spans: bool = False,
    tracer_provider: TracerProvider | None = None,
    _state: TransportInfo | None = None,
    _switch: Switch = ALWAYS_ON,
) -> Any:
    """Makes an ``httpx2.AsyncClient`` (mcp 2.x) or ``httpx.AsyncClient`` (mcp 1.x) carry MCP trace context.

    Args:
        client: the client to pass as ``http_client`` to the SDK's ``streamable_http_client``; modified in
            place (its transports are wrapped) and returned. A second call logs a warning and does nothing.
        http_spans: also record an HTTP CLIENT span per request with OpenTelemetry's httpx instrumentation
            (``HTTPX2ClientInstrumentor``/``HTTPXClientInstrumentor``), each a child of the MCP span.
        tracer_provider: for the HTTP spans; the global provider when omitted.

    Returns:
        ``client``. Its GET and DELETE requests carry the context current at this call (the session's).
    """
    if getattr(client, "_mcp_tracing_http", None) is not None:
        _logger.warning("mcp_tracing: this HTTP client is already instrumented; leaving it as it is")
        return client
    if http_spans:
        adapter().httpx_instrumentor().instrument_client(client, tracer_provider=tracer_provider)
    state = _state or TransportInfo(attr.TRANSPORT_TCP)
    session = otel_context.get_current()

    def wrap(transport: Any) -> _TracingTransport:
        return _TracingTransport(
            transport, state, read_body=adapter().http_reads_body, session_context=session, switch=_switch
        )

    client._transport = wrap(client._transport)
    mounts: dict[Any, Any] = client._mounts
    for pattern, transport in list(mounts.items()):
        if transport is not None:
            mounts[pattern] = wrap(transport)
    client._mcp_tracing_http = state
    return client


@asynccontextmanager
async def streamable_http_client(
    url: str,
    *,
    http_client: Any = None,
    server_name: str | None = None,
    http_spans: bool = False,
    tracer_provider: TracerProvider | None = None,
    _switch: Switch = ALWAYS_ON,
    **kwargs: Any,
) -> AsyncGenerator[Any, None]:
    """Drop-in for the SDK's ``streamable_http_client``: the same streams, trace context in every header.

    Args:
        url: the MCP endpoint.
        http_client: your own client (``httpx2.AsyncClient`` on mcp 2.x, ``httpx.AsyncClient`` on 1.x), which
            is instrumented in place and left open; by default the SDK's own default client, closed on exit.
        server_name: the ``mcp_tracing.server.name`` of sessions on this transport (by default the name the
            server gives in ``initialize``); ``trace_session(server_name=)`` wins over it.
        http_spans: see ``instrument_http_client``.
        tracer_provider: for the HTTP spans; the global provider when omitted.
        **kwargs: passed to the SDK's ``streamable_http_client`` (``terminate_on_close``, ...).

    Yields:
        Exactly what the SDK yields (``(read, write)`` on mcp 2.x, ``(read, write, get_session_id)`` on 1.x).
        Sessions built on these streams and passed to ``trace_session`` record ``server.address``,
        ``server.port``, ``network.transport=tcp`` and ``mcp.session.id``.
    """
    sdk_client = sdk_original("mcp.client.streamable_http", "streamable_http_client")
    create_mcp_http_client = sdk_original("mcp.shared._httpx_utils", "create_mcp_http_client")
    state = TransportInfo.for_url(url, server_name=server_name)
    owned = http_client is None
    client = create_mcp_http_client() if owned else http_client
    instrument_http_client(
        client, http_spans=http_spans, tracer_provider=tracer_provider, _state=state, _switch=_switch
    )
    try:
        with measured_session(state):
            async with sdk_client(url, http_client=client, **kwargs) as streams:
                with registered_transport(streams, state):
                    yield streams
    finally:
        if owned:
            await client.aclose()

"""The adapter for mcp 2.x: the only module that imports mcp 2.x's own modules (type-checked against it).

Client: the session's dispatcher (``send_raw_request``/``notify``) carries every outbound message; the
SDK's ``MCP send`` CLIENT span is replaced by ours through the gate on ``otel_span`` (``wrapt``, undone by
``unwrap`` when nothing holds it). Server: a ``ServerMiddleware`` in place of the SDK's
``OpenTelemetryMiddleware``, never beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import wrapt
from mcp.client import client as sdk_client
from mcp.client.client import Client
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.lowlevel import Server
from mcp.shared import jsonrpc_dispatcher
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.client_tracer import ACTIVE_CLIENT_SPAN, ClientTracer
from mcp_tracing._core.logs import MCP_LOG
from mcp_tracing._core.registry import transport_of
from mcp_tracing._core.server_tracer import ServerTracer, TracingServerMiddleware, http_info
from mcp_tracing._core.shared_patch import SharedPatch
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing._sdk.common import OUTBOUND, connection_tracer

__all__ = [
    "httpx_instrumentor",
    "hold_sdk_client_span_gate",
    "install_client",
    "install_server",
    "run_server",
]

_logger = logging.getLogger(__name__)


def httpx_instrumentor() -> Any:
    """OpenTelemetry's instrumentor of the HTTP client library mcp 2.x uses."""
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

    return HTTPX2ClientInstrumentor


def install_client(session: object, tracer: ClientTracer) -> None:
    """Traces a 2.x ``Client`` (entered or not) or ``ClientSession``."""
    if isinstance(session, Client):
        _install_v2_client(session, tracer)
    elif isinstance(session, ClientSession):
        _install_v2_session(session, tracer)
    else:
        raise TypeError(
            f"trace_session() takes an mcp ClientSession or Client, or a fastmcp Client, not {type(session).__name__}"
        )


async def run_server(
    run: Callable[..., Any], tracer: ServerTracer, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Runs the server's ``run`` as it is: in 2.x every message reaches the middleware."""
    del tracer
    return await run(*args, **kwargs)


def _install_v2_client(client: Client, tracer: ClientTracer) -> None:
    current = getattr(client, "_session", None)
    if current is not None:
        _install_v2_session(current, tracer)
        return
    _use_our_transports(client)
    build = client._build_session

    async def _build_session(exit_stack: Any) -> Any:
        session = await build(exit_stack)
        _install_v2_session(session, tracer)
        return session

    client._build_session = _build_session


def _use_our_transports(client: Client) -> None:
    """A 2.x ``Client`` given ``StdioServerParameters`` or a URL, not yet entered, spawns or connects through
    mcp_tracing's drop-ins: the child gets the trace context and this process's telemetry settings (its store,
    its exporter), and every HTTP request a ``traceparent`` header. The SDK builds its own transport when the
    ``Client`` is made (``_connect``, private): it is replaced, unentered. Anything else is left as it is."""
    from mcp_tracing.http import streamable_http_client
    from mcp_tracing.stdio import stdio_client

    connect_transport = getattr(sdk_client, "_connect_transport", None)
    server = getattr(client, "server", None)
    if connect_transport is None or not hasattr(client, "_connect"):
        _logger.debug("mcp_tracing: this mcp Client builds its transport differently; its spawns are not traced")
        return
    if isinstance(server, StdioServerParameters):
        client._connect = connect_transport(stdio_client(server))
    elif isinstance(server, str):
        client._connect = connect_transport(streamable_http_client(server))


def _install_v2_session(session: ClientSession, tracer: ClientTracer) -> None:
    _gate_for(tracer.switch)
    dispatcher = session._dispatcher

    def peer() -> tuple[object, object]:
        # The session's public properties, read at each message: they are set at the handshake.
        return getattr(session.server_info, "name", None), session.protocol_version

    tracer.peer = peer
    tracer.use_transport(transport_of(getattr(dispatcher, "_write_stream", None)))
    _trace_v2_outbound(dispatcher, tracer)
    if tracer.inbound is not None:
        _trace_v2_inbound(dispatcher, tracer.inbound)


def _trace_v2_outbound(channel: Any, tracer: ClientTracer) -> None:
    """Wraps a 2.x dispatcher's (or back-channel's) ``send_raw_request``/``notify``: every message it sends."""
    send_raw_request = channel.send_raw_request
    notify = channel.notify
    # The JSON-RPC dispatcher injects the current context into every request's _meta (SEP-414), a
    # request-scoped back-channel through it too: ours would be written twice. Other dispatchers do not.
    dispatcher = getattr(channel, "_dispatcher", channel)
    tracer.sdk_injects = isinstance(dispatcher, jsonrpc_dispatcher.JSONRPCDispatcher)

    async def traced_send_raw_request(
        method: str, params: Mapping[str, Any] | None, opts: Any = None, **kwargs: Any
    ) -> Any:
        async def send(new_params: Mapping[str, Any] | None, span: Span | None) -> Any:
            return await send_raw_request(method, new_params, _v2_with_progress(opts, tracer, span), **kwargs)

        return await tracer.request(method, params, send)

    async def traced_notify(method: str, params: Mapping[str, Any] | None, opts: Any = None, **kwargs: Any) -> None:
        async def send(new_params: Mapping[str, Any] | None, span: Span | None) -> None:
            await notify(method, new_params, opts, **kwargs)

        await tracer.notify(method, params, send)

    channel.send_raw_request = traced_send_raw_request
    channel.notify = traced_notify


def _v2_with_progress(opts: object, tracer: ClientTracer, span: Span | None) -> object:
    options = cast(Mapping[str, Any], opts) if isinstance(opts, Mapping) else None
    on_progress = options.get("on_progress") if options is not None else None
    if options is None or on_progress is None or span is None:
        return cast(object, opts)
    return {**options, "on_progress": tracer.progress_callback(span, on_progress)}


def _meta_of(params: Mapping[str, Any] | None) -> object:
    return params.get("_meta") if isinstance(params, Mapping) else None


def _trace_v2_inbound(dispatcher: Any, tracer: ServerTracer) -> None:
    """A SERVER span for each request and notification the peer sends on a 2.x dispatcher.

    The session's handlers were bound when the dispatcher started (``__aenter__``), so they are wrapped
    where the JSON-RPC dispatcher hands each message to them (``_handle_request``, ``_dispatch_notification``).
    The in-process dispatcher of ``Client(server)`` in its default (2026) mode has no server-to-client
    requests at all; its notifications reach the client's callbacks without a span.
    """

    def served(on_request: Callable[..., Any], request_id: object) -> Callable[..., Any]:
        async def traced_on_request(dctx: Any, method: str, params: Mapping[str, Any] | None) -> Any:
            with tracer.span(method, params, _meta_of(params), request_id=request_id) as span:
                result = await on_request(dctx, method, params)
                tracer.record(span, method, result, params=params)
                return result

        return traced_on_request

    def notified(on_notify: Callable[..., Any]) -> Callable[..., Any]:
        async def traced_on_notify(dctx: Any, method: str, params: Mapping[str, Any] | None) -> Any:
            if method == MCP_LOG:
                tracer.log_notification(params, _meta_of(params))
            with tracer.span(method, None, _meta_of(params)):
                return await on_notify(dctx, method, params)

        return traced_on_notify

    if not (hasattr(dispatcher, "_handle_request") and hasattr(dispatcher, "_dispatch_notification")):
        return
    handle_request = dispatcher._handle_request
    dispatch_notification = dispatcher._dispatch_notification

    async def traced_handle_request(req: Any, dctx: Any, scope: Any, on_request: Any, *args: Any, **kw: Any) -> Any:
        return await handle_request(req, dctx, scope, served(on_request, getattr(req, "id", None)), *args, **kw)

    def traced_dispatch_notification(msg: Any, metadata: Any, on_notify: Any, *args: Any, **kw: Any) -> Any:
        return dispatch_notification(msg, metadata, notified(on_notify), *args, **kw)

    dispatcher._handle_request = traced_handle_request
    dispatcher._dispatch_notification = traced_dispatch_notification


_gate: SharedPatch | None = None

_gate_held_by_hand = False


def hold_sdk_client_span_gate() -> Callable[[], None]:
    """Replaces mcp 2.x's ``MCP send`` span by ours, for traced sessions only; returns the call that lets go
    (the gate is removed when nothing holds it: ``McpInstrumentor().uninstrument()`` leaves the SDK as it was).

    The SDK imports ``otel_span`` into ``mcp.shared.jsonrpc_dispatcher`` and opens its CLIENT span with
    it around the ``_meta`` injection. When the current span is the one mcp_tracing opened for this
    message, the gate yields a non-recording view of it instead: no second span, and the SDK's
    ``inject`` writes our span's context into ``_meta``. The request id the SDK allocated is copied
    onto our span. Every other caller gets the SDK's span exactly as before.
    """
    global _gate
    if _gate is None:
        _gate = SharedPatch(
            lambda: wrapt.wrap_function_wrapper(jsonrpc_dispatcher, "otel_span", _gated_otel_span),
            lambda: unwrap(jsonrpc_dispatcher, "otel_span"),
        )
    return _gate.acquire()


def _gate_for(switch: Switch) -> None:
    """The gate for a session or server being traced: held for good when traced by hand (``trace_session``,
    ``instrument_server``: nothing ever undoes those), and held by the instrumentor itself otherwise."""
    global _gate_held_by_hand
    if switch is ALWAYS_ON and not _gate_held_by_hand:
        _gate_held_by_hand = True
        hold_sdk_client_span_gate()


def _gated_otel_span(
    wrapped: Callable[..., Any], _instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    return _GatedSpan(wrapped, *args, **kwargs)


class _GatedSpan:
    """What the gate hands the SDK for one ``otel_span(...)``: a non-recording view of our span when the span
    is ours, else the SDK's own span, exactly as before. A class rather than a ``@contextmanager`` generator:
    it runs for every request sent, and a generator costs twice as much to enter and leave."""

    __slots__ = ("_inner", "_kwargs", "_name", "_original")

    def __init__(self, original: Callable[..., Any], name: str, **kwargs: Any) -> None:
        self._original, self._name, self._kwargs = original, name, kwargs
        self._inner: Any = None

    def __enter__(self) -> Span:
        active = ACTIVE_CLIENT_SPAN.get()
        ours = active[0] if active is not None else None
        kwargs = self._kwargs
        if ours is None or kwargs.get("kind") is not SpanKind.CLIENT or trace.get_current_span() is not ours:
            self._inner = self._original(self._name, **kwargs)
            return self._inner.__enter__()
        attributes: Mapping[str, object] = kwargs.get("attributes") or {}
        request_id = attributes.get(attr.JSONRPC_REQUEST_ID)
        if request_id is not None and active is not None and active[1]:
            ours.set_attribute(attr.JSONRPC_REQUEST_ID, str(request_id))
        return NonRecordingSpan(ours.get_span_context())

    def __exit__(self, *exc_info: Any) -> Any:
        return self._inner.__exit__(*exc_info) if self._inner is not None else None


def install_server(lowlevel: Server[Any], tracer: ServerTracer) -> None:
    """Traces a 2.x low-level server: our middleware where the SDK's was, and what it sends back."""

    outbound = tracer.outbound
    if outbound is not None:
        _gate_for(tracer.switch)
        tracer.on_message = lambda ctx: _trace_v2_server_outbound(ctx, outbound)
    chain: list[Any] = lowlevel.middleware
    for index, middleware in enumerate(chain):
        if isinstance(middleware, OpenTelemetryMiddleware):
            chain[index] = TracingServerMiddleware(tracer, middleware)  # same place: never a second SERVER span
            return
    chain.insert(0, TracingServerMiddleware(tracer))


def _trace_v2_server_outbound(ctx: Any, tracer: ClientTracer) -> None:
    """Traces what a 2.x server sends its client on the connection this message came in on (once each).

    A JSON-RPC connection has one dispatcher behind both the request-scoped back-channel and the
    connection's own ``outbound``; the in-process dispatcher gives each request a back-channel of its own.
    """
    session = ctx.session
    channel = getattr(session, "_request_outbound", None)
    target = getattr(channel, "_dispatcher", None) or channel
    if target is None or getattr(target, OUTBOUND, None) is not None:
        return
    http = http_info(ctx.request) is not None
    connection = connection_tracer(tracer, lambda: (None, session.protocol_version), http=http)
    _trace_v2_outbound(target, connection)
    setattr(target, OUTBOUND, connection)

"""The only module that knows mcp 1.x from mcp 2.x.

Hook points (see the project's sdk_hooks notes):

* client, 2.x: the session's dispatcher (``send_raw_request``/``notify``) is the single funnel of every
  outbound message, including ``server/discover``. The SDK opens its own ``MCP send`` CLIENT span there;
  ``_gated_otel_span`` replaces it by ours for sessions we trace (a sampler or exporter filter would
  break the parent chain instead).
* client, 1.x: the session's ``send_request``/``send_notification``; the SDK has no tracing.
* server, 2.x: a ``ServerMiddleware`` in place of the SDK's ``OpenTelemetryMiddleware``.
* server, 1.x: the server's ``_handle_message`` (requests and notifications with the handler's context)
  and a stream watcher around ``run`` for what never reaches it (``initialize``, invalid requests).

Every patch is on the one object handed to us, never on a class, except the 2.x gate, which changes
nothing for sessions mcp_tracing does not trace.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import importlib
import logging
import sys
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from time import time_ns
from typing import Any, Final, cast

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind

from . import _attributes as attr
from ._client_tracer import ACTIVE_CLIENT_SPAN, ClientTracer
from ._fastmcp import is_fastmcp_client, trace_fastmcp_client
from ._registry import (
    IS_V2,
    Adapter,
    register_adapter,
    transport_of,
)
from ._server_tracer import ServerTracer, TracingServerMiddleware, http_info
from ._shared_patch import SharedPatch
from ._shutdown import flush_at_sigterm, serving_http
from ._switch import ALWAYS_ON, Switch
from ._transport import TransportInfo
from .http import TraceContextMiddleware

_logger = logging.getLogger("mcp_tracing")

_MARK = "_mcp_tracing_"


def _sdk(module: str) -> Any:
    # Modules that exist in one SDK line only, imported by name so that the type checker, which sees
    # one installed SDK, does not trip on the other line's code paths.
    return importlib.import_module(module)


def _marked(obj: object) -> bool:
    tracer = getattr(obj, _MARK, None)
    if tracer is None:
        return False
    # Tracing by hand what the instrumentor already traces is expected (same app, both ways): no warning.
    automatic = getattr(tracer, "switch", ALWAYS_ON) is not ALWAYS_ON
    _logger.log(
        logging.DEBUG if automatic else logging.WARNING,
        "mcp_tracing: %r is already traced; leaving it as it is",
        type(obj).__name__,
    )
    return True


def _dump(model: Any) -> dict[str, Any]:
    return cast(dict[str, Any], model.model_dump(by_alias=True, mode="json", exclude_none=True))


# ----------------------------------------------------------------------------------------- client


def install_client(session: object, tracer: ClientTracer) -> None:
    """Makes ``tracer`` see every outbound message of ``session`` (see ``trace_session``)."""
    if _marked(session):
        return
    quiet_fastmcp()
    if is_fastmcp_client(session):
        trace_fastmcp_client(
            session, tracer, _install_fastmcp_session, switch=tracer.switch, hold=tracer.switch is ALWAYS_ON
        )
    elif IS_V2:
        Client = _sdk("mcp.client.client").Client
        ClientSession = _sdk("mcp.client.session").ClientSession

        if isinstance(session, Client):
            _install_v2_client(session, tracer)
        elif isinstance(session, ClientSession):
            _install_v2_session(session, tracer)
        else:
            raise TypeError(
                "trace_session() takes an mcp ClientSession or Client, or a fastmcp Client, "
                f"not {type(session).__name__}"
            )
    else:
        from mcp.client.session import ClientSession

        if not isinstance(session, ClientSession):
            raise TypeError(
                f"trace_session() takes an mcp ClientSession or a fastmcp Client, not {type(session).__name__}"
            )
        _install_v1_session(session, tracer)
    setattr(session, _MARK, tracer)


def _install_fastmcp_session(session: Any, tracer: ClientTracer) -> None:
    existing: ClientTracer | None = getattr(session, _MARK, None)
    if existing is not None:  # traced already (the instrumentor's ClientSession hook): tell it the transport
        existing.use_transport(tracer.transport)
        existing.fallback_parent = tracer.fallback_parent
        return
    install_client(session, tracer)


def _install_v2_client(client: Any, tracer: ClientTracer) -> None:
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


def _use_our_transports(client: Any) -> None:
    """A 2.x ``Client`` given ``StdioServerParameters`` or a URL, not yet entered, spawns or connects through
    mcp_tracing's drop-ins: the child gets the trace context and this process's telemetry settings (its store,
    its exporter), and every HTTP request a ``traceparent`` header. The SDK builds its own transport when the
    ``Client`` is made (``_connect``, private): it is replaced, unentered. Anything else is left as it is."""
    from mcp.client.stdio import StdioServerParameters

    from .http import streamable_http_client
    from .stdio import stdio_client

    connect_transport = getattr(_sdk("mcp.client.client"), "_connect_transport", None)
    server = getattr(client, "server", None)
    if connect_transport is None or not hasattr(client, "_connect"):
        _logger.debug("mcp_tracing: this mcp Client builds its transport differently; its spawns are not traced")
        return
    if isinstance(server, StdioServerParameters):
        client._connect = connect_transport(stdio_client(server))
    elif isinstance(server, str):
        client._connect = connect_transport(streamable_http_client(server))


def _install_v2_session(session: Any, tracer: ClientTracer) -> None:
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


def _install_v1_session(session: Any, tracer: ClientTracer) -> None:
    tracer.use_transport(transport_of(session._write_stream, session._read_stream))
    _trace_v1_outbound(session, tracer)
    if tracer.inbound is not None:
        _trace_v1_inbound(session, tracer.inbound)


def _trace_v1_outbound(session: Any, tracer: ClientTracer) -> None:
    """Wraps a 1.x session's ``send_request``/``send_notification`` (client or server session alike)."""
    send_request = session.send_request
    send_notification = session.send_notification

    async def traced_send_request(request: Any, result_type: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            data = _dump(request)
        except Exception:
            _logger.exception("mcp_tracing cannot read this request; sending it untraced")
            return await send_request(request, result_type, *args, **kwargs)

        async def send(new_params: Mapping[str, Any] | None, span: Span | None) -> Any:
            outgoing = _with_params(request, data, new_params)
            if span is not None:
                # send_request allocates the id synchronously before its first await: this is its id.
                request_id = getattr(session, "_request_id", None)
                if isinstance(request_id, int):
                    span.set_attribute(attr.JSONRPC_REQUEST_ID, str(request_id))
            call_args, call_kwargs = _v1_with_progress(args, kwargs, tracer, span)
            return await send_request(outgoing, result_type, *call_args, **call_kwargs)

        return await tracer.request(str(data.get("method")), data.get("params"), send)

    async def traced_send_notification(notification: Any, *args: Any, **kwargs: Any) -> None:
        try:
            data = _dump(notification)
        except Exception:
            _logger.exception("mcp_tracing cannot read this notification; sending it untraced")
            await send_notification(notification, *args, **kwargs)
            return

        async def send(new_params: Mapping[str, Any] | None, span: Span | None) -> None:
            await send_notification(_with_params(notification, data, new_params), *args, **kwargs)

        await tracer.notify(str(data.get("method")), data.get("params"), send)

    session.send_request = traced_send_request
    session.send_notification = traced_send_notification


def _v1_with_progress(
    args: tuple[Any, ...], kwargs: dict[str, Any], tracer: ClientTracer, span: Span | None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    # send_request(request, result_type, request_read_timeout_seconds, metadata, progress_callback)
    if "progress_callback" in kwargs:
        return args, {**kwargs, "progress_callback": tracer.progress_callback(span, kwargs["progress_callback"])}
    if len(args) > 2:
        return (*args[:2], tracer.progress_callback(span, args[2]), *args[3:]), kwargs
    return args, kwargs


def _trace_v1_inbound(session: Any, tracer: ServerTracer) -> None:
    """A SERVER span for each request and notification a 1.x client session receives from its server."""
    received_request = session._received_request
    received_notification = session._received_notification

    async def traced_received_request(responder: Any, *args: Any, **kwargs: Any) -> Any:
        request = responder.request.root
        method: str = request.method
        params = _v1_params(request)
        with tracer.span(method, params, responder.request_meta, request_id=responder.request_id) as span:
            _record_v1_responses(tracer, responder, span, method, params)
            return await received_request(responder, *args, **kwargs)

    async def traced_received_notification(notification: Any, *args: Any, **kwargs: Any) -> Any:
        root = getattr(notification, "root", None)
        method = getattr(root, "method", None)
        if not isinstance(method, str):
            return await received_notification(notification, *args, **kwargs)
        with tracer.span(method, None, getattr(getattr(root, "params", None), "meta", None)):
            return await received_notification(notification, *args, **kwargs)

    session._received_request = traced_received_request
    session._received_notification = traced_received_notification


def _record_v1_responses(
    tracer: ServerTracer, responder: Any, span: Span | None, method: str, params: Mapping[str, Any] | None
) -> None:
    """Records on ``span`` what a 1.x ``RequestResponder`` answers: its result, or its error."""
    if span is None:
        return
    error_data: type[Any] = _sdk("mcp.types").ErrorData
    respond = responder.respond
    cancel = responder.cancel

    async def traced_respond(response: Any) -> None:
        if isinstance(response, error_data):
            tracer.record(span, method, error_code=response.code, error_message=response.message)
        else:
            tracer.record(span, method, response, params=params)
        await respond(response)

    async def traced_cancel() -> None:
        # The peer's notifications/cancelled: the SDK cancels the handler, which then returns normally to
        # us, and answers for it. Recorded as mcp 2.x records it (the handler's CancelledError).
        tracer.record_exception(span, method, asyncio.CancelledError())
        await cancel()

    responder.respond = traced_respond
    responder.cancel = traced_cancel


def _with_params(message: Any, data: dict[str, Any], params: Mapping[str, Any] | None) -> Any:
    """The same typed 1.x message with new params (``_meta`` rides in the model's extra fields)."""
    if params is data.get("params"):
        return message
    try:
        return cast(Any, type(message)).model_validate({**data, "params": dict(params or {})})
    except Exception:
        _logger.exception("mcp_tracing could not add _meta to %s; sending it unchanged", type(message).__name__)
        return message


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
        module = _sdk("mcp.shared.jsonrpc_dispatcher")
        _gate = SharedPatch(
            lambda: wrapt.wrap_function_wrapper(module, "otel_span", _gated_otel_span),
            lambda: unwrap(module, "otel_span"),
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
    return _gated_span(wrapped, *args, **kwargs)


@contextmanager
def _gated_span(original: Callable[..., Any], name: str, **kwargs: Any) -> Generator[Span]:
    active = ACTIVE_CLIENT_SPAN.get()
    ours = active[0] if active is not None else None
    if ours is None or kwargs.get("kind") is not SpanKind.CLIENT or trace.get_current_span() is not ours:
        with original(name, **kwargs) as span:
            yield span
        return
    attributes: Mapping[str, object] = kwargs.get("attributes") or {}
    request_id = attributes.get(attr.JSONRPC_REQUEST_ID)
    if request_id is not None and active is not None and active[1]:
        ours.set_attribute(attr.JSONRPC_REQUEST_ID, str(request_id))
    yield NonRecordingSpan(ours.get_span_context())


# ----------------------------------------------------------------------------------------- server


def install_server(server: object, tracer: ServerTracer) -> None:
    """Traces every inbound message of ``server`` (see ``instrument_server``)."""
    lowlevel = _lowlevel_server(server)
    if _marked(lowlevel):
        return
    quiet_fastmcp()
    name = getattr(lowlevel, "name", None)
    tracer.server_name = name if isinstance(name, str) else None
    if tracer.outbound is not None:  # the server of every session, whichever side sends
        tracer.outbound = dataclasses.replace(
            tracer.outbound, server_name=tracer.server_name, _explicit_server_name=True
        )
    _wrap_run(lowlevel, tracer)
    # Whatever runs the server (stdio, the SDK's HTTP or SSE runner, uvicorn, a mounted app), SIGTERM flushes.
    flush_at_sigterm(tracer.tracer_provider)
    if IS_V2:
        _install_v2_server(lowlevel, tracer)
    else:
        _install_v1_server(lowlevel, tracer)
    for owner in {id(server): server, id(lowlevel): lowlevel}.values():
        _serve_http_traced(owner, tracer)
    setattr(lowlevel, _MARK, tracer)


_APP_FACTORIES: Final = ("streamable_http_app", "sse_app", "http_app")
"""What builds a server's Starlette app: the SDK's (both lines, low-level and high-level) and fastmcp's."""
_SERVED: Final = "_mcp_tracing_served"


def _serve_http_traced(owner: object, tracer: ServerTracer) -> None:
    """Every HTTP app ``owner`` builds serves through ``TraceContextMiddleware``, so the SDK's runners
    (``run("streamable-http")``, ``run("sse")``) and apps mounted elsewhere get their HTTP SERVER span."""
    for name in _APP_FACTORIES:
        factory = getattr(owner, name, None)
        if callable(factory):
            setattr(owner, name, _traced_factory(factory, tracer))


def _traced_factory(factory: Callable[..., Any], tracer: ServerTracer) -> Callable[..., Any]:
    @functools.wraps(factory)
    def build(*args: Any, **kwargs: Any) -> Any:
        app = factory(*args, **kwargs)
        if tracer.switch.on and not getattr(app, _SERVED, False):
            try:
                # Added to the app's own stack (inside Starlette's error handling, inside any instrumentation
                # of the app), rather than around the returned app, so the app keeps its type and methods.
                app.add_middleware(
                    TraceContextMiddleware,
                    policy=tracer.policy,
                    tracer_provider=tracer.tracer_provider,
                    _switch=tracer.switch,
                )
                setattr(app, _SERVED, True)
            except Exception:
                _logger.exception("mcp_tracing could not add TraceContextMiddleware to the server's HTTP app")
        return app

    return build


_fastmcp_quieted = False


def quiet_fastmcp() -> None:
    """Switches fastmcp's own telemetry off when fastmcp is in use, unless the application chose its mode.

    fastmcp (3/4) opens a CLIENT and a SERVER span of its own per request: beside mcp_tracing's, every
    request would have two of each. Its ``off`` mode also leaves ``_meta`` alone, so mcp_tracing alone
    injects and extracts (``propagation_only`` would re-attach the caller's context inside the server span,
    taking the tool's spans out from under it). A mode set explicitly (``FASTMCP_TELEMETRY_MODE``,
    ``fastmcp.settings.telemetry_mode``) is left as it is, with a warning when it doubles the spans.
    """
    global _fastmcp_quieted
    settings = getattr(sys.modules.get("fastmcp"), "settings", None)
    if settings is None or getattr(settings, "telemetry_mode", None) != "native":
        return
    if "telemetry_mode" in getattr(settings, "model_fields_set", ()):
        if not _fastmcp_quieted:
            _logger.warning(
                "mcp_tracing: fastmcp's own telemetry is on (telemetry_mode='native' was set): each MCP request "
                "gets its spans and mcp_tracing's; set FASTMCP_TELEMETRY_MODE=off to keep one of each"
            )
            _fastmcp_quieted = True
        return
    try:
        settings.telemetry_mode = "off"
        _fastmcp_quieted = True
        _logger.info("mcp_tracing switched fastmcp's own telemetry off (FASTMCP_TELEMETRY_MODE=off)")
    except Exception:
        _logger.exception("mcp_tracing could not switch fastmcp's own telemetry off")


def restore_fastmcp() -> None:
    """Undoes ``quiet_fastmcp`` (``McpInstrumentor().uninstrument()``)."""
    global _fastmcp_quieted
    settings = getattr(sys.modules.get("fastmcp"), "settings", None)
    if _fastmcp_quieted and settings is not None and getattr(settings, "telemetry_mode", None) == "off":
        settings.telemetry_mode = "native"
    _fastmcp_quieted = False


def _lowlevel_server(server: object) -> Any:
    from mcp.server.lowlevel import Server

    if isinstance(server, Server):
        return cast(Any, server)
    # MCPServer (2.x), FastMCP (1.x) and fastmcp's FastMCP keep the low-level server in a private attribute.
    for name in ("_lowlevel_server", "_mcp_server"):
        inner = getattr(server, name, None)
        if isinstance(inner, Server):
            return cast(Any, inner)
    raise TypeError(f"instrument_server() takes an MCP Server, FastMCP or MCPServer, not {type(server).__name__}")


def _wrap_run(lowlevel: Any, tracer: ServerTracer) -> None:
    from ._session import end_session_span, start_session_span

    run = lowlevel.run

    async def traced_run(*args: Any, **kwargs: Any) -> Any:
        if _is_http_session(kwargs) or not tracer.switch.active():
            return await _run_v1(run, tracer, args, kwargs)
        try:
            span = start_session_span(tracer.tracer, tracer.tracer_provider)
            tracer.session_spans.append(span)
            if tracer.outbound is not None:
                tracer.outbound.use_transport(TransportInfo(attr.TRANSPORT_PIPE))
        except Exception:
            _logger.exception("mcp_tracing could not open the session span")
            return await _run_v1(run, tracer, args, kwargs)
        started = time.perf_counter()
        try:
            return await _run_v1(run, tracer, args, kwargs)
        finally:
            tracer.session_spans.remove(span)
            if tracer.metrics is not None:
                tracer.metrics.server_session(
                    time.perf_counter() - started, {attr.NETWORK_TRANSPORT: attr.TRANSPORT_PIPE}
                )
            end_session_span(span, tracer.tracer_provider)

    lowlevel.run = traced_run


def _install_v2_server(lowlevel: Any, tracer: ServerTracer) -> None:
    sdk_middleware: type[Any] = _sdk("mcp.server._otel").OpenTelemetryMiddleware

    outbound = tracer.outbound
    if outbound is not None:
        _gate_for(tracer.switch)
        tracer.on_message = lambda ctx: _trace_v2_server_outbound(ctx, outbound)
    chain: list[Any] = lowlevel.middleware
    for index, middleware in enumerate(chain):
        if isinstance(middleware, sdk_middleware):
            chain[index] = TracingServerMiddleware(tracer, middleware)  # same place: never a second SERVER span
            return
    chain.insert(0, TracingServerMiddleware(tracer))


_OUTBOUND = "_mcp_tracing_outbound_"


def _trace_v2_server_outbound(ctx: Any, tracer: ClientTracer) -> None:
    """Traces what a 2.x server sends its client on the connection this message came in on (once each).

    A JSON-RPC connection has one dispatcher behind both the request-scoped back-channel and the
    connection's own ``outbound``; the in-process dispatcher gives each request a back-channel of its own.
    """
    session = ctx.session
    channel = getattr(session, "_request_outbound", None)
    target = getattr(channel, "_dispatcher", None) or channel
    if target is None or getattr(target, _OUTBOUND, None) is not None:
        return
    http = http_info(ctx.request) is not None
    connection = _connection_tracer(tracer, lambda: (None, session.protocol_version), http=http)
    _trace_v2_outbound(target, connection)
    setattr(target, _OUTBOUND, connection)


def _connection_tracer(tracer: ClientTracer, peer: Callable[[], tuple[object, object]], *, http: bool) -> ClientTracer:
    """The server's outbound tracer for one connection: its protocol version and transport."""
    transport = TransportInfo(attr.TRANSPORT_TCP) if http else tracer.transport
    return dataclasses.replace(tracer, peer=peer, transport=transport)


def _is_http_session(run_kwargs: Mapping[str, Any]) -> bool:
    # mcp 1.x's streamable-HTTP session manager also serves each HTTP session through ``run`` and is the only
    # caller that passes ``stateless``; SSE connections (both lines) come through ``run`` too, while uvicorn
    # serves. Neither is the process's (stdio) session.
    return "stateless" in run_kwargs or serving_http()


async def _run_v1(run: Callable[..., Any], tracer: ServerTracer, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if IS_V2 or len(args) < 2:
        return await run(*args, **kwargs)
    watcher = _ResponseWatcher(tracer, http=_is_http_session(kwargs))
    read_stream, write_stream, *rest = args
    return await run(_ReadProxy(read_stream, watcher), _WriteProxy(write_stream, watcher), *rest, **kwargs)


def _install_v1_server(lowlevel: Any, tracer: ServerTracer) -> None:
    # mcp 1.x only: imported by name so that type checking against mcp 2.x does not trip on it.
    request_responder: type[Any] = _sdk("mcp.shared.session").RequestResponder

    handle_message = lowlevel._handle_message

    async def traced_handle_message(message: Any, session: Any, *args: Any, **kwargs: Any) -> Any:
        _trace_v1_server_outbound(session, tracer.outbound)
        if isinstance(message, request_responder):
            request = message.request.root
            watcher = _watcher_of(session)
            if watcher is not None:
                watcher.claim(message.request_id)
            method: str = request.method
            params = _v1_params(request)
            with tracer.span(
                method,
                params,
                message.request_meta,
                request_id=message.request_id,
                protocol_version=_v1_protocol_version(session),
                http=http_info(getattr(message.message_metadata, "request_context", None)),
                http_session=watcher is not None and watcher.http,
            ) as span:
                _record_v1_responses(tracer, message, span, method, params)
                return await handle_message(message, session, *args, **kwargs)
        root = getattr(message, "root", None)
        notification_method = getattr(root, "method", None)
        if not isinstance(notification_method, str):
            return await handle_message(message, session, *args, **kwargs)
        watcher = _watcher_of(session)
        with tracer.span(
            notification_method,
            None,
            getattr(getattr(root, "params", None), "meta", None),
            http_session=watcher is not None and watcher.http,
        ):
            return await handle_message(message, session, *args, **kwargs)

    lowlevel._handle_message = traced_handle_message


def _trace_v1_server_outbound(session: Any, tracer: ClientTracer | None) -> None:
    if tracer is None or session is None or getattr(session, _OUTBOUND, None) is not None:
        return
    try:
        watcher = _watcher_of(session)
        http = watcher is not None and watcher.http
        connection = _connection_tracer(tracer, lambda: (None, _v1_protocol_version(session)), http=http)
        _trace_v1_outbound(session, connection)
        setattr(session, _OUTBOUND, connection)
    except Exception:
        _logger.exception("mcp_tracing could not trace what this server sends its client")


def _watcher_of(session: Any) -> _ResponseWatcher | None:
    watcher = getattr(getattr(session, "_read_stream", None), "watcher", None)
    return watcher if isinstance(watcher, _ResponseWatcher) else None


def _v1_params(request: Any) -> dict[str, Any] | None:
    params = getattr(request, "params", None)
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key in ("name", "arguments", "uri"):
        value = getattr(params, key, None)
        if value is not None:
            out[key] = value if isinstance(value, str | dict) else str(value)
    return out


def _v1_protocol_version(session: Any) -> str | None:
    version = getattr(getattr(session, "_client_params", None), "protocolVersion", None)
    return version if isinstance(version, str) else None


class _ResponseWatcher:
    """Pairs requests read from a 1.x server's transport with the responses written back.

    Requests the server dispatches get their span in ``_handle_message`` and are claimed there. The rest
    (``initialize``, answered by the session itself, and requests the session rejects before dispatch)
    get a span from arrival to response when the response is written.
    """

    def __init__(self, tracer: ServerTracer, *, http: bool) -> None:
        self.tracer = tracer
        self.http = http
        self.pending: dict[object, tuple[str, dict[str, Any] | None, object, int, str | None, object]] = {}
        self.claimed: set[object] = set()

    def claim(self, request_id: object) -> None:
        self.claimed.add(request_id)

    def incoming(self, item: object) -> None:
        root = getattr(getattr(item, "message", None), "root", None)
        if type(root).__name__ != "JSONRPCRequest":
            return
        raw: object = getattr(root, "params", None)
        params = cast(dict[str, Any], raw) if isinstance(raw, dict) else None
        version: object = (
            (params or {}).get("protocolVersion") if getattr(root, "method", None) == attr.INITIALIZE else None
        )
        self.pending[root.id] = (  # type: ignore[union-attr]
            str(getattr(root, "method", "")),
            params,
            (params or {}).get("_meta"),
            time_ns(),
            version if isinstance(version, str) else None,
            getattr(getattr(item, "metadata", None), "request_context", None),
        )

    def outgoing(self, item: object) -> None:
        root = getattr(getattr(item, "message", None), "root", None)
        kind = type(root).__name__
        if kind not in ("JSONRPCResponse", "JSONRPCError"):
            return
        request_id = getattr(root, "id", None)
        entry = self.pending.pop(request_id, None)
        if request_id in self.claimed:
            self.claimed.discard(request_id)
            return
        if entry is None:
            return
        method, params, meta, start, version, request = entry
        result: object = getattr(root, "result", None)
        if method == attr.INITIALIZE and isinstance(result, dict):
            negotiated: object = cast(dict[str, Any], result).get("protocolVersion")
            version = negotiated if isinstance(negotiated, str) else version
        with self.tracer.span(
            method,
            params,
            meta,
            request_id=request_id,
            protocol_version=version,
            http=http_info(request),
            http_session=self.http,
            start_time=start,
        ) as span:
            if kind == "JSONRPCError":
                error = getattr(root, "error", None)
                self.tracer.record(
                    span, method, error_code=getattr(error, "code", None), error_message=getattr(error, "message", None)
                )
            else:
                self.tracer.record(span, method, cast(object, result), params=params)


class _StreamProxy:
    """Forwards everything to a transport stream, including the ``async with`` the SDK session does."""

    def __init__(self, inner: Any, watcher: _ResponseWatcher) -> None:
        self._inner = inner
        self.watcher = watcher

    async def __aenter__(self) -> _StreamProxy:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> Any:
        return await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ReadProxy(_StreamProxy):
    async def receive(self) -> Any:
        item = await self._inner.receive()
        self._see(item)
        return item

    def _see(self, item: object) -> None:
        try:
            self.watcher.incoming(item)
        except Exception:
            _logger.exception("mcp_tracing could not read an incoming message")

    def __aiter__(self) -> _ReadProxy:
        return self

    async def __anext__(self) -> Any:
        item = await self._inner.__anext__()
        self._see(item)
        return item


class _WriteProxy(_StreamProxy):
    async def send(self, item: Any) -> None:
        try:
            self.watcher.outgoing(item)
        except Exception:
            _logger.exception("mcp_tracing could not read an outgoing message")
        await self._inner.send(item)


def register() -> None:
    """Makes this module the core's SDK adapter (``mcp_tracing/__init__`` calls it once)."""
    register_adapter(Adapter(install_client=install_client, install_server=install_server))

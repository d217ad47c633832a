"""The SDK adapter the core is given (``register``): dispatches to the adapter of the installed SDK line.

Hook points (README.md's "Architecture" follows one call through them):

* client, 2.x (``v2``): the session's dispatcher (``send_raw_request``/``notify``) is the single funnel of
  every outbound message, including ``server/discover``. The SDK opens its own ``MCP send`` CLIENT span
  there; the gate replaces it by ours for sessions we trace (a sampler or exporter filter would break the
  parent chain instead).
* client, 1.x (``v1``): the session's ``send_request``/``send_notification``; the SDK has no tracing.
* server, 2.x: a ``ServerMiddleware`` in place of the SDK's ``OpenTelemetryMiddleware``.
* server, 1.x: the server's ``_handle_message`` (requests and notifications with the handler's context)
  and a stream watcher around ``run`` for what never reaches it (``initialize``, invalid requests).
* either line (here): the server's ``run`` (the stdio session span) and its HTTP app factories
  (``TraceContextMiddleware``); fastmcp's ``Client`` (``fastmcp``).

Every patch is on the one object handed to us, never on a class, except the 2.x gate, which changes
nothing for sessions mcp_tracing does not trace and is undone when nothing holds it. Only ``v1`` and ``v2``
import an SDK line's own modules; this module imports the one installed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.client_tracer import ClientTracer
from mcp_tracing._core.registry import IS_V2, Adapter, register_adapter
from mcp_tracing._core.server_tracer import ServerTracer
from mcp_tracing._core.shutdown import flush_at_sigterm
from mcp_tracing._core.switch import ALWAYS_ON
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing._sdk.common import is_http_session
from mcp_tracing._sdk.fastmcp import is_fastmcp_client, quiet_fastmcp, trace_fastmcp_client
from mcp_tracing.asgi import TraceContextMiddleware

__all__ = ["install_client", "install_server", "register"]

_logger = logging.getLogger(__name__)

_MARK: Final = "_mcp_tracing_"


class _Line(Protocol):
    """What each SDK line's adapter module (``v1``, ``v2``) provides."""

    def install_client(self, session: object, tracer: ClientTracer) -> None: ...
    def install_server(self, lowlevel: Any, tracer: ServerTracer) -> None: ...
    async def run_server(
        self, run: Callable[..., Any], tracer: ServerTracer, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...
    def httpx_instrumentor(self) -> Any: ...


@functools.cache
def _line() -> _Line:
    """The installed line's adapter, imported at first use, never when mcp_tracing is: importing the SDK then
    would bind Starlette's application class in it before an instrumentor that ``opentelemetry-instrument``
    loads after ours replaces that class (no HTTP spans at all)."""
    if IS_V2:
        from mcp_tracing._sdk import v2 as line
    else:
        from mcp_tracing._sdk import v1 as line
    return line


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


def install_client(session: object, tracer: ClientTracer) -> None:
    """Makes ``tracer`` see every outbound message of ``session`` (see ``trace_session``)."""
    if _marked(session):
        return
    quiet_fastmcp()
    if is_fastmcp_client(session):
        trace_fastmcp_client(
            session, tracer, _install_fastmcp_session, switch=tracer.switch, hold=tracer.switch is ALWAYS_ON
        )
    else:
        _line().install_client(session, tracer)  # raises TypeError for anything else
    setattr(session, _MARK, tracer)


def _install_fastmcp_session(session: Any, tracer: ClientTracer) -> None:
    existing: ClientTracer | None = getattr(session, _MARK, None)
    if existing is not None:  # traced already (the instrumentor's ClientSession hook): tell it the transport
        existing.use_transport(tracer.transport)
        existing.fallback_parent = tracer.fallback_parent
        return
    install_client(session, tracer)


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
        tracer.outbound = tracer.outbound.naming_server(tracer.server_name)
    _wrap_run(lowlevel, tracer)
    # Whatever runs the server (stdio, the SDK's HTTP or SSE runner, uvicorn, a mounted app), SIGTERM flushes.
    flush_at_sigterm(tracer.tracer_provider)
    _line().install_server(lowlevel, tracer)
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
    from mcp_tracing._core.session import end_session_span, start_session_span

    run = lowlevel.run

    async def traced_run(*args: Any, **kwargs: Any) -> Any:
        if is_http_session(kwargs) or not tracer.switch.active():
            return await _line().run_server(run, tracer, args, kwargs)
        try:
            span = start_session_span(tracer.tracer, tracer.tracer_provider)
            tracer.session_spans.append(span)
            if tracer.outbound is not None:
                tracer.outbound.use_transport(TransportInfo(attr.TRANSPORT_PIPE))
        except Exception:
            _logger.exception("mcp_tracing could not open the session span")
            return await _line().run_server(run, tracer, args, kwargs)
        started = time.perf_counter()
        try:
            return await _line().run_server(run, tracer, args, kwargs)
        finally:
            tracer.session_spans.remove(span)
            if tracer.metrics is not None:
                tracer.metrics.server_session(
                    time.perf_counter() - started, {attr.NETWORK_TRANSPORT: attr.TRANSPORT_PIPE}
                )
            end_session_span(span, tracer.tracer_provider)

    lowlevel.run = traced_run


def register() -> None:
    """Makes this module the core's SDK adapter (``mcp_tracing/__init__`` calls it once)."""
    register_adapter(
        Adapter(
            install_client=install_client,
            install_server=install_server,
            httpx_instrumentor=lambda: _line().httpx_instrumentor(),
            http_reads_body=not IS_V2,  # mcp 1.x sends no context header of its own: the body's _meta is read
        )
    )

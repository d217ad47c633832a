"""Server side of streamable HTTP: ``TraceContextMiddleware``, pure ASGI (never ``BaseHTTPMiddleware``, which
would cut contextvars): it reads the header, opens an HTTP SERVER span and leaves what arrived in the ASGI
scope, where the MCP server span logic finds it through the SDK's request object on both SDK lines (mcp 1.x
stateful servers run handlers in the context of the session's first request, so contextvars cannot carry it)::

    app = TraceContextMiddleware(server.streamable_http_app())
"""

from __future__ import annotations

import logging
from typing import Any, Final, cast

from opentelemetry import context as otel_context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, StatusCode, TracerProvider
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.bounds import URI_LIMIT, bounded
from mcp_tracing._core.policy import POLICIES, Policy, check_policy
from mcp_tracing._core.request_info import SCOPE_KEY, HttpRequestInfo, headers_of, read_info, request_info
from mcp_tracing._core.shutdown import flush, flush_at_sigterm
from mcp_tracing._core.spans import recorded_attributes
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing._core.unsampled import skips
from mcp_tracing._version import __version__

__all__ = ["POLICIES", "SCOPE_KEY", "HttpRequestInfo", "Policy", "TraceContextMiddleware", "full_route", "request_info"]

_logger = logging.getLogger(__name__)


_KNOWN_METHODS: Final = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
"""HTTP methods recorded as they are; any other is ``_OTHER``, as the HTTP conventions say."""


def _method(scope: Scope) -> tuple[str, str | None, str]:
    """``http.request.method``; for a method the peer made up, ``http.request.method_original``; and the word
    that names the span. Only a known method names the span (``HTTP`` otherwise): a client must not choose
    span names."""
    method = str(scope.get("method", ""))
    return (method, None, method) if method in _KNOWN_METHODS else ("_OTHER", bounded(method), "HTTP")


class TraceContextMiddleware:
    """Pure ASGI middleware: an HTTP SERVER span per request, under the caller's ``traceparent`` header.

    Wrap the app that serves MCP (``server.streamable_http_app()``, or a Starlette app mounting it). Every
    scope type other than ``http`` (``lifespan`` included) passes straight through. The request is served
    exactly as without the middleware: malformed trace headers count as absent, and telemetry failures
    are logged, never raised. Spans are flushed (bounded) when the app's lifespan shuts down and on SIGTERM.

    ``http.route`` is the route from the application's root (``/billing/mcp`` for an MCP app mounted at
    ``/billing``). Where another instrumentation (FastAPI's, Starlette's, the ASGI one) already opened the
    request's HTTP SERVER span, that span is adopted: no second one, the route is set on it and the MCP
    server spans link to it. Put this middleware inside such instrumentation (``instrument_server`` does,
    for the apps a server builds), never around it: an ASGI instrumentation inside would start its own
    trace from the headers. A second ``TraceContextMiddleware`` on the same request passes it through.

    Args:
        app: the ASGI app.
        policy: ``default``, ``gateway`` or ``untrusted`` (see ``Policy``).
        tracer_provider: where spans go; the global provider when omitted.

    Raises:
        ValueError: an unknown ``policy``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy = "default",
        tracer_provider: TracerProvider | None = None,
        _switch: Switch = ALWAYS_ON,
    ):
        self.app = app
        self._policy: Policy = check_policy(policy)
        self._tracer_provider = tracer_provider
        self._tracer = trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider)
        self._switch = _switch
        # A mounted app's lifespan never runs, and uvicorn dies of the SIGTERM that stopped it: flush then too.
        flush_at_sigterm(tracer_provider)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._flushing_send(send))
            return
        # A second TraceContextMiddleware on the same request (one added by instrument_server inside an app
        # the application wrapped too) leaves it to the first.
        if scope["type"] != "http" or not self._switch.http_active() or SCOPE_KEY in scope:
            await self.app(scope, receive, send)
            return
        try:
            outer = self._adoptable(scope)
            if outer is not None:
                span, token = outer, None
                self._adopt(scope, outer)
            else:
                span, info = self._start(scope)
                token = otel_context.attach(trace.set_span_in_context(span, self._parent(info)))
        except Exception:
            _logger.exception("mcp_tracing could not start an HTTP server span; serving untraced")
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                if token is None:  # the adopted span may end with the response's last byte: name it now
                    _name_route(span, scope)
            await send(message)

        try:
            await self.app(scope, receive, traced_send)
        except BaseException as exc:
            if token is not None and span.is_recording():
                span.set_attribute(attr.ERROR_TYPE, type(exc).__qualname__)
                span.set_status(StatusCode.ERROR, type(exc).__qualname__)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
                if span.is_recording():
                    self._finish(span, scope, status)
            elif not status:
                _name_route(span, scope)

    def _adoptable(self, scope: Scope) -> Span | None:
        """The HTTP SERVER span another instrumentation opened for this request: the current span (the ASGI,
        Starlette and FastAPI instrumentations make theirs current), or FastAPI's own telemetry's (which
        keeps its span in the scope, not in the context).

        Under the ``untrusted`` policy none is adopted: that policy starts every trace anew, which the other
        instrumentation, parented on the inbound header, did not do.
        """
        if self._policy == "untrusted":
            return None
        path = scope.get("path")
        for candidate in (getattr(scope.get(_FASTAPI_TELEMETRY), "span", None), trace.get_current_span()):
            if _is_http_server_span(candidate, path):
                return cast(Span, candidate)
        return None

    def _adopt(self, scope: Scope, span: Span) -> None:
        info = read_info(scope, headers_of(scope))
        info.policy = self._policy
        info.span = span
        scope[SCOPE_KEY] = info

    def _flushing_send(self, send: Send) -> Send:
        # Servers often die of the SIGTERM that stopped them (uvicorn re-raises it after a graceful
        # shutdown), so exit handlers never run: flush when the app reports its shutdown complete.
        async def flushing_send(message: Message) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                from anyio import to_thread

                await to_thread.run_sync(flush, self._tracer_provider)
            await send(message)

        return flushing_send

    def _parent(self, info: HttpRequestInfo) -> Context | None:
        if self._policy == "untrusted":
            return Context()  # a new trace, and no inbound baggage
        return info.header_context

    def _start(self, scope: Scope) -> tuple[Span, HttpRequestInfo]:
        headers = headers_of(scope)
        info = read_info(scope, headers)
        info.policy = self._policy
        if self._policy != "untrusted" and skips(self._tracer, info.header_context):
            # The caller's trace is not sampled: no span, no attributes. The caller's span stands in for
            # this one (the MCP server spans link to it, the gateway policy parents on it): it is what
            # the unsampled trace carries on either way.
            info.span = trace.get_current_span(info.header_context)
            scope[SCOPE_KEY] = info
            return info.span, info
        links: list[Link] = []
        if self._policy == "untrusted" and info.header_context is not None:
            links.append(Link(trace.get_current_span(info.header_context).get_span_context()))
        method, original, name = _method(scope)
        server = scope.get("server") or (None, None)
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": bounded(str(scope.get("path", "")), URI_LIMIT),
            "url.scheme": scope.get("scheme", "http"),
            attr.NETWORK_PROTOCOL_NAME: "http",
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        for key, value in (
            (attr.SERVER_ADDRESS, server[0]),
            (attr.SERVER_PORT, server[1]),
            (attr.CLIENT_ADDRESS, info.client_address),
            (attr.CLIENT_PORT, info.client_port),
            ("user_agent.original", bounded(headers["user-agent"], URI_LIMIT) if "user-agent" in headers else None),
            ("http.request.method_original", original),
        ):
            if value is not None:
                attributes[key] = value
        span = self._tracer.start_span(
            name,
            context=self._parent(info),
            kind=SpanKind.SERVER,
            attributes=attributes,
            links=links,
        )
        info.span = span
        scope[SCOPE_KEY] = info
        return span, info

    @staticmethod
    def _finish(span: Span, scope: Scope, status: list[int]) -> None:
        try:
            _name_route(span, scope)
            if status:
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.set_attribute(attr.ERROR_TYPE, str(status[0]))
                    span.set_status(StatusCode.ERROR)
        finally:
            span.end()


def full_route(scope: Scope) -> str | None:
    """The route the request matched, from the application's root: ``/billing/mcp`` for ``/mcp`` mounted at
    ``/billing`` (Starlette leaves the mount prefixes in ``root_path`` and the innermost route in ``route``),
    so that ``http.route`` agrees with ``url.path``."""
    matched = scope.get("route")
    route = getattr(matched, "path", None)
    if not isinstance(route, str):
        return None
    root = scope.get("root_path")
    root = root.rstrip("/") if isinstance(root, str) else ""
    if isinstance(matched, Mount):  # the innermost match is a mount (SSE's messages app): already in root_path
        return root or route
    return f"{root}{route}"


_FASTAPI_TELEMETRY: Final = "fastapi.telemetry"
"""Where FastAPI's own telemetry (0.16x) keeps the request's span and route in the ASGI scope."""


def _is_http_server_span(span: object, path: object) -> bool:
    """A recording HTTP SERVER span of this request: one of another request (an ASGI app called in process
    from a handler) names another path."""
    if not isinstance(span, Span) or not span.is_recording() or getattr(span, "kind", None) != SpanKind.SERVER:
        return False
    known = recorded_attributes(span)
    if "http.request.method" not in known and "http.method" not in known:
        return False
    seen = known.get("url.path", known.get("http.target"))
    return not isinstance(seen, str) or not isinstance(path, str) or seen.split("?", 1)[0] == path


def _name_route(span: Span, scope: Scope) -> None:
    try:
        route = full_route(scope)
        if route is None or not span.is_recording():
            return
        route = bounded(route, URI_LIMIT)
        span.set_attribute("http.route", route)
        span.update_name(f"{_method(scope)[2]} {route}")
        fastapi: Any = scope.get(_FASTAPI_TELEMETRY)
        if (
            fastapi is not None
            and getattr(fastapi, "span", None) is span
            and isinstance(getattr(fastapi, "route", None), str)
        ):
            # FastAPI writes its route (``/billing/{path}`` for a mount) over the span's when the request ends.
            fastapi.route = route
    except Exception:
        _logger.exception("mcp_tracing could not name an HTTP server span")

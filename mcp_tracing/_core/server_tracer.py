"""The server side's span logic: ``ServerTracer`` opens the SERVER span of every message a server handles, under
the parent its policy chooses (see ``server``), and sends what the server asks its client through a
``ClientTracer``. ``server.instrument_server`` builds one; the SDK adapter feeds it messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TracerProvider
from opentelemetry.util.types import AttributeValue

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.client_tracer import ClientTracer
from mcp_tracing._core.logs import record_notification
from mcp_tracing._core.policy import Policy, stricter
from mcp_tracing._core.request_info import HttpRequestInfo, request_info
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing._core.unsampled import skips
from mcp_tracing.metrics import McpMetrics
from mcp_tracing.privacy import Privacy
from mcp_tracing.propagation import extract_meta
from mcp_tracing.sampling import MethodFilter

__all__ = ["ServerTracer", "TracingServerMiddleware", "http_info"]

_logger = logging.getLogger(__name__)


@dataclass
class ServerTracer:
    """Span logic for every inbound message of one server, and its open session spans."""

    tracer: trace.Tracer
    tracer_provider: TracerProvider | None
    server_name: str | None = None
    policy: Policy = "default"
    filter: MethodFilter = field(default_factory=MethodFilter)
    privacy: Privacy = field(default_factory=Privacy)
    metrics: McpMetrics | None = None
    session_spans: list[Span] = field(default_factory=lambda: [])
    outbound: ClientTracer | None = None
    """Spans for what this side sends its peer: server-to-client requests and notifications."""
    connection: Callable[[], Mapping[str, AttributeValue]] | None = None
    """What is known of the connection beyond the message (a client's tracer of what its server sends)."""
    switch: Switch = field(default=ALWAYS_ON)
    on_message: Callable[[Any], None] | None = None
    """Called by ``TracingServerMiddleware`` with each message's context, before its span opens (the 2.x
    adapter uses it to reach the connection's outbound channel)."""
    hash_key: _spans.SessionKey = field(default_factory=_spans.SessionKey, repr=False)
    """The arguments-hash key, resolved at the first hash and kept (``hash_key()`` gives it)."""

    def placement(
        self, meta: object, http: HttpRequestInfo | None = None, *, http_session: bool = False
    ) -> tuple[Context | None, list[Link]]:
        """The context a server span starts in and its links (see the module docstring).

        Returns:
            ``(parent, links)``; a ``None`` parent means the ambient context.
        """
        meta_ctx = extract_meta(meta)
        http_span = http.span.get_span_context() if http is not None and http.span is not None else None
        policy = stricter(http.policy, self.policy) if http is not None and http.span is not None else self.policy
        if policy == "untrusted":
            arrived = [_span_of(meta_ctx), _span_of(http.header_context) if http else None, http_span]
            return Context(), [Link(ctx) for ctx in arrived if ctx is not None]
        if policy == "gateway" and http is not None and http.span is not None:
            meta_span = _span_of(meta_ctx)
            return trace.set_span_in_context(http.span), [Link(meta_span)] if meta_span else []
        http_links = [Link(http_span)] if http_span is not None else []
        if meta_ctx is not None:
            return meta_ctx, http_links
        if http is not None:
            if http.header_context is not None:
                return http.header_context, http_links
            if http.span is not None:
                return trace.set_span_in_context(http.span), []
            return Context(), []
        if self.session_spans:
            return trace.set_span_in_context(self.session_spans[-1]), []
        # mcp 1.x runs a stateful HTTP session's handlers in the context of its first request: never ambient.
        return (Context() if http_session else None), []

    @contextmanager
    def span(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        meta: object,
        *,
        request_id: object = None,
        protocol_version: str | None = None,
        http: HttpRequestInfo | None = None,
        http_session: bool = False,
        start_time: int | None = None,
    ) -> Generator[Span | None, None, None]:
        """Opens the SERVER span of one message and makes it current; yields ``None`` if tracing is off."""
        if not self.switch.active():
            yield None
            return
        if not self.filter.traces(method):
            # No span for it, but what the handler does still belongs under the caller's span.
            with self._attached(meta, http, http_session):
                yield None
            return
        try:
            parent, links = self.placement(meta, http, http_session=http_session)
        except Exception:
            _logger.exception("mcp_tracing could not read the context of a message; handling it untraced")
            yield None
            return
        if skips(self.tracer, parent):
            # An unsampled parent: no span, no attributes unless measured, no hash; the context is current.
            with self._spanless(parent, lambda: self._attributes(method, params, request_id, protocol_version, http)):
                yield None
            return
        try:
            attributes = self._attributes(method, params, request_id, protocol_version, http)
            span = self.tracer.start_span(
                _spans.span_name(method, params),
                context=parent,
                kind=SpanKind.SERVER,
                attributes=attributes,
                links=links,
                start_time=start_time,
            )
            _spans.record_arguments(span, method, params, self.privacy, self.hash_key)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
            started = time.perf_counter()
        except Exception:
            _logger.exception("mcp_tracing could not start a server span; handling the message untraced")
            yield None
            return
        error: str | None = None
        try:
            yield span
        except BaseException as exc:
            error = _spans.error_type(exc)
            _safely(_spans.record_exception, span, method, exc, self.privacy)
            raise
        finally:
            otel_context.detach(token)
            span.end()
            _safely(self._measure, span, attributes, error, time.perf_counter() - started)

    def _attributes(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        request_id: object,
        protocol_version: str | None,
        http: HttpRequestInfo | None,
    ) -> dict[str, AttributeValue]:
        attributes = _spans.message_attributes(
            method,
            params,
            request_id=request_id,
            protocol_version=protocol_version,
            transport=attr.TRANSPORT_PIPE if http is None and self.session_spans else None,
            server_name=self.server_name,
        )
        if http is not None:
            _http_attributes(attributes, http, protocol_version)
        if self.connection is not None:
            attributes = {**self.connection(), **attributes}
        return attributes

    @contextmanager
    def _spanless(
        self, parent: Context | None, attributes: Callable[[], dict[str, AttributeValue]]
    ) -> Generator[None, None, None]:
        """A message with no span of ours: ``parent`` is current while it is handled, and it is measured
        (``attributes`` built only then, and only if something records them)."""
        token = otel_context.attach(parent) if parent is not None else None
        started = time.perf_counter()
        error: str | None = None
        try:
            yield
        except BaseException as exc:
            error = _spans.error_type(exc)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            if self.metrics is not None and self.metrics.enabled:
                seconds = time.perf_counter() - started
                _safely(lambda: self._measure(None, attributes(), error, seconds))

    def _measure(self, span: Span | None, attributes: dict[str, Any], error: str | None, seconds: float) -> None:
        if self.metrics is not None and self.metrics.enabled:
            self.metrics.server_operation(seconds, _spans.operation_attributes(span, attributes, error))

    def log_notification(self, params: Mapping[str, Any] | None, meta: object) -> None:
        """A ``notifications/message`` from the peer as a log record under the span it was sent from (its
        ``_meta``), else where its span would go (``_core/logs``); never raises."""
        if not self.switch.active():
            return
        try:
            parent, _ = self.placement(meta)
        except Exception:
            parent = None
        record_notification(params, parent, self.privacy)

    @contextmanager
    def _attached(self, meta: object, http: HttpRequestInfo | None, http_session: bool) -> Generator[None, None, None]:
        try:
            parent, _ = self.placement(meta, http, http_session=http_session)
            token = otel_context.attach(parent) if parent is not None else None
        except Exception:
            _logger.exception("mcp_tracing could not read the context of an untraced message")
            token = None
        try:
            yield
        finally:
            if token is not None:
                otel_context.detach(token)

    def record(
        self,
        span: Span | None,
        method: str,
        result: object = None,
        *,
        params: Mapping[str, Any] | None = None,
        error_code: object = None,
        error_message: object = None,
    ) -> None:
        """Records the response sent for a message: its result, or its JSON-RPC error."""
        if span is None:
            return
        if error_code is not None:
            _safely(_spans.record_error_code, span, method, error_code, error_message, self.privacy)
        else:
            _safely(_spans.record_result, span, method, result, self.privacy, _spans.target_of(method, params))

    def record_exception(self, span: Span | None, method: str, exc: BaseException) -> None:
        """Marks a message's span as ended by ``exc`` (raised or not)."""
        if span is not None:
            _safely(_spans.record_exception, span, method, exc, self.privacy)


def _span_of(ctx: Context | None) -> SpanContext | None:
    return None if ctx is None else trace.get_current_span(ctx).get_span_context()


def _http_attributes(attributes: dict[str, Any], http: HttpRequestInfo, protocol_version: str | None) -> None:
    attributes[attr.NETWORK_TRANSPORT] = attr.TRANSPORT_TCP
    attributes[attr.NETWORK_PROTOCOL_NAME] = "http"
    if http.client_address:
        attributes[attr.CLIENT_ADDRESS] = http.client_address
    if http.client_port:
        attributes[attr.CLIENT_PORT] = http.client_port
    if http.session_id and _spans.has_sessions(protocol_version):
        attributes[attr.MCP_SESSION_ID] = http.session_id


def http_info(request: object) -> HttpRequestInfo | None:
    """The HTTP facts of the SDK's request object (a Starlette ``Request``), or ``None`` off HTTP."""
    scope = getattr(request, "scope", None)
    return request_info(scope) if isinstance(scope, MutableMapping) else None  # pyright: ignore[reportUnknownArgumentType]


def _safely(record: Any, *args: Any) -> None:
    try:
        record(*args)
    except Exception:
        _logger.exception("mcp_tracing could not record a span outcome")


class TracingServerMiddleware:
    """mcp 2.x ``ServerMiddleware`` that opens the SERVER span of every inbound message.

    ``instrument_server`` puts it where the SDK's ``OpenTelemetryMiddleware`` was; add it yourself only
    if you build the middleware list by hand, and then remove the SDK's.

    Args:
        tracer: the server's span logic.
        replaced: the SDK middleware this one stands in for; it runs instead while the tracer's switch is
            off (``McpInstrumentor().uninstrument()``), so the server behaves as if never instrumented.
    """

    def __init__(self, tracer: ServerTracer, replaced: Callable[[Any, Any], Any] | None = None) -> None:
        self._tracer = tracer
        self._replaced = replaced

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        if not self._tracer.switch.on:
            return await (self._replaced(ctx, call_next) if self._replaced is not None else call_next(ctx))
        method: str = ctx.method
        if self._tracer.on_message is not None:
            _safely(self._tracer.on_message, ctx)
        with self._tracer.span(
            method,
            ctx.params,
            ctx.meta,
            request_id=ctx.request_id,
            protocol_version=ctx.protocol_version,
            http=http_info(ctx.request),
        ) as span:
            if span is None:
                return await call_next(ctx)
            result = await call_next(ctx)
            self._tracer.record(span, method, result, params=ctx.params)
            return result

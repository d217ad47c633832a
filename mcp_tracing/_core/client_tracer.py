"""The client side's span logic: ``ClientTracer`` sees every message a client session sends (and, through the
``ServerTracer`` it is given, every request its server sends it), opens the CLIENT spans, puts the context in
``params._meta``. ``client.trace_session`` builds one; the SDK adapter feeds it messages."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from opentelemetry import baggage as otel_baggage, context as otel_context, trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, TracerProvider
from opentelemetry.util.types import AttributeValue

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.bounds import bounded
from mcp_tracing._core.switch import ALWAYS_ON, Switch
from mcp_tracing._core.tool_spans import claim_tool_span
from mcp_tracing._core.transport import TransportInfo
from mcp_tracing._core.unsampled import skips
from mcp_tracing._version import __version__
from mcp_tracing.metrics import McpMetrics
from mcp_tracing.privacy import Privacy
from mcp_tracing.propagation import inject_meta, propagator_fields
from mcp_tracing.sampling import MethodFilter

if TYPE_CHECKING:
    from mcp_tracing._core.server_tracer import ServerTracer

__all__ = [
    "ACTIVE_CLIENT_SPAN",
    "SERVER_INFO_META_KEY",
    "ClientTracer",
    "chosen_parent",
    "server_identity",
    "tracing_parts",
]

_logger = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")

ACTIVE_CLIENT_SPAN: ContextVar[tuple[Span, bool] | None] = ContextVar("mcp_tracing_active_client_span", default=None)
"""The span that stands for the message being sent in this context, and whether it is mcp_tracing's own
(``False``: an excluded method, sent under the caller's span with no span of its own). On mcp 2.x the
SDK's ``MCP send`` span is replaced by it (see ``_sdk/v2.py``)."""

SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"
"""Where a 2026-07-28 ``server/discover`` result names the server (in its ``_meta``)."""


@dataclass
class _Outcome:
    span: Span | None = None
    error_type: str | None = None
    attributes: dict[str, AttributeValue] | None = None

    def failed(self, method: str, exc: BaseException) -> None:
        """Takes the error of a request that raised (a refused ``server/discover`` probe is not one)."""
        if not _spans.is_refused_discover(method, _spans.jsonrpc_code(exc)):
            self.error_type = _spans.error_type(exc)


_Inject = Callable[[Mapping[str, Any] | None], Mapping[str, Any] | None]
SendRequest = Callable[[Mapping[str, Any] | None, Span | None], Awaitable[R]]
ProgressFn = Callable[[float, "float | None", "str | None"], Awaitable[None]]


@dataclass
class ClientTracer:
    """Per-session state and the span logic for every outbound message of one client session."""

    tracer: trace.Tracer
    server_name: str | None = None
    transport: TransportInfo | None = None
    protocol_version: str | None = None
    filter: MethodFilter = field(default_factory=MethodFilter)
    privacy: Privacy = field(default_factory=Privacy)
    baggage: bool | frozenset[str] = True
    metrics: McpMetrics | None = None
    peer: Callable[[], tuple[object, object]] | None = None
    """Where the SDK keeps what it learnt of the server, ``(server name, protocol version)``, if it does."""
    inbound: ServerTracer | None = None
    """Spans for what the peer sends this side: server-to-client requests and notifications."""
    switch: Switch = field(default=ALWAYS_ON)
    fallback_parent: Callable[[], Span | None] | None = None
    """The parent of a message sent with no span current (a fastmcp client's session span), if any."""
    parent_span: Callable[[], Span | None] | None = None
    """The application's choice of parent, asked first at each message (``trace_session(parent_span=)``)."""
    sdk_injects: bool = False
    """The SDK writes the current context into ``params._meta`` of every request itself (mcp 2.x's JSON-RPC
    dispatcher): requests then only lose stale propagator keys here, and are not injected twice."""
    _explicit_server_name: bool = field(default=False, repr=False)
    hash_key: _spans.SessionKey = field(default_factory=_spans.SessionKey, repr=False)
    """The arguments-hash key, resolved at the first hash and kept (``hash_key()`` gives it)."""

    async def request(
        self, method: str, params: Mapping[str, Any] | None, send: SendRequest[R], *, notification: bool = False
    ) -> R:
        """Sends one request inside its CLIENT span; ``send`` gets the params with ``_meta`` injected."""
        if not self.switch.active():
            return await send(params, None)
        inject = self._inject if notification or not self.sdk_injects else _without_stale
        # One coroutine layer for the whole of it: every await layer costs on every message.
        token = otel_context.attach(self._limited_baggage()) if self.baggage is not True else None
        outcome = _Outcome()
        start = time.perf_counter()
        try:
            return await self._send(method, params, send, outcome, inject)
        finally:
            if self.metrics is not None and self.metrics.enabled:
                self._safely(self._measure, method, params, outcome, time.perf_counter() - start)
            if token is not None:  # this server gets only the baggage entries it may see
                otel_context.detach(token)

    def _limited_baggage(self) -> Context:
        ctx = otel_baggage.clear(otel_context.get_current())
        allowed = self.baggage
        if isinstance(allowed, bool):  # False here: ``request`` never limits for True
            return ctx
        for key, value in otel_baggage.get_all().items():
            if key in allowed:
                ctx = otel_baggage.set_baggage(key, value, ctx)
        return ctx

    async def _send(
        self, method: str, params: Mapping[str, Any] | None, send: SendRequest[R], outcome: _Outcome, inject: _Inject
    ) -> R:
        if not self.filter.traces(method):  # no span (not the SDK's either); the context still travels
            return await self._send_spanless(method, params, send, outcome, None, inject)
        try:
            parent = self._fallback_context()
        except Exception:
            _logger.exception("mcp_tracing could not find the parent of a client span; using the current context")
            parent = None
        if skips(self.tracer, parent):  # an unsampled parent: no span, no attributes, no hash; the context travels
            return await self._send_spanless(method, params, send, outcome, parent, inject)
        with self._span(method, params, outcome, parent) as span:
            outcome.span = span
            if span is None:
                return await send(params, None)
            try:
                result = await send(inject(params), span)
            except BaseException as exc:
                outcome.failed(method, exc)
                self._safely(_spans.record_exception, span, method, exc, self.privacy)
                raise
            tool_error = self._safely(self._record_result, span, method, result, _spans.target_of(method, params))
            if method == attr.TOOLS_CALL and (tool_error or (tool_error is None and _spans.is_tool_error(result))):
                outcome.error_type = attr.ERROR_TOOL
            return result

    async def _send_spanless(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        send: SendRequest[R],
        outcome: _Outcome,
        parent: Context | None,
        inject: _Inject,
    ) -> R:
        """Sends with no span of ours: the context (``parent`` if given, else the current one) still travels,
        and what the metrics and the session need of the response is still taken."""
        token = otel_context.attach(parent) if parent is not None else None
        active = ACTIVE_CLIENT_SPAN.set((trace.get_current_span(), False))
        try:
            result = await send(inject(params), None)
        except BaseException as exc:
            outcome.failed(method, exc)
            raise
        finally:
            ACTIVE_CLIENT_SPAN.reset(active)
            if token is not None:
                otel_context.detach(token)
        if method == attr.TOOLS_CALL and self._safely(_spans.is_tool_error, result):
            outcome.error_type = attr.ERROR_TOOL
        elif method in (attr.INITIALIZE, attr.SERVER_DISCOVER):
            self._safely(self.learn_server, result)
        return result

    def _measure(self, method: str, params: Mapping[str, Any] | None, outcome: _Outcome, seconds: float) -> None:
        if self.metrics is not None:
            known = outcome.attributes if outcome.attributes is not None else self._attributes(method, params)
            self.metrics.client_operation(seconds, _spans.operation_attributes(outcome.span, known, outcome.error_type))

    async def notify(self, method: str, params: Mapping[str, Any] | None, send: SendRequest[R]) -> R:
        """Sends one notification inside its CLIENT span, ``_meta`` injected (the SDK does not)."""
        return await self.request(method, params, send, notification=True)

    def progress_callback(self, span: Span | None, callback: ProgressFn | None) -> ProgressFn | None:
        """``callback``, also recording each progress report as an ``mcp.progress`` event on ``span``.

        The request a ``notifications/progress`` reports on is the one whose span shows it, in order,
        with the value and total (the message is free text, so it is not recorded).
        """
        if span is None or callback is None:
            return callback
        report = callback

        async def on_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
            self._safely(_spans.record_progress, span, progress, total)
            await report(progress, total, message)

        return on_progress

    @contextmanager
    def _span(
        self, method: str, params: Mapping[str, Any] | None, outcome: _Outcome, parent: Context | None
    ) -> Generator[Span | None, None, None]:
        try:
            self._ask_peer()
            attributes = outcome.attributes = self._attributes(method, params)
            claimed = claim_tool_span(method, params)
            if claimed is not None:  # a tool.call/execute_tool span stands for this call: enrich it, do not nest
                # What its maker recorded stays (a framework's own gen_ai.tool.name, a server_name given).
                present = _spans.recorded_attributes(claimed)
                claimed.set_attributes({k: v for k, v in attributes.items() if k not in present})
                span, token, owned = claimed, None, False
            else:
                span = self.tracer.start_span(
                    _spans.span_name(method, params),
                    context=parent,
                    kind=SpanKind.CLIENT,
                    attributes=attributes,
                )
                token, owned = otel_context.attach(trace.set_span_in_context(span)), True
            _spans.record_arguments(span, method, params, self.privacy, self.hash_key)
            active = ACTIVE_CLIENT_SPAN.set((span, True))
        except Exception:
            _logger.exception("mcp_tracing could not start a client span; sending untraced")
            yield None
            return
        try:
            yield span
        finally:
            ACTIVE_CLIENT_SPAN.reset(active)
            if owned:
                otel_context.detach(token)  # type: ignore[arg-type]
                span.end()

    def _fallback_context(self) -> Context | None:
        chosen = chosen_parent(self.parent_span)
        if chosen is not None:
            return chosen
        if self.fallback_parent is None or trace.get_current_span().get_span_context().is_valid:
            return None
        root = self.fallback_parent()
        return trace.set_span_in_context(root) if root is not None else None

    def _attributes(self, method: str, params: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
        info = self.transport
        attributes = _spans.message_attributes(
            method,
            params,
            protocol_version=self.protocol_version,
            transport=info.transport if info else None,
            server_name=self.server_name,
        )
        if info is not None and info.transport == attr.TRANSPORT_TCP:
            attributes[attr.NETWORK_PROTOCOL_NAME] = "http"
            if info.server_address:
                attributes[attr.SERVER_ADDRESS] = info.server_address
            if info.server_port:
                attributes[attr.SERVER_PORT] = info.server_port
            if info.session_id and _spans.has_sessions(self.protocol_version):
                attributes[attr.MCP_SESSION_ID] = info.session_id
        return attributes

    def connection_attributes(self) -> dict[str, AttributeValue]:
        """What this side knows of the connection (transport, protocol version, server name, address), for
        the spans of messages its peer sends on it."""
        self._ask_peer()
        attributes = self._attributes("", None)
        del attributes[attr.MCP_METHOD_NAME]
        return attributes

    @staticmethod
    def _inject(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        try:
            meta = (params or {}).get("_meta")
            return {**(params or {}), "_meta": inject_meta(meta if isinstance(meta, Mapping) else None)}  # pyright: ignore[reportUnknownArgumentType]
        except Exception:
            _logger.exception("mcp_tracing could not inject _meta; sending without it")
            return params

    def _record_result(self, span: Span, method: str, result: object, tool: str | None) -> bool:
        """Records the result on ``span``; returns whether it is a tool error."""
        if method in (attr.INITIALIZE, attr.SERVER_DISCOVER):
            self.learn_server(result)
            if self.server_name:
                span.set_attribute(attr.SERVER_NAME, bounded(self.server_name))
            if self.protocol_version:
                span.set_attribute(attr.MCP_PROTOCOL_VERSION, bounded(self.protocol_version))
        return _spans.record_result(span, method, result, self.privacy, tool)

    def learn_server(self, result: object) -> None:
        """Takes the server name and protocol version from an ``initialize`` result (dict or model)."""
        name, version = server_identity(result)
        if name and not self._explicit_server_name:
            self.server_name = name
        if version:
            self.protocol_version = version

    def naming_server(self, name: str | None) -> ClientTracer:
        """A copy that names its server ``name`` whatever the peer says (a server's own outbound tracer)."""
        return dataclasses.replace(self, server_name=name, _explicit_server_name=True)

    def for_connection(
        self, peer: Callable[[], tuple[object, object]], transport: TransportInfo | None
    ) -> ClientTracer:
        """A copy for one connection of a server: its peer's identity read through ``peer``, its transport."""
        return dataclasses.replace(self, peer=peer, transport=transport)

    def use_transport(self, info: TransportInfo | None) -> None:
        """Takes what the transport knows; a server name given to the transport counts as explicit."""
        if info is None or self.transport is not None:
            return
        self.transport = info
        if info.server_name and not self._explicit_server_name:
            self.server_name = info.server_name
            self._explicit_server_name = True

    def _ask_peer(self) -> None:
        if self.peer is None:
            return
        try:
            name, version = self.peer()
        except Exception:  # the SDK's own bookkeeping is read-only here: never let it break a call
            return
        if isinstance(name, str) and name and not self._explicit_server_name:
            self.server_name = name
        if isinstance(version, str) and version:
            self.protocol_version = version

    @staticmethod
    def _safely(record: Callable[..., T], *args: Any) -> T | None:
        try:
            return record(*args)
        except Exception:
            _logger.exception("mcp_tracing could not record a span outcome")
            return None


def _without_stale(params: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``params`` for an SDK that injects the context itself: unchanged unless its ``_meta`` carries keys the
    propagator owns, which are dropped (as ``inject_meta`` drops them) so no stale ``tracestate`` survives."""
    meta = params.get("_meta") if params is not None else None
    if not isinstance(meta, Mapping):
        return params
    try:
        fields = propagator_fields()
        if not any(key in fields for key in cast(Mapping[str, object], meta)):
            return params
        kept = {k: v for k, v in cast(Mapping[str, object], meta).items() if k not in fields}
        return {**cast(Mapping[str, Any], params), "_meta": kept}
    except Exception:
        _logger.exception("mcp_tracing could not read _meta; sending it unchanged")
        return params


def chosen_parent(parent_span: Callable[[], Span | None] | None) -> Context | None:
    """The current context with ``parent_span()`` as its span, when that returns a valid span; else ``None``."""
    if parent_span is None:
        return None
    try:
        span = parent_span()
    except Exception:
        _logger.exception("mcp_tracing: parent_span raised; using the current context")
        return None
    if not isinstance(span, Span) or not span.get_span_context().is_valid:
        return None
    return trace.set_span_in_context(span)


def server_identity(result: object) -> tuple[str | None, str | None]:
    """``(server name, protocol version)`` from an ``initialize`` or ``server/discover`` result (dict or model)."""
    info = _spans.field(result, "serverInfo", "server_info") or _spans.field(
        _spans.field(result, "_meta"), SERVER_INFO_META_KEY
    )
    name = _spans.field(info, "name")
    version = _spans.field(result, "protocolVersion", "protocol_version")
    return (name if isinstance(name, str) and name else None, version if isinstance(version, str) and version else None)


def tracing_parts(
    exclude_methods: Iterable[str] | None,
    drop_list_calls: bool | None,
    privacy: Privacy | None,
    tracer_provider: TracerProvider | None,
    meter_provider: MeterProvider | None,
) -> tuple[trace.Tracer, MethodFilter, Privacy, McpMetrics]:
    """What both sides' tracers share, resolved from arguments, else the environment, else the defaults."""
    return (
        trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider),
        MethodFilter.resolve(exclude_methods, drop_list_calls),
        privacy or Privacy.from_env(),
        McpMetrics(meter_provider),
    )

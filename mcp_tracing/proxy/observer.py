"""Proxy: turns the messages seen each way into client and server spans and metrics, with bounded memory."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import Span, SpanKind, StatusCode, TracerProvider

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.bounds import bounded
from mcp_tracing._core.client_tracer import server_identity
from mcp_tracing._version import __version__
from mcp_tracing.metrics import McpMetrics
from mcp_tracing.privacy import Privacy
from mcp_tracing.propagation import extract_env, extract_meta
from mcp_tracing.proxy.framing import messages
from mcp_tracing.sampling import MethodFilter

_logger = logging.getLogger(__name__)

__all__ = ["MAX_EARLY", "MAX_PENDING", "Proxy", "SERVER_EXITED", "UNANSWERED"]

SERVER_EXITED: Final = "server_exited"
"""``error.type`` of the requests still pending when the real server exits."""

MAX_EARLY: Final = 1024
"""Answers kept while waiting for the request they answer to be read (see ``Proxy._early``); an answer to an id
never requested waits here until newer ones push it out."""

MAX_PENDING: Final = 4096
"""Unanswered requests kept each way; past it the oldest one's span ends with ``error.type=unanswered``."""

UNANSWERED: Final = "unanswered"
"""``error.type`` of a request pushed out by ``MAX_PENDING`` newer ones still unanswered."""

_ID_LIMIT: Final = 256


def _key(request_id: object) -> str:
    """A small key for a request id or progress token, whatever the peer sent."""
    if isinstance(request_id, bool) or not isinstance(request_id, str | int | float | None):
        return "?"  # not a JSON-RPC id (an array, an object): such messages share one key
    text = json.dumps(request_id)
    # A long id is kept by its digest: held by the thousand, ids as long as the peer likes would not be small.
    return text if len(text) <= _ID_LIMIT else "#" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass
class _Pending:
    """A request waiting for its answer: its span and what its answer's span and metric need, not its params."""

    span: Span
    method: str
    target: str | None
    measured: Mapping[str, Any]  # the attributes of its duration metric
    started: int
    kind: SpanKind
    progress_token: str | None = None


@dataclass(frozen=True)
class _Answer:
    """What a request's span needs of its answer. Answers can arrive before their request is read (or for ids
    never requested), and are then held: this keeps them small whatever the peer sent."""

    at: int
    error: tuple[object, str | None] | None  # (code, message) of an error response
    outcome: _spans.Outcome | None  # of a result, for tools/call
    identity: tuple[str | None, str | None]  # (server name, protocol version) an initialize result gives


class Proxy:
    """The tracing side of the proxy: spans for the messages it sees going each way (thread-safe)."""

    def __init__(
        self,
        *,
        server_name: str | None = None,
        fallback_name: str | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        method_filter: MethodFilter | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(attr.INSTRUMENTATION_NAME, __version__, tracer_provider)
        self.tracer_provider = tracer_provider
        self.metrics = McpMetrics(meter_provider)
        self.filter = method_filter or MethodFilter.resolve(None, None)
        self.privacy = privacy or Privacy.from_env()
        self.server_name = server_name or fallback_name  # until initialize or server/discover names it
        self._explicit_name = server_name is not None
        self.protocol_version: str | None = None
        self._lock = threading.Lock()
        self._from_client: dict[str, _Pending] = {}  # requests the client sent, by id
        self._from_server: dict[str, _Pending] = {}  # requests the server sent, by id
        self._progress: dict[str, Span] = {}  # progress token -> the span of the request it reports on
        # Answers read before their request: each direction is read by its own thread after the bytes are
        # passed on, so a quick peer can answer before the request's own thread has read it.
        self._early: dict[tuple[int, str], _Answer] = {}
        self.session = self.tracer.start_span(attr.SERVER_SESSION_SPAN, context=extract_env(), kind=SpanKind.INTERNAL)
        self._session_started = time.time_ns()

    # ----------------------------------------------------------------------------------- observing

    def from_client(self, line: bytes, at: int | None = None) -> None:
        """One line the client sent the server (already forwarded), read at ``at`` (``time_ns``; now if None)."""
        self._observe(line, self._client_message, at or time.time_ns())

    def from_server(self, line: bytes, at: int | None = None) -> None:
        """One line the server sent the client (already forwarded), read at ``at`` (``time_ns``; now if None)."""
        self._observe(line, self._server_message, at or time.time_ns())

    def _observe(self, line: bytes, handle: Callable[[dict[str, Any], int], None], at: int) -> None:
        try:
            for message in messages(line):
                handle(message, at)
        except Exception:  # a message mcp_tracing cannot read must never disturb the copy
            _logger.exception("mcp_tracing wrap could not read a message")

    def _client_message(self, message: dict[str, Any], at: int) -> None:
        method = message.get("method")
        params = _params(message)
        if isinstance(method, str) and "id" in message:
            self._start(self._from_client, message["id"], method, params, SpanKind.SERVER, self._parent(params), at)
        elif isinstance(method, str):
            if method == attr.CANCELLED_NOTIFICATION:
                self._cancelled(params, at)
            self._instant(method, params, SpanKind.SERVER, self._parent(params), at)
        elif "id" in message:
            self._finish(self._from_server, message, at)

    def _server_message(self, message: dict[str, Any], at: int) -> None:
        method = message.get("method")
        params = _params(message)
        if isinstance(method, str) and "id" in message:
            self._start(self._from_server, message["id"], method, params, SpanKind.CLIENT, self._asking(params), at)
        elif isinstance(method, str):
            if method == attr.PROGRESS_NOTIFICATION:
                self._progressed(params)
            self._instant(method, params, SpanKind.CLIENT, self._asking(params), at)
        elif "id" in message:
            self._finish(self._from_client, message, at)

    # --------------------------------------------------------------------------------------- spans

    def _parent(self, params: Mapping[str, Any] | None) -> Context:
        ctx = extract_meta(params.get("_meta") if params else None)
        return ctx if ctx is not None else trace.set_span_in_context(self.session)

    def _asking(self, params: Mapping[str, Any] | None) -> Context:
        """A server's own message: its ``_meta``, else the one client request in flight, else the session."""
        ctx = extract_meta(params.get("_meta") if params else None)
        if ctx is not None:
            return ctx
        with self._lock:
            pending = list(self._from_client.values())
        if len(pending) == 1:
            return trace.set_span_in_context(pending[0].span)
        return trace.set_span_in_context(self.session)

    def _attributes(self, method: str, params: Mapping[str, Any] | None, request_id: object) -> dict[str, Any]:
        return _spans.message_attributes(
            method,
            params,
            request_id=request_id,
            protocol_version=self.protocol_version,
            transport=attr.TRANSPORT_PIPE,
            server_name=self.server_name,
        )

    def _start(
        self,
        pending: dict[str, _Pending],
        request_id: object,
        method: str,
        params: Mapping[str, Any] | None,
        kind: SpanKind,
        parent: Context,
        at: int,
    ) -> None:
        attributes = self._attributes(method, params, request_id)
        span = (
            self.tracer.start_span(
                _spans.span_name(method, params), context=parent, kind=kind, attributes=attributes, start_time=at
            )
            if self.filter.traces(method)
            else trace.INVALID_SPAN  # an excluded method: no span, but still measured
        )
        _spans.record_arguments(span, method, params, self.privacy)
        token = _progress_token(params)
        key = _key(request_id)
        measured = {k: v for k, v in attributes.items() if k != attr.JSONRPC_REQUEST_ID}  # the metric's: no id
        waiting = _Pending(span, method, _spans.target_of(method, params), measured, at, kind, token)
        with self._lock:
            pending.pop(key, None)  # a reused id: the newest request is the one its answer will answer
            pending[key] = waiting
            if token is not None:
                self._progress[token] = span
            pushed_out = pending.pop(next(iter(pending))) if len(pending) > MAX_PENDING else None
            if pushed_out is not None:
                self._progress.pop(pushed_out.progress_token or "", None)
            early = self._early.pop((id(pending), key), None)
        if pushed_out is not None:
            _fail(pushed_out.span, UNANSWERED, at)
        if early is not None:
            self._settle(waiting, early)

    def _finish(self, pending: dict[str, _Pending], message: Mapping[str, Any], at: int) -> None:
        key = _key(message.get("id"))
        with self._lock:
            found = pending.pop(key, None)
            if found is not None:
                self._progress.pop(found.progress_token or "", None)
        if found is not None:
            self._settle(found, self._answer(message, at, found.method, found.target))
            return
        answer = self._answer(message, at, None, None)  # outside the lock: it reads the whole result
        with self._lock:
            if len(self._early) >= MAX_EARLY:  # answers to requests never seen: keep the newest only
                self._early.pop(next(iter(self._early)))
            self._early[(id(pending), key)] = answer

    def _answer(self, message: Mapping[str, Any], at: int, method: str | None, tool: str | None) -> _Answer:
        """The ``_Answer`` of a response to ``method`` on ``tool`` (None, None: to a request not yet read, so
        whatever any request would need)."""
        error = message.get("error")
        if isinstance(error, Mapping):
            fields = cast(Mapping[str, Any], error)
            code, text = fields.get("code"), fields.get("message")
            code = code if isinstance(code, str | int | float | None) else type(code).__name__
            return _Answer(
                at, (code, text[: self.privacy.max_length] if isinstance(text, str) else None), None, (None, None)
            )
        result = message.get("result")
        outcome = None
        if method in (None, attr.TOOLS_CALL):
            capture = self.privacy.captures(tool) if method is not None else self.privacy.capture_content
            outcome = _spans.outcome_of(result, self.privacy, capture)
        name, version = (None, None)
        if method in (None, attr.INITIALIZE, attr.SERVER_DISCOVER):
            name, version = server_identity(result)
        return _Answer(at, None, outcome, (name and bounded(name), version and bounded(version)))

    def _settle(self, found: _Pending, answer: _Answer) -> None:
        """Ends ``found``'s span with what its answer said, and measures it."""
        span, method = found.span, found.method
        if answer.error is not None:
            code, text = answer.error
            _spans.record_error_code(span, method, code, text, self.privacy)
        else:
            if method in (attr.INITIALIZE, attr.SERVER_DISCOVER):
                self._learn(answer.identity)
                if self.server_name:
                    span.set_attribute(attr.SERVER_NAME, bounded(self.server_name))
                if self.protocol_version:
                    span.set_attribute(attr.MCP_PROTOCOL_VERSION, bounded(self.protocol_version))
            if answer.outcome is not None:
                captured = answer.outcome.content is not None and self.privacy.captures(found.target)
                _spans.record_outcome(
                    span, method, answer.outcome if captured else replace(answer.outcome, content=None)
                )
        span.end(end_time=answer.at)
        # The receiver of a request records mcp.server.operation.duration, the sender the client one.
        attributes = _spans.operation_attributes(span, found.measured, None)
        record = self.metrics.server_operation if found.kind is SpanKind.SERVER else self.metrics.client_operation
        record(max(answer.at - found.started, 0) / 1e9, attributes)

    def _instant(self, method: str, params: Mapping[str, Any] | None, kind: SpanKind, parent: Context, at: int) -> None:
        if not self.filter.traces(method):
            return
        span = self.tracer.start_span(
            _spans.span_name(method, params),
            context=parent,
            kind=kind,
            attributes=self._attributes(method, params, None),
            start_time=at,
        )
        span.end(end_time=at)

    def _cancelled(self, params: Mapping[str, Any] | None, at: int) -> None:
        request_id = params.get("requestId") if params else None
        with self._lock:
            found = self._from_client.pop(_key(request_id), None)
            if found is not None:
                self._progress.pop(found.progress_token or "", None)
        if found is not None:
            _fail(found.span, "CancelledError", at)

    def _progressed(self, params: Mapping[str, Any] | None) -> None:
        token = params.get("progressToken") if params else None
        with self._lock:
            span = self._progress.get(_key(token)) if token is not None else None
        progress = params.get("progress") if params else None
        if span is None or not isinstance(progress, int | float):
            return
        total = params.get("total") if params else None
        _spans.record_progress(span, progress, total if isinstance(total, int | float) else None)

    def _learn(self, identity: tuple[str | None, str | None]) -> None:
        name, version = identity
        if name and not self._explicit_name:
            self.server_name = name
        if version:
            self.protocol_version = version

    # ---------------------------------------------------------------------------------------- end

    def session_context(self) -> Context:
        """The context of the server's session span: its stderr lines are recorded under it."""
        return trace.set_span_in_context(self.session)

    def abandon(self) -> None:
        """Forgets the session: the server never started. Its span is never ended, so never exported."""
        self.session = trace.INVALID_SPAN

    def close(self, *, exited: bool) -> None:
        """Ends what is open (pending requests with ``error.type=server_exited`` if the server exited)."""
        with self._lock:
            pending = [*self._from_client.values(), *self._from_server.values()]
            self._from_client.clear()
            self._from_server.clear()
            self._progress.clear()
            self._early.clear()
        for found in pending:
            if exited:
                _fail(found.span, SERVER_EXITED)
            else:
                found.span.end()
        self.session.end()
        self.metrics.server_session(
            (time.time_ns() - self._session_started) / 1e9, {attr.NETWORK_TRANSPORT: attr.TRANSPORT_PIPE}
        )


def _fail(span: Span, error_type: str, at: int | None = None) -> None:
    """Ends a request's span that got no answer: ``error.type`` and an ERROR status."""
    span.set_attribute(attr.ERROR_TYPE, error_type)
    span.set_status(StatusCode.ERROR, error_type)
    span.end(end_time=at)


def _params(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    params = message.get("params")
    return cast(Mapping[str, Any], params) if isinstance(params, Mapping) else None


def _progress_token(params: Mapping[str, Any] | None) -> str | None:
    meta = params.get("_meta") if params else None
    token = cast(Mapping[str, Any], meta).get("progressToken") if isinstance(meta, Mapping) else None
    return _key(token) if isinstance(token, str | int) and not isinstance(token, bool) else None

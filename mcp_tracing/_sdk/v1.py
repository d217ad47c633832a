"""The adapter for mcp 1.x: the only module that imports mcp 1.x's own modules (type-checked against it).

Client: the session's ``send_request``/``send_notification`` (the SDK has no tracing). Server: the
server's ``_handle_message`` (requests and notifications, with the handler's context), and a watcher on
the streams ``run`` is given for what never reaches it (``initialize``, requests the session rejects).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any, cast

from mcp.client.session import ClientSession
from mcp.server.lowlevel import Server
from mcp.shared.session import RequestResponder
from mcp.types import ClientRequest, ErrorData, ServerResult
from opentelemetry.trace import Span

from mcp_tracing._core import attributes as attr
from mcp_tracing._core.client_tracer import ClientTracer
from mcp_tracing._core.logs import MCP_LOG
from mcp_tracing._core.registry import transport_of
from mcp_tracing._core.server_tracer import ServerTracer, http_info
from mcp_tracing._sdk.common import OUTBOUND, connection_tracer, is_http_session

__all__ = ["httpx_instrumentor", "install_client", "install_server", "run_server"]

_logger = logging.getLogger(__name__)


def httpx_instrumentor() -> Any:
    """OpenTelemetry's instrumentor of the HTTP client library mcp 1.x uses."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    return HTTPXClientInstrumentor


def install_client(session: object, tracer: ClientTracer) -> None:
    """Traces a 1.x ``ClientSession``."""
    if not isinstance(session, ClientSession):
        raise TypeError(f"trace_session() takes an mcp ClientSession or a fastmcp Client, not {type(session).__name__}")
    _install_v1_session(session, tracer)


def _dump(model: Any) -> dict[str, Any]:
    return cast(dict[str, Any], model.model_dump(by_alias=True, mode="json", exclude_none=True))


def _install_v1_session(session: ClientSession, tracer: ClientTracer) -> None:
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
        meta = getattr(getattr(root, "params", None), "meta", None)
        if method == MCP_LOG:
            tracer.log_notification(_v1_log_params(getattr(root, "params", None)), meta)
        with tracer.span(method, None, meta):
            return await received_notification(notification, *args, **kwargs)

    session._received_request = traced_received_request
    session._received_notification = traced_received_notification


def _v1_log_params(params: object) -> dict[str, Any] | None:
    """The fields of a 1.x ``LoggingMessageNotificationParams`` a log record takes."""
    if params is None:
        return None
    return {
        "level": getattr(params, "level", None),
        "logger": getattr(params, "logger", None),
        "data": getattr(params, "data", None),
    }


def _record_v1_responses(
    tracer: ServerTracer, responder: Any, span: Span | None, method: str, params: Mapping[str, Any] | None
) -> None:
    """Records on ``span`` what a 1.x ``RequestResponder`` answers: its result, or its error."""
    if span is None:
        return
    respond = responder.respond
    cancel = responder.cancel

    async def traced_respond(response: Any) -> None:
        if isinstance(response, ErrorData):
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
    """The same typed 1.x message with new params (``_meta`` rides in the model's extra fields).

    Only ``_meta`` differs from the message's own params: the models are copied with the new ``Meta`` in
    place (shallow, ~10 µs) instead of the whole message being validated again from a dump (~50 µs)."""
    if params is data.get("params"):
        return message
    try:
        return _with_meta(message, (params or {}).get("_meta")) or cast(Any, type(message)).model_validate(
            {**data, "params": dict(params or {})}
        )
    except Exception:
        _logger.exception("mcp_tracing could not add _meta to %s; sending it unchanged", type(message).__name__)
        return message


def _with_meta(message: Any, meta: object) -> Any:
    """``message`` (a ``ClientRequest``-style root model) with ``params.meta`` replaced, or ``None`` where its
    shape is not the one expected (then the caller validates a new one)."""
    root: Any = getattr(message, "root", None)
    old: Any = getattr(root, "params", None)
    kind: type[object] = type(cast(object, old))
    fields: object = getattr(kind, "model_fields", None)
    meta_type: Any = getattr(kind, "Meta", None)
    if root is None or meta_type is None or not isinstance(meta, Mapping) or not isinstance(fields, Mapping):
        return None
    if "meta" not in fields:
        return None
    new_meta = meta_type.model_validate(meta)  # small: the propagator's keys and the caller's own
    new_root = root.model_copy(update={"params": old.model_copy(update={"meta": new_meta})})
    return message.model_copy(update={"root": new_root})


async def run_server(
    run: Callable[..., Any], tracer: ServerTracer, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Runs the server's ``run`` on its streams wrapped in a ``_ResponseWatcher``."""
    if len(args) < 2:
        return await run(*args, **kwargs)
    watcher = _ResponseWatcher(tracer, http=is_http_session(kwargs))
    read_stream, write_stream, *rest = args
    return await run(_ReadProxy(read_stream, watcher), _WriteProxy(write_stream, watcher), *rest, **kwargs)


def install_server(lowlevel: Server[Any, Any], tracer: ServerTracer) -> None:
    """Traces a 1.x low-level server: every message its ``_handle_message`` dispatches, and what it sends."""

    handle_message = lowlevel._handle_message

    async def traced_handle_message(message: Any, session: Any, *args: Any, **kwargs: Any) -> Any:
        _trace_v1_server_outbound(session, tracer.outbound)
        if isinstance(message, RequestResponder):
            message = cast("RequestResponder[ClientRequest, ServerResult]", message)
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
    if tracer is None or session is None or getattr(session, OUTBOUND, None) is not None:
        return
    try:
        watcher = _watcher_of(session)
        http = watcher is not None and watcher.http
        connection = connection_tracer(tracer, lambda: (None, _v1_protocol_version(session)), http=http)
        _trace_v1_outbound(session, connection)
        setattr(session, OUTBOUND, connection)
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

"""``mcp-tracing collect``: an OTLP/HTTP receiver that writes what it receives into the local store.

Any process in any language that exports OTLP over HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318``)
joins the local trace: ``POST /v1/traces`` and ``POST /v1/logs`` take protobuf (``application/x-protobuf``) or
OTLP JSON (``application/json``), plain or gzip; ``/v1/metrics`` is accepted and discarded (said once). A body
it cannot read gets the OTLP error answer (400 with a ``google.rpc.Status`` in the request's encoding; 413 over
the size limit; 415 for another content type) and the receiver keeps serving. Bound to 127.0.0.1 unless told
otherwise explicitly.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mcp_tracing._serve import listen, serve_until_stopped, url
from mcp_tracing.cli.text import counted
from mcp_tracing.collect.decode import BadRequest, TooLarge, body_bytes, log_records, parse, span_records
from mcp_tracing.store import SqliteSpanExporter

__all__ = ["CONCURRENT", "DEFAULT_PORT", "MAX_BODY", "Tally", "receiver", "serve"]

_logger = logging.getLogger(__name__)

DEFAULT_PORT: Final = 4318
MAX_BODY: Final = 32 * 1024 * 1024
"""Bytes a request body may have, and what a gzip body may inflate to (the OTel SDKs batch 512 spans a
request: a few hundred KB)."""
CONCURRENT: Final = 16
"""Requests served at once; with ``MAX_BODY`` it bounds the receiver's memory for bodies (512 MiB at worst)."""
_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_INVALID_ARGUMENT: Final = 3
_UNAVAILABLE: Final = 14


def _encode(message: Message, json_body: bool) -> Response:
    if json_body:
        from google.protobuf import json_format

        return Response(json_format.MessageToJson(message, indent=None), media_type=_JSON)
    return Response(message.SerializeToString(), media_type=_PROTOBUF)


def _status(status: int, code: int, text: str, json_body: bool) -> Response:
    answer = _encode(Status(code=code, message=text), json_body)
    answer.status_code = status
    return answer


async def _read(request: Request, limit: int) -> bytes:
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise TooLarge(f"the body is over {limit} bytes")
    return bytes(received)


@dataclass
class Tally:
    """What the receiver took in, said when it stops."""

    requests: int = 0
    gzip: int = 0
    refused: int = 0
    spans: int = 0
    logs: int = 0

    def __str__(self) -> str:
        return (
            f"{counted(self.requests, 'request')} ({self.gzip:,} gzip, {self.refused:,} refused), "
            f"{counted(self.spans, 'span')} and {counted(self.logs, 'log record')} received"
        )


def receiver(store: SqliteSpanExporter, *, max_body: int = MAX_BODY) -> Starlette:
    """The receiver's ASGI app, writing into ``store``'s file.

    Args:
        store: the writer of the local store (its ``write_spans``/``write_logs`` run on a worker thread).
        max_body: the size limit of a body, compressed and inflated.
    """
    told: set[str] = set()
    tally = Tally()

    def endpoint(
        request_type: type[Message] | None, write: Callable[[Any], bool], answer: Message
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            answered = await answer_to(request)
            tally.requests += 1
            tally.gzip += request.headers.get("content-encoding", "").strip().lower() == "gzip"
            tally.refused += answered.status_code != 200
            return answered

        async def answer_to(request: Request) -> Response:
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            json_body = kind == _JSON
            if kind not in (_PROTOBUF, _JSON):
                return _status(415, _INVALID_ARGUMENT, f"unsupported Content-Type {kind!r}", False)
            try:
                data = body_bytes(await _read(request, max_body), request.headers.get("content-encoding"), max_body)
                message = parse(request_type, data, json_body) if request_type is not None else None
            except TooLarge as exc:
                return _status(413, _INVALID_ARGUMENT, str(exc), json_body)
            except BadRequest as exc:
                return _status(400, _INVALID_ARGUMENT, str(exc), json_body)
            try:
                ok = await anyio.to_thread.run_sync(write, message)
            except BadRequest as exc:
                return _status(400, _INVALID_ARGUMENT, str(exc), json_body)
            if not ok:
                return _status(503, _UNAVAILABLE, "the store could not be written; try again", json_body)
            return _encode(answer, json_body)

        return handle

    def write_spans(message: ExportTraceServiceRequest) -> bool:
        records = list(span_records(message))
        tally.spans += len(records)
        return store.write_spans(records)

    def write_logs(message: ExportLogsServiceRequest) -> bool:
        records = list(log_records(message))
        tally.logs += len(records)
        return store.write_logs(records)

    def discard_metrics(_: object) -> bool:
        if "metrics" not in told:
            told.add("metrics")
            print("mcp-tracing collect: metrics are accepted and discarded (the store keeps traces)", file=sys.stderr)
        return True

    app = Starlette(
        routes=[
            Route(
                "/v1/traces",
                endpoint(ExportTraceServiceRequest, write_spans, ExportTraceServiceResponse()),
                methods=["POST"],
            ),
            Route(
                "/v1/logs",
                endpoint(ExportLogsServiceRequest, write_logs, ExportLogsServiceResponse()),
                methods=["POST"],
            ),
            Route("/v1/metrics", endpoint(None, discard_metrics, ExportMetricsServiceResponse()), methods=["POST"]),
        ]
    )
    app.state.tally = tally
    return app


def serve(store: SqliteSpanExporter, *, host: str, port: int, max_body: int = MAX_BODY) -> int:
    """Serves the receiver until SIGTERM or SIGINT; returns the exit status.

    The socket is bound before the line saying where it listens is printed, so a sender that waits for that
    line is never refused; port 0 picks one.
    """
    listener = listen(host, port, "collect")
    if listener is None:
        return 1
    app = receiver(store, max_body=max_body)

    def stopped() -> None:
        store.shutdown()
        print(f"mcp-tracing collect: stopped; {app.state.tally}", file=sys.stderr)

    # At most CONCURRENT requests at once (others get 503 and retry, as OTLP senders do): each may hold up to
    # max_body bytes while it is read.
    announce = f"mcp-tracing collect: receiving OTLP/HTTP on {url(listener)} into {store.path}"
    return serve_until_stopped(app, listener, announce, limit_concurrency=CONCURRENT, on_stop=stopped)

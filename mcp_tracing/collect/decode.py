"""OTLP/HTTP request bodies (protobuf or JSON, gzip or not) as the store's span and log records.

The JSON form is the OTLP specification's: field names in lowerCamelCase, trace and span ids as hex strings (not
base64, as protobuf's own JSON mapping would have them), enums as numbers, 64-bit integers as strings or numbers.
Every failure is a ``BadRequest`` with a message for the sender; nothing else escapes.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from typing import Any, Final, cast

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from mcp_tracing._core.bounds import bounded
from mcp_tracing.store.records import BODY_LIMIT, LogRecord, SpanRecord

__all__ = ["BadRequest", "TooLarge", "body_bytes", "log_records", "parse", "span_records"]

_ID_FIELDS: Final = frozenset({"traceId", "spanId", "parentSpanId"})
_DEPTH_LIMIT: Final = 32
"""Nesting kept in an attribute value (arrays and key-value lists); deeper is cut to a marker."""


class BadRequest(ValueError):
    """A body that cannot be read: the receiver answers 400 with this message."""


class TooLarge(BadRequest):
    """A body, or what it decompresses to, over the limit: the receiver answers 413."""


def body_bytes(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` decompressed per ``Content-Encoding`` (``gzip`` or none), at most ``limit`` bytes of it."""
    if len(body) > limit:
        raise TooLarge(f"the body is over {limit} bytes")
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    if name != "gzip":
        raise BadRequest(f"unsupported Content-Encoding {name!r} (gzip or none)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)  # a small gzip can inflate to gigabytes: never past the limit
    except zlib.error as exc:
        raise BadRequest(f"the gzip body is corrupt ({exc})") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the body inflates to over {limit} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return data


def parse(message: type[Message], data: bytes, json_body: bool) -> Any:
    """``data`` as an OTLP ``message`` (``ExportTraceServiceRequest``, ...), from protobuf or OTLP JSON."""
    if not json_body:
        try:
            return message.FromString(data)
        except (DecodeError, ValueError, RecursionError) as exc:
            raise BadRequest(f"not an OTLP protobuf {message.DESCRIPTOR.name} ({exc})") from None
    try:
        document: object = json.loads(data)
        if not isinstance(document, dict):
            raise BadRequest("an OTLP JSON body is an object")
        converted = cast(dict[str, Any], _ids_as_base64(cast(dict[str, object], document)))
        return json_format.ParseDict(converted, message(), ignore_unknown_fields=True)
    except BadRequest:
        raise
    except (ValueError, TypeError, RecursionError, json_format.ParseError) as exc:
        raise BadRequest(f"not an OTLP JSON {message.DESCRIPTOR.name} ({exc})") from None


def _ids_as_base64(value: object) -> object:
    """OTLP JSON's hex ids as the base64 protobuf's JSON mapping reads."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in cast(dict[str, object], value).items():
            if key in _ID_FIELDS and isinstance(item, str):
                try:
                    item = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise BadRequest(f"{key} is not hex: {item[:40]!r}") from None
            out[key] = _ids_as_base64(item)
        return out
    if isinstance(value, list):
        return [_ids_as_base64(item) for item in cast(list[object], value)]
    return value


def _value(value: AnyValue, depth: int = 0) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if depth >= _DEPTH_LIMIT and kind in ("array_value", "kvlist_value"):
        return "…"
    if kind == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def _id(raw: bytes, size: int) -> str | None:
    return raw.hex() if len(raw) == size and any(raw) else None


def _origin(resource_attributes: Any) -> tuple[str | None, int | None]:
    """The service and process a resource names."""
    resource = _attributes(resource_attributes)
    service, pid = resource.get("service.name"), resource.get("process.pid")
    return (str(service) if service is not None else None), (pid if isinstance(pid, int) else None)


def span_records(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """The spans of a trace export with a valid trace and span id (others are skipped)."""
    for resource_spans in request.resource_spans:
        service, pid = _origin(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                trace_id, span_id = _id(span.trace_id, 16), _id(span.span_id, 8)
                if trace_id is None or span_id is None:
                    continue
                yield SpanRecord(
                    name=bounded(span.name, 1024),
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_id=_id(span.parent_span_id, 8),
                    kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").replace("UNSPECIFIED", "INTERNAL"),
                    start_ns=span.start_time_unix_nano,
                    end_ns=max(span.end_time_unix_nano, span.start_time_unix_nano),
                    status=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                    service=service,
                    pid=pid,
                    attributes=_attributes(span.attributes),
                    links=tuple(link.span_id.hex() for link in span.links),
                    events=tuple(event.name for event in span.events),
                )


def log_records(request: ExportLogsServiceRequest) -> Iterator[LogRecord]:
    """The log records of a logs export that belong to a trace (others are skipped: the store holds traces)."""
    for resource_logs in request.resource_logs:
        service, pid = _origin(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                trace_id = _id(record.trace_id, 16)
                if trace_id is None:
                    continue
                body = _value(record.body)
                text = body if isinstance(body, str) else json.dumps(body, default=str) if body is not None else ""
                yield LogRecord(
                    trace_id=trace_id,
                    span_id=_id(record.span_id, 8),
                    time_ns=record.time_unix_nano or record.observed_time_unix_nano,
                    severity=record.severity_number or None,
                    level=record.severity_text or _severity_name(record.severity_number),
                    logger=scope_logs.scope.name or None,
                    body=bounded(text, BODY_LIMIT),
                    service=service,
                    pid=pid,
                    attributes=_attributes(record.attributes),
                )


def _severity_name(number: int) -> str | None:
    if not number:
        return None
    try:
        return SeverityNumber.Name(number).removeprefix("SEVERITY_NUMBER_")  # pyright: ignore[reportArgumentType]
    except ValueError:
        return None

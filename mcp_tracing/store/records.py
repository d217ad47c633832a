"""Finished spans and log records as plain data, whichever process or store they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

from mcp_tracing._core.bounds import bounded

__all__ = ["BODY_LIMIT", "LogRecord", "SpanRecord", "log_record", "span_record"]

BODY_LIMIT = 8192
"""Characters of a log record's body kept; a longer one is cut and ends in ``…``."""


@dataclass(frozen=True)
class SpanRecord:
    """A finished span as plain data, whichever process it came from."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    start_ns: int
    end_ns: int
    status: str
    service: str | None
    pid: int | None
    attributes: dict[str, Any] = field(default_factory=lambda: {})
    links: tuple[str, ...] = ()
    events: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def span_record(span: ReadableSpan, pid: int | None = None) -> SpanRecord:
    """Converts an SDK span into a ``SpanRecord``."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    service = span.resource.attributes.get("service.name")
    return SpanRecord(
        name=span.name,
        trace_id=format(ctx.trace_id, "032x"),
        span_id=format(ctx.span_id, "016x"),
        parent_id=format(parent.span_id, "016x") if parent is not None else None,
        kind=span.kind.name,
        start_ns=span.start_time or 0,
        end_ns=span.end_time or 0,
        status=span.status.status_code.name,
        service=str(service) if service is not None else None,
        pid=pid,
        attributes=dict(span.attributes or {}),
        links=tuple(format(link.context.span_id, "016x") for link in span.links),
        events=tuple(event.name for event in span.events),
    )


@dataclass(frozen=True)
class LogRecord:
    """A log record that belongs to a trace: when, how severe, what, and the span it was written under."""

    trace_id: str
    span_id: str | None
    time_ns: int
    severity: int | None
    level: str | None
    logger: str | None
    body: str
    service: str | None
    pid: int | None
    attributes: dict[str, Any] = field(default_factory=lambda: {})


def log_record(item: ReadableLogRecord, pid: int | None = None) -> LogRecord | None:
    """Converts an OpenTelemetry SDK log record into a ``LogRecord``; ``None`` for one written outside any
    trace."""
    record = item.log_record
    trace_id = record.trace_id or 0
    if not trace_id:
        return None
    service = item.resource.attributes.get("service.name")
    scope = item.instrumentation_scope
    severity = record.severity_number
    body = record.body
    return LogRecord(
        trace_id=format(trace_id, "032x"),
        span_id=format(record.span_id, "016x") if record.span_id else None,
        time_ns=record.timestamp or record.observed_timestamp or 0,
        severity=severity.value if severity is not None else None,
        level=record.severity_text,
        logger=scope.name if scope is not None else None,
        body=bounded(body if isinstance(body, str) else str(body), BODY_LIMIT),
        service=str(service) if service is not None else None,
        pid=pid,
        attributes=dict(record.attributes or {}),
    )

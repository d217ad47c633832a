"""Finished spans as plain data, whichever process or store they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["SpanRecord", "span_record"]


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

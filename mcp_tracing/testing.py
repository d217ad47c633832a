"""Helpers for tests that check spans, including spans from other processes.

``JsonLinesSpanExporter`` appends one JSON object per finished span to a file, one ``write`` per span on a
file opened with ``O_APPEND``, so several processes (an agent and the stdio servers it spawns) can share
one file. ``read_spans`` reads it back.

Usage::

    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    ...
    spans = read_spans(path)
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["JsonLinesSpanExporter", "SpanRecord", "capture_spans", "read_spans", "span_record"]


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


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a JSON-lines file shared by several processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        pid = os.getpid()
        lines = "".join(json.dumps(span_record(s, pid).__dict__, default=str) + "\n" for s in spans)
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def read_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Reads every span a ``JsonLinesSpanExporter`` wrote, in file order; ``[]`` if there is no file."""
    file = Path(path)
    if not file.exists():
        return []
    out: list[SpanRecord] = []
    for line in file.read_text().splitlines():
        if line.strip():
            data = json.loads(line)
            data["links"] = tuple(data.get("links", ()))
            data["events"] = tuple(data.get("events", ()))
            out.append(SpanRecord(**data))
    return out


@contextmanager
def capture_spans() -> Generator[tuple[TracerProvider, InMemorySpanExporter], None, None]:
    """A private ``TracerProvider`` whose finished spans land in an in-memory exporter at once."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider, exporter
    finally:
        provider.shutdown()

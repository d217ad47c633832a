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
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_tracing.store.records import SpanRecord, span_record

__all__ = ["JsonLinesSpanExporter", "SpanRecord", "capture_spans", "read_spans", "span_record"]


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

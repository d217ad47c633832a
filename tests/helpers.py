"""Test helpers: spawning the probe server, collecting spans of both processes as SpanRecords."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mcp import StdioServerParameters
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mcp_tracing._compat import IS_V2
from mcp_tracing.testing import SpanRecord, read_spans, span_record

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "servers" / "probe_server.py"


def probe_params(env: Mapping[str, str] | None = None, *, python: str | None = None, traced: bool = True):
    return StdioServerParameters(
        command=python or sys.executable,
        args=[str(PROBE)],
        # The untraced baseline exports nothing, so the spans file holds the traced run's spans only.
        env={**(env or {}), "PROBE_TRACED": "1"}
        if traced
        else {**(env or {}), "PROBE_TRACED": "0", "MCP_TRACING_EXAMPLE_SPANS": ""},
    )


def all_spans(exporter: InMemorySpanExporter, spans_file: Path) -> list[SpanRecord]:
    return [span_record(s) for s in exporter.get_finished_spans()] + read_spans(spans_file)


def by_name(spans: Iterable[SpanRecord], name: str) -> list[SpanRecord]:
    return [s for s in spans if s.name == name]


def one(spans: Iterable[SpanRecord], name: str, kind: str | None = None) -> SpanRecord:
    found = [s for s in spans if s.name == name and (kind is None or s.kind == kind)]
    assert len(found) == 1, f"expected one {name!r} ({kind}), got {[(s.name, s.kind) for s in spans]}"
    return found[0]


def structured(result: Any) -> Any:
    """The structured content of a CallToolResult, on either SDK line."""
    value = getattr(result, "structured_content" if IS_V2 else "structuredContent", None)
    return value.get("result", value) if isinstance(value, dict) and set(value) == {"result"} else value


def outcome(result: Any) -> Any:
    """What a caller sees, comparable across runs: the result as JSON, or the exception's type/code/message."""
    if isinstance(result, BaseException):
        error = getattr(result, "error", None)
        return (type(result).__name__, getattr(error, "code", None), getattr(error, "message", str(result)))
    return result.model_dump(mode="json", by_alias=True)

"""Building traces by hand for the analyzers and views."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mcp_tracing._core import attributes as attr
from mcp_tracing.store import SqliteSpanExporter
from mcp_tracing.testing import SpanRecord

MS = 1_000_000
T0 = time.time_ns() - 60_000 * MS  # a minute ago: inside --since 1h


class Trace:
    """Builds one trace: times in milliseconds from its start, ids in creation order."""

    def __init__(self, trace_id: str = "a" * 32, *, t0: int = T0) -> None:
        self.trace_id = trace_id
        self.t0 = t0
        self.spans: list[SpanRecord] = []
        self._ids = itertools.count(1)

    def span(
        self,
        name: str,
        start: float,
        end: float,
        parent: SpanRecord | str | None = None,
        *,
        kind: str = "INTERNAL",
        service: str = "agent",
        pid: int = 1,
        attributes: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> SpanRecord:
        """A span from ``start`` to ``end`` ms; its attributes are ``attributes`` (keys with dots) and ``more``."""
        record = SpanRecord(
            name=name,
            trace_id=self.trace_id,
            span_id=f"{self.trace_id[:4]}{next(self._ids):012x}",
            parent_id=parent.span_id if isinstance(parent, SpanRecord) else parent,
            kind=kind,
            start_ns=self.t0 + int(start * MS),
            end_ns=self.t0 + int(end * MS),
            status="UNSET",
            service=service,
            pid=pid,
            attributes={**(attributes or {}), **more},
        )
        self.spans.append(record)
        return record

    def call(
        self,
        tool: str,
        start: float,
        end: float,
        parent: SpanRecord,
        *,
        server: str = "files",
        shape: str = "path",
        digest: str | None = None,
    ) -> SpanRecord:
        """An agent's ``tool.call`` span standing for one MCP ``tools/call`` (as mcp_tracing records it)."""
        return self.span(
            "tool.call",
            start,
            end,
            parent,
            attributes={
                attr.MCP_METHOD_NAME: attr.TOOLS_CALL,
                attr.GEN_AI_TOOL_NAME: tool,
                attr.SERVER_NAME: server,
                attr.TOOL_ARGS_SHAPE: shape,
                attr.TOOL_ARGS_HASH: digest or f"{start:032.0f}",
            },
        )

    def turn(self, start: float = 0, end: float = 200) -> SpanRecord:
        root = next((s for s in self.spans if s.parent_id is None), None) or self.span("agent.session", 0, 5000)
        return self.span("agent.turn", start, end, root)


def write(path: Path, *traces: Trace) -> None:
    exporter = SqliteSpanExporter(path)
    connection = exporter._open()  # pyright: ignore[reportPrivateUsage]
    assert connection is not None
    exporter._insert(connection, [s for t in traces for s in t.spans])  # pyright: ignore[reportPrivateUsage]
    connection.close()

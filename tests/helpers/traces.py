"""Building traces by hand for the analyzers and views."""

from __future__ import annotations

import dataclasses
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


def planted() -> Trace:
    """A turn with an N+1 (three reads) and a sequential pair, at known times (ms)."""
    t = Trace("e" * 32)
    turn = t.turn(0, 600)
    t.span("model.call", 0, 90, turn, attributes={"gen_ai.request.model": "m"})
    for i in range(3):
        t.call("read_file", 100 + 60 * i, 150 + 60 * i, turn)
    t.span("model.call", 280, 300, turn)
    t.call("query", 300, 420, turn, server="sql", shape="sql")
    t.call("search", 425, 590, turn, shape="word")
    served = t.span(
        "tools/call search <script>alert(1)</script>",  # text from spans never becomes markup
        430,
        580,
        t.spans[-1],
        kind="SERVER",
        service="files-server",
        pid=2,
    )
    t.span("fs.scan", 440, 570, served, service="files-server", pid=2)
    return t


def planted_store(path: Path) -> dict[str, Trace]:
    """Four traces: a quick one with a request id, a slow one, one with an error, one from two days ago."""
    quick = Trace("1" * 32)
    quick.span("quick", 0, 20, request_id="req-42")
    slow = Trace("2" * 32)
    slow.span("slow", 0, 3000, attributes={"mcp_tracing.session.total_cost_estimate": 2.5})
    failing = Trace("3" * 32)
    span = failing.span("failing", 0, 50, attributes={"jsonrpc.request.id": 7})
    failing.spans[0] = dataclasses.replace(span, status="ERROR")
    old = Trace("4" * 32, t0=time.time_ns() - 2 * 86400 * 10**9)
    old.span("old", 0, 10)
    write(path, quick, slow, failing, old)
    return {"quick": quick, "slow": slow, "failing": failing, "old": old}

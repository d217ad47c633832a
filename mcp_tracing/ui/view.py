"""What the trace view shows, as plain data: the one input of the page's renderer (``ui/assets/trace.js``),
whether the page is served by ``mcp-tracing ui`` or written by ``show --html``.

Spans come in tree order with their depth; times are nanoseconds from the trace's start (absolute ones lose
precision as JavaScript numbers). The data goes into the page as ``shown_json``, which makes every control and
bidi character visible as an escape; the page only ever puts a value in as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from mcp_tracing._core import attributes as attr
from mcp_tracing.cli.text import terminal_safe
from mcp_tracing.cli.tree import tree_order
from mcp_tracing.store.critical import critical_path
from mcp_tracing.store.patterns import LABELS, Finding, flagged, lost_halves
from mcp_tracing.store.records import LogRecord, SpanRecord

__all__ = ["PALETTE_SIZE", "shown_json", "trace_view"]

PALETTE_SIZE: Final = 10
"""Colours the page has for services, given in order of first appearance; an eleventh service reuses the first."""


_ESCAPE: Final = re.compile(r"(\\+)(u([0-9a-fA-F]{4})|[bfr])")
"""A run of backslashes then ``uXXXX``, ``b``, ``f`` or ``r``: a JSON escape when the run is odd (its last backslash
starts the escape; the ones before are escaped backslashes). Starting with a literal character, it is scanned for
quickly."""
_SHORT: Final = {"b": 0x08, "f": 0x0C, "r": 0x0D}
_KEPT: Final = frozenset({0x09, 0x0A})
"""Tab and newline stay as they are: harmless as page text, and a log record's lines read as lines."""


def _visible_escape(match: re.Match[str]) -> str:
    run = match.group(1)
    if len(run) % 2 == 0:  # escaped backslashes, then plain text
        return match.group(0)
    code = int(match.group(3), 16) if match.group(3) else _SHORT[match.group(2)]
    shown = terminal_safe(chr(code))
    if code in _KEPT or shown == chr(code):
        return match.group(0)
    return run[:-1] + shown.replace("\\", "\\\\")  # the escape's backslash, itself escaped in JSON


def shown_json(value: object) -> str:
    """``value`` as JSON to put inside an HTML ``<script>`` element, read back as the page will show it: every
    control and bidi character a string holds (keys too) reads as its visible escape (``\\x1b``, ``\\u202e``),
    as on the terminal, so a right-to-left override in a tool name cannot reverse what follows it on the page
    (``exe.png`` shown for ``\\u202egnp.exe``); ``<``, ``>`` and ``&`` are escaped so no value can end the element.

    Done on the JSON text, not value by value: a 5,000-span trace's data holds some 150,000 strings.
    """
    text = json.dumps(value, default=str, ensure_ascii=True)  # every character outside ASCII as \\uXXXX
    text = _ESCAPE.sub(_visible_escape, text).replace("\x7f", "\\\\x7f")  # DEL is ASCII: JSON leaves it raw
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _hint(span: SpanRecord) -> str:
    """The tool or server a span is about, when its name does not say it (``tool.call`` -> ``read_file@files``)."""
    tool = span.attributes.get(attr.GEN_AI_TOOL_NAME)
    if not tool or str(tool) in span.name:
        return ""
    server = span.attributes.get(attr.SERVER_NAME)
    return f"{tool}@{server}" if server else str(tool)


def _log(record: LogRecord, start: int) -> dict[str, Any]:
    return {
        "time": record.time_ns - start,
        "level": record.level or "",
        "logger": record.logger or "",
        "body": record.body,
        "service": record.service or "",
        "attributes": record.attributes,
    }


def trace_view(
    spans: Sequence[SpanRecord],
    findings: Sequence[Finding] = (),
    logs: Sequence[LogRecord] = (),
    *,
    links: Mapping[str, str] | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """The data of one trace's page.

    Args:
        spans: the trace's spans, any order.
        findings: ``analyze``'s findings in the trace (marked on their spans and listed with their suggestion
            and cost).
        logs: the trace's log records; each is shown with its span (or with the trace, when its span is not
            stored).
        links: the page's own links by name, for the served page (none in a file): ``list`` the trace list,
            ``json`` this trace as JSON, ``version`` the store's version and ``summary`` this trace's row of the
            list (what the page polls to say more of the trace arrived).
        version: the store's version the spans were read at (``TraceStore.version``), with ``links``.
    """
    rows = tree_order(spans)
    start = min((s.start_ns for s in spans), default=0)
    end = max((s.end_ns for s in spans), default=0)
    services: dict[str, int] = {}
    for span, _ in rows:
        services.setdefault(span.service or "", len(services))
    written: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s.span_id for s in spans}
    for record in logs:
        written.setdefault(record.span_id if record.span_id in ids else None, []).append(_log(record, start))
    flags = flagged(findings)
    data: dict[str, Any] = {
        "trace_id": spans[0].trace_id if spans else "",
        "start_unix_ns": str(start),
        "duration": max(end - start, 0),
        "processes": len({(s.service, s.pid) for s in spans}),
        "services": [{"name": name, "colour": number % PALETTE_SIZE} for name, number in services.items()],
        "spans": [
            {
                "id": s.span_id,
                "parent": s.parent_id,
                "name": s.name,
                "kind": s.kind,
                "status": s.status,
                "service": services[s.service or ""],
                "pid": s.pid,
                "start": s.start_ns - start,
                "end": max(s.end_ns, s.start_ns) - start,
                "depth": depth,
                "hint": _hint(s),
                "attributes": s.attributes,
                "events": list(s.events),
                "links": list(s.links),
                "flags": flags.get(s.span_id, []),
                "logs": written.get(s.span_id, []),
            }
            for s, depth in rows
        ],
        "orphan_logs": written.get(None, []),
        "findings": [
            {
                "kind": f.kind,
                "label": LABELS[f.kind],
                "summary": f.summary,
                "suggestion": f.suggestion,
                "time_ms": f.time_ms,
                "span_ids": list(f.span_ids),
            }
            for f in findings
        ],
        "critical": [[c.span_id, c.start_ns - start, c.end_ns - start] for c in critical_path(spans)],
        "lost": [half.describe() for half in lost_halves(spans)],
        "links": dict(links or {}),
        "version": version,
    }
    return data

"""Log records as text: under their spans in ``show``, and in time order with their span path in ``logs``."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from mcp_tracing.cli.terminal import ERROR, FINDING, Line, Screen
from mcp_tracing.cli.text import terminal_safe
from mcp_tracing.store.records import LogRecord, SpanRecord

__all__ = ["by_span", "log_line", "nested_prefix", "print_logs"]

_TREE_GLYPHS = "│├└─ "


def by_span(logs: Sequence[LogRecord]) -> dict[str | None, list[LogRecord]]:
    """The records of each span id, in time order (``None``: written with no span)."""
    grouped: dict[str | None, list[LogRecord]] = defaultdict(list)
    for record in logs:
        grouped[record.span_id].append(record)
    return grouped


def nested_prefix(tree_line: str) -> str:
    """The indentation of a line nested under ``tree_line``'s span: its tree prefix continued, and two more."""
    label_at = len(tree_line) - len(tree_line.lstrip(_TREE_GLYPHS))
    prefix = tree_line[:label_at].replace("├── ", "│   ").replace("└── ", "    ")
    return prefix + "  "


def _text(record: LogRecord) -> str:
    """The first line of the message (``…`` when there are more), or what is known of one not recorded."""
    if not record.body and "mcp_tracing.log.size" in record.attributes:
        return f"({record.attributes['mcp_tracing.log.size']} bytes; the text is not recorded by default)"
    lines = record.body.splitlines() or [""]
    return lines[0] + (" …" if len(lines) > 1 else "")


def _level(record: LogRecord) -> str:
    """The record's level; ``stderr`` for a line a server wrote there (it has none)."""
    return record.level or ("stderr" if record.attributes.get("mcp_tracing.log.source") == "stderr" else "-")


def log_line(prefix: str, record: LogRecord, colour: bool) -> Line:
    """``prefix`` then ``· LEVEL logger: message`` (the first line of it), escaped for the terminal."""
    level = _level(record)
    logger = terminal_safe(record.logger or "-")
    line = Line(f"{prefix}· {terminal_safe(level)} {logger}: {terminal_safe(_text(record))}")
    if colour and (record.severity or 0) >= 17:  # OpenTelemetry's ERROR and above
        return line.style_words([(terminal_safe(level), ERROR)])
    if colour and (record.severity or 0) >= 13:  # WARN
        return line.style_words([(terminal_safe(level), FINDING)])
    return line


def _clock(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def print_logs(
    trace_id: str, spans: Sequence[SpanRecord], logs: Sequence[LogRecord], as_json: bool, width: int | None
) -> None:
    """``mcp-tracing logs``: every record of the trace in time order, with its ids and the path of names from the
    trace's root to its span."""
    if as_json:
        print(json.dumps([record.__dict__ for record in logs], indent=2, default=str))
        return
    by_id = {span.span_id: span for span in spans}
    screen = Screen(width)
    noun = "log record" if len(logs) == 1 else "log records"
    screen.line(f"trace {trace_id}: {len(logs):,} {noun}")
    for record in logs:
        path: list[str] = []
        span = by_id.get(record.span_id or "")
        while span is not None and len(path) < 64:
            path.append(span.name)
            span = by_id.get(span.parent_id or "")
        where = " › ".join(reversed(path)) if path else "(span not in the store)"
        screen.line(
            f"{_clock(record.time_ns)} {terminal_safe(_level(record)):<8} {terminal_safe(record.service or '-')} "
            f"{terminal_safe(record.logger or '-')}: {terminal_safe(_text(record))}"
        )
        screen.line(f"    span {record.span_id or '-'} in {terminal_safe(where)}")

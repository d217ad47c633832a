"""What the store keeps beside the spans so the incident workflow's questions are answered from indexes: a
summary row per trace, the distinct searchable attribute values of each trace, and the span count.

Written in the same transaction as the spans they describe (``write``), so a reader never sees one without
the other. Every span attribute with a text or number value is indexed, except the payload keys below (tool
arguments and results, stack traces): ``--where`` on any other key reads the index. Text is indexed up to
``TEXT_LIMIT`` characters; a longer value is kept as its first ``TEXT_LIMIT + 1`` characters, so it never
equals a shorter one, and a filter on a longer value reads the spans themselves.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final

from mcp_tracing._core import attributes as attr
from mcp_tracing.store.records import SpanRecord

__all__ = [
    "NOT_INDEXED",
    "TEXT_LIMIT",
    "KeyNumbers",
    "add_log_count",
    "add_span_count",
    "indexed_value",
    "log_count",
    "span_count",
    "summarize",
    "write",
]

TEXT_LIMIT: Final = 256
"""Characters of a text value the index holds."""

NOT_INDEXED: Final = frozenset(
    {
        attr.GEN_AI_TOOL_CALL_ARGUMENTS,
        attr.GEN_AI_TOOL_CALL_RESULT,
        "exception.stacktrace",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
    }
)
"""Payloads, not things to search by: bulky, and recorded only where the user opted in."""

_INT64: Final = 2**63

SUMMARY: Final = """
INSERT INTO traces (trace_id, start_ns, end_ns, spans, errors, services, root)
SELECT ?1, min(s.start_ns), max(s.end_ns), count(*), total(s.status = 'ERROR'),
    coalesce((SELECT group_concat(service, ',') FROM (SELECT DISTINCT service FROM spans
        WHERE trace_id = ?1 AND service IS NOT NULL AND service != '' ORDER BY service)), ''),
    (SELECT r.name FROM spans r WHERE r.trace_id = ?1 ORDER BY (r.parent_id IS NOT NULL
        AND r.parent_id IN (SELECT p.span_id FROM spans p WHERE p.trace_id = ?1)), r.start_ns LIMIT 1)
FROM spans s WHERE s.trace_id = ?1
ON CONFLICT (trace_id) DO UPDATE SET start_ns = excluded.start_ns, end_ns = excluded.end_ns,
    spans = excluded.spans, errors = excluded.errors, services = excluded.services, root = excluded.root
"""
"""One trace's summary, recomputed from its stored spans (its primary-key range): the root is the earliest
span whose parent is not in the store, as ``mcp-tracing traces`` has always named it."""

_CHUNK: Final = 400
"""Host parameters per ``IN (...)``: well under SQLite's lowest limit (999)."""


def indexed_value(value: object) -> int | float | str | None:
    """The value the index holds for an attribute value, or ``None`` for one it does not hold (booleans,
    sequences, numbers SQLite cannot hold, which ``--where`` never matched)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value if len(value) <= TEXT_LIMIT else value[: TEXT_LIMIT + 1]
    if isinstance(value, int):
        return value if -_INT64 <= value < _INT64 else None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


class KeyNumbers:
    """Attribute keys to their numbers in ``attribute_keys``, cached per connection (keys are few)."""

    def __init__(self) -> None:
        self._numbers: dict[str, int] = {}

    def of(self, connection: sqlite3.Connection, keys: Iterable[str]) -> dict[str, int]:
        missing = [key for key in set(keys) if key not in self._numbers]
        if missing:
            connection.executemany("INSERT OR IGNORE INTO attribute_keys (key) VALUES (?)", [(k,) for k in missing])
            for chunk in _chunks(missing):
                marks = ",".join("?" * len(chunk))
                for key_no, key in connection.execute(
                    f"SELECT key_no, key FROM attribute_keys WHERE key IN ({marks})", chunk
                ):
                    self._numbers[key] = key_no
        return self._numbers

    def forget(self) -> None:
        """After a rollback: numbers handed out in it may not exist."""
        self._numbers.clear()


def summarize(connection: sqlite3.Connection, trace_ids: Sequence[str]) -> dict[str, int]:
    """Recomputes the summaries of ``trace_ids`` and returns their trace numbers."""
    connection.executemany(SUMMARY, [(trace_id,) for trace_id in trace_ids])
    numbers: dict[str, int] = {}
    for chunk in _chunks(trace_ids):
        marks = ",".join("?" * len(chunk))
        numbers.update(
            connection.execute(f"SELECT trace_id, trace_no FROM traces WHERE trace_id IN ({marks})", chunk).fetchall()
        )
    return numbers


def write(connection: sqlite3.Connection, records: Sequence[SpanRecord], keys: KeyNumbers) -> None:
    """Everything beside the spans for a batch just inserted, in the caller's transaction."""
    trace_ids = list(dict.fromkeys(record.trace_id for record in records))
    before = _stored(connection, trace_ids)
    numbers = summarize(connection, trace_ids)
    add_span_count(connection, _stored(connection, trace_ids) - before)
    key_numbers = keys.of(connection, (key for record in records for key in record.attributes))
    rows: set[tuple[int, int | float | str, int]] = set()
    for record in records:
        trace_no = numbers[record.trace_id]
        for key, value in record.attributes.items():
            held = indexed_value(value) if key not in NOT_INDEXED else None
            if held is not None:
                rows.add((key_numbers[key], held, trace_no))
    connection.executemany("INSERT OR IGNORE INTO attributes (key_no, value, trace_no) VALUES (?,?,?)", rows)


def span_count(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT value FROM meta WHERE key = 'spans'").fetchone()
    return int(row[0]) if row is not None else 0


def log_count(connection: sqlite3.Connection) -> int:
    """The stored log records (``meta.logs``, kept on write and on delete)."""
    row = connection.execute("SELECT value FROM meta WHERE key = 'logs'").fetchone()
    return int(row[0]) if row is not None else 0


def add_log_count(connection: sqlite3.Connection, delta: int) -> None:
    if delta:
        connection.execute(
            "INSERT INTO meta VALUES ('logs', ?) ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
            (delta, delta),
        )


def add_span_count(connection: sqlite3.Connection, delta: int) -> None:
    if delta:
        connection.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = 'spans'", (delta,))


def _stored(connection: sqlite3.Connection, trace_ids: Sequence[str]) -> int:
    total = 0
    for chunk in _chunks(trace_ids):
        marks = ",".join("?" * len(chunk))
        (count,) = connection.execute(f"SELECT total(spans) FROM traces WHERE trace_id IN ({marks})", chunk).fetchone()
        total += int(count)
    return total


def _chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[index : index + _CHUNK] for index in range(0, len(items), _CHUNK)]

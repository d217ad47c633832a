"""Retention: whole traces go, oldest first, found by the summaries' start index and deleted by key ranges, a
bounded number per transaction so writers in other processes get the store in between.

A trace with half its spans would draw as broken propagation, so nothing smaller than a trace is deleted. A
trace is old when it started before the age cutoff. The span cap is checked against ``meta.spans`` (kept on
write), so a pass over a store under its cap is one read, not a scan. A trace's log records go with it; log
records of traces with no spans here go when they are older than the cutoff.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from mcp_tracing.store._index import add_log_count, add_span_count, log_count, span_count
from mcp_tracing.store._sqlite import retry, transaction

__all__ = ["apply"]

_TRACES_PER_TRANSACTION: Final = 200


def apply(connection: sqlite3.Connection, *, cutoff_ns: int, max_spans: int) -> int:
    """Deletes traces started before ``cutoff_ns``, then the oldest until at most ``max_spans`` spans and log
    records together are stored (then, if log records of no stored trace still pass it, the oldest of those).
    Returns how many spans went."""
    retry(lambda: _old_logs(connection, cutoff_ns))
    if not retry(lambda: _due(connection, cutoff_ns, max_spans)):  # a read: no write lock for nothing to do
        return 0
    deleted = 0
    while True:
        gone = retry(lambda: _one_transaction(connection, cutoff_ns, max_spans))
        if not gone:
            retry(lambda: _excess_logs(connection, max_spans))
            return deleted
        deleted += gone


def _excess_logs(connection: sqlite3.Connection, max_spans: int) -> None:
    excess = span_count(connection) + log_count(connection) - max_spans
    if excess > 0:
        _delete_logs(connection, "SELECT rowid FROM logs ORDER BY time_ns LIMIT ?", excess)


def _delete_logs(connection: sqlite3.Connection, rows: str, *args: object) -> None:
    """Deletes the log records ``rows`` selects, keeping ``meta.logs``, in one transaction."""
    with transaction(connection):
        before = connection.total_changes
        connection.execute(f"DELETE FROM logs WHERE rowid IN ({rows})", args)
        add_log_count(connection, -(connection.total_changes - before))


def _old_logs(connection: sqlite3.Connection, cutoff_ns: int) -> None:
    """Log records older than the cutoff whose trace has no spans here (the others go with their trace)."""
    if connection.execute("SELECT 1 FROM logs WHERE time_ns < ? LIMIT 1", (cutoff_ns,)).fetchone() is None:
        return
    _delete_logs(
        connection, "SELECT rowid FROM logs WHERE time_ns < ? LIMIT ?", cutoff_ns, _TRACES_PER_TRANSACTION * 50
    )


def _due(connection: sqlite3.Connection, cutoff_ns: int, max_spans: int) -> bool:
    if span_count(connection) + log_count(connection) > max_spans:
        return True
    return connection.execute("SELECT 1 FROM traces WHERE start_ns < ? LIMIT 1", (cutoff_ns,)).fetchone() is not None


def _one_transaction(connection: sqlite3.Connection, cutoff_ns: int, max_spans: int) -> int:
    with transaction(connection):
        return _delete(connection, _doomed(connection, cutoff_ns, max_spans))


def _doomed(connection: sqlite3.Connection, cutoff_ns: int, max_spans: int) -> list[tuple[int, str, int]]:
    """Up to ``_TRACES_PER_TRANSACTION`` traces to delete now: the old ones, else the oldest over the cap."""
    old = connection.execute(
        "SELECT trace_no, trace_id, spans FROM traces WHERE start_ns < ? ORDER BY start_ns LIMIT ?",
        (cutoff_ns, _TRACES_PER_TRANSACTION),
    ).fetchall()
    if old:
        return old
    excess = span_count(connection) + log_count(connection) - max_spans
    doomed: list[tuple[int, str, int]] = []
    if excess <= 0:
        return doomed
    for row in connection.execute(
        "SELECT trace_no, trace_id, spans FROM traces ORDER BY start_ns LIMIT ?", (_TRACES_PER_TRANSACTION,)
    ):
        doomed.append(row)
        (logs,) = connection.execute("SELECT count(*) FROM logs WHERE trace_id = ?", (row[1],)).fetchone()
        excess -= row[2] + logs  # its records go with it
        if excess <= 0:
            break
    return doomed


def _delete(connection: sqlite3.Connection, doomed: list[tuple[int, str, int]]) -> int:
    if not doomed:
        return 0
    numbers = [(row[0],) for row in doomed]
    connection.executemany("DELETE FROM spans WHERE trace_id = ?", [(row[1],) for row in doomed])
    connection.executemany("DELETE FROM attributes WHERE trace_no = ?", numbers)
    connection.executemany("DELETE FROM traces WHERE trace_no = ?", numbers)
    before = connection.total_changes
    connection.executemany("DELETE FROM logs WHERE trace_id = ?", [(row[1],) for row in doomed])
    add_log_count(connection, -(connection.total_changes - before))
    spans = sum(row[2] for row in doomed)
    add_span_count(connection, -spans)
    return spans

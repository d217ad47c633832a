"""Format 1 (spans only) to format 2 (``_sqlite.SCHEMA``), in place: the new tables are created by whoever
opens the file first; the summaries and the attribute index of the spans already there are filled here, trace by
trace in bounded transactions (writers keep writing in between), resumable: a process that stops half-way
leaves a mark, and the next one carries on from it. ``mcp-tracing`` migrates on open with progress on stderr;
an exporter that finds an old store migrates it on a thread of its own, never in its export path.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from typing import Final

from mcp_tracing.store._index import KeyNumbers, write
from mcp_tracing.store._sqlite import FORMAT, retry, store_format, transaction
from mcp_tracing.store.records import SpanRecord

__all__ = ["holds_spans", "migrate", "needs_migration"]

_TRACES_PER_TRANSACTION: Final = 500
_lock = threading.Lock()  # one migration per process, whichever object started it

Progress = Callable[[int, int], None]
"""Called with (traces done, traces in all) after each transaction."""


def needs_migration(connection: sqlite3.Connection) -> bool:
    return store_format(connection) != FORMAT


def holds_spans(connection: sqlite3.Connection) -> bool:
    """Whether there is anything to migrate: a new file has no span yet, and is only marked."""
    return retry(lambda: connection.execute("SELECT 1 FROM spans LIMIT 1").fetchone()) is not None


def migrate(connection: sqlite3.Connection, progress: Progress | None = None) -> None:
    """Fills the summaries and the index of every trace stored before format 2, then marks the store format 2.

    Raises:
        sqlite3.Error: the store could not be read or written (nothing half-done is left: each transaction
            is whole, and the next open resumes).
    """
    with _lock:
        if not needs_migration(connection):
            return
        if not holds_spans(connection):
            retry(lambda: _mark_done(connection))  # a new file: nothing to migrate
            return
        total = connection.execute("SELECT count(DISTINCT trace_id) FROM spans").fetchone()[0]
        keys = KeyNumbers()
        done = 0
        while True:
            moved = retry(lambda: _one_transaction(connection, keys))
            if moved is None:
                break
            done += moved
            if progress is not None:
                progress(min(done, total), total)
        retry(lambda: _mark_done(connection))


def _one_transaction(connection: sqlite3.Connection, keys: KeyNumbers) -> int | None:
    with transaction(connection, undo=keys.forget):
        row = connection.execute("SELECT value FROM meta WHERE key = 'migrated_through'").fetchone()
        after = str(row[0]) if row is not None else ""
        trace_ids = [
            r[0]
            for r in connection.execute(
                "SELECT DISTINCT trace_id FROM spans WHERE trace_id > ? ORDER BY trace_id LIMIT ?",
                (after, _TRACES_PER_TRANSACTION),
            )
        ]
        if not trace_ids:
            return None  # (a transaction that wrote nothing: committing it is ending it)
        records = [
            SpanRecord(
                name="",
                trace_id=trace_id,
                span_id="",
                parent_id=None,
                kind="",
                start_ns=0,
                end_ns=0,
                status="",
                service=None,
                pid=None,
                attributes=json.loads(attributes),
            )
            for trace_id in trace_ids
            for (attributes,) in connection.execute("SELECT attributes FROM spans WHERE trace_id = ?", (trace_id,))
        ]
        write(connection, records, keys)  # a trace a format 2 writer summarized already is recomputed alike
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('migrated_through', ?)", (trace_ids[-1],))
    return len(trace_ids)


def _mark_done(connection: sqlite3.Connection) -> None:
    with transaction(connection):
        (spans,) = connection.execute("SELECT total(spans) FROM traces").fetchone()
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('spans', ?)", (str(int(spans)),))
        connection.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
        connection.execute("DELETE FROM meta WHERE key = 'migrated_through'")

"""SqliteSpanExporter: writes finished spans to the store, with retention; SqliteLogExporter, the log records
written under them, through the same connection."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mcp_tracing._core import settings
from mcp_tracing._core.paths import absolute
from mcp_tracing.store._index import KeyNumbers, add_log_count, write as write_index
from mcp_tracing.store._migrate import holds_spans, migrate, needs_migration
from mcp_tracing.store._retention import apply as apply_retention
from mcp_tracing.store._sqlite import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_SPANS,
    MAX_AGE_ENV,
    MAX_SPANS_ENV,
    SCHEMA,
    connect,
    default_store_path,
    parse_duration,
    retry,
    transaction,
    user_store,
)
from mcp_tracing.store.records import LogRecord, SpanRecord, log_record, span_record

__all__ = ["SqliteLogExporter", "SqliteSpanExporter", "store_for_children"]

_logger = logging.getLogger(__name__)

_RETENTION_EVERY: Final = 1_000
"""Spans a writer writes between two retention checks (a check under the cap is one read)."""

_writing: list[SqliteSpanExporter] = []
"""The exporters of this process not shut down, oldest first."""


def store_for_children(environ: Mapping[str, str] | None = None) -> Path:
    """The store a process started from this one must write to: the file this process's
    ``SqliteSpanExporter`` writes (the latest made and not shut down), else ``default_store_path(environ)``."""
    if environ is None and _writing:
        return _writing[-1].path
    return default_store_path(environ)


class SqliteSpanExporter(SpanExporter):
    """Writes finished spans to the local store; use it with a ``BatchSpanProcessor``.

    Args:
        path: the store file; ``default_store_path()`` when omitted. Made absolute at once, so processes
            this one starts are told the same file (``store_for_children``).

    Export never raises. A store that cannot be opened (a path the spawner chose that this process cannot
    write, a file that is not a store) is said once on stderr, with the file written instead: the default
    store of this process, when the failing one was not already that. A failure to write is logged once per
    cause and reported as ``SpanExportResult.FAILURE``.

    Registered as the ``mcp_tracing`` traces exporter (and ``SqliteLogExporter`` as the logs one), for
    ``opentelemetry-instrument --traces_exporter mcp_tracing`` (or ``OTEL_TRACES_EXPORTER=mcp_tracing``).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = absolute(path) if path is not None else default_store_path()
        _writing.append(self)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._unusable = False
        self._written = 0
        self._max_age_s = settings.number(
            MAX_AGE_ENV, parse_duration(DEFAULT_MAX_AGE), parse=parse_duration, expected="a duration (7d, 12h, 30m)"
        )
        self._max_spans = settings.number(MAX_SPANS_ENV, DEFAULT_MAX_SPANS, parse=int, expected="a positive count")
        self._failures: set[str] = set()
        self._keys = KeyNumbers()

    def _open(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._unusable:
            try:
                self._connection = self.connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                fallback = user_store()
                reason = _reason(exc)
                if fallback == self.path:
                    self._give_up(reason)
                    return None
                _logger.warning(
                    "mcp_tracing: cannot open the trace store %s (%s); writing this process's spans to %s instead",
                    self.path,
                    reason,
                    fallback,
                )
                self.path = fallback
                try:
                    self._connection = self.connect(self.path)
                except (OSError, sqlite3.Error) as again:
                    self._give_up(_reason(again))
        return self._connection

    def _give_up(self, reason: str) -> None:
        self._unusable = True
        _logger.warning(
            "mcp_tracing: cannot open the trace store %s (%s); this process's spans are not stored", self.path, reason
        )

    def connect(self, path: Path) -> sqlite3.Connection:
        connection = connect(path, create=True)
        try:
            retry(lambda: connection.execute("PRAGMA journal_mode = WAL"))
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a crash of the process loses
            # nothing committed, a power cut at most the last batches. An fsync per batch was a third of the
            # export thread's time.
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA mmap_size = 268435456")
            connection.execute("PRAGMA cache_size = -16384")
            connection.execute("PRAGMA wal_autocheckpoint = 10000")
            retry(lambda: connection.executescript(SCHEMA))
            if needs_migration(connection):
                if holds_spans(connection):
                    _migrate_aside(path)
                else:
                    migrate(connection)  # a new file: only marked
        except BaseException:
            connection.close()
            raise
        self._apply_retention(connection)
        return connection

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        pid = os.getpid()
        records = [span_record(span, pid) for span in spans]
        return SpanExportResult.SUCCESS if self.write_spans(records) else SpanExportResult.FAILURE

    def write_spans(self, records: Sequence[SpanRecord]) -> bool:
        """Writes spans received as records (``mcp-tracing collect``) as ``export`` writes its own; never
        raises."""
        return self._write(records, "spans", self._insert)

    def write_logs(self, records: Sequence[LogRecord]) -> bool:
        """Writes log records into the store this exporter writes (``SqliteLogExporter``); never raises."""
        rows = [_log_row(record) for record in records]

        def insert(connection: sqlite3.Connection, _: object) -> None:
            with transaction(connection):
                connection.executemany("INSERT INTO logs VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                add_log_count(connection, len(rows))  # retention's cap counts them with the spans

        return self._write(records, "log records", insert)

    def _write(self, records: Sequence[Any], what: str, insert: Any) -> bool:
        try:
            with self._lock:
                connection = self._open()
                if connection is None:
                    return False
                retry(lambda: insert(connection, records))
                self._written += len(records)
                if self._written >= _RETENTION_EVERY:
                    self._written = 0
                    self._apply_retention(connection)
        except Exception as exc:
            reason = _reason(exc)
            if reason not in self._failures:  # once per cause: a full disk would otherwise log every batch
                self._failures.add(reason)
                _logger.warning("mcp_tracing: could not write %d %s to %s (%s)", len(records), what, self.path, reason)
            return False
        return True

    def _insert(self, connection: sqlite3.Connection, records: Sequence[SpanRecord]) -> None:
        """The spans, their traces' summaries and their index entries, in one transaction."""
        rows = [_row(record) for record in records]
        with transaction(connection, undo=self._keys.forget):
            connection.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            write_index(connection, records, self._keys)

    def _apply_retention(self, connection: sqlite3.Connection) -> None:
        try:
            cutoff = time.time_ns() - int(self._max_age_s * 1e9)
            apply_retention(connection, cutoff_ns=cutoff, max_spans=int(self._max_spans))
        except sqlite3.Error:
            _logger.warning("mcp_tracing could not apply retention to %s", self.path, exc_info=True)

    def shutdown(self) -> None:
        if self in _writing:
            _writing.remove(self)
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class SqliteLogExporter(LogRecordExporter):
    """Writes the log records of a trace (those with a trace id) into the store ``spans`` writes, over its
    connection, so spans and logs of a process always land in one file; use it with a
    ``BatchLogRecordProcessor``. Records written outside any trace are not kept (the store holds traces).

    Export never raises; a failure is logged once per cause, as for spans.
    """

    def __init__(self, spans: SqliteSpanExporter | None = None) -> None:
        self.spans = spans if spans is not None else (_writing[-1] if _writing else SqliteSpanExporter())
        """The span exporter whose store (and connection) the records go to: by default this process's, else a
        writer of the default store (``opentelemetry-instrument --logs_exporter mcp_tracing``)."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        pid = os.getpid()
        records = [r for r in (log_record(item, pid) for item in batch) if r is not None]
        if not records or self.spans.write_logs(records):
            return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        """The span exporter owns the connection and closes it."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _migrate_aside(path: Path) -> None:
    """Migrates a format 1 store on a thread of its own (its own connection), never in the export path: a
    large store takes seconds to index, and a blocked exporter drops the app's spans."""

    def run() -> None:
        try:
            connection = connect(path, create=False)
            try:
                migrate(connection)
            finally:
                connection.close()
        except (OSError, sqlite3.Error) as exc:
            _logger.warning("mcp_tracing could not migrate the trace store %s (%s)", path, _reason(exc))

    threading.Thread(target=run, name="mcp-tracing-store-migration", daemon=True).start()


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


_JSON: Final = json.JSONEncoder(default=str)
"""Built once: ``json.dumps`` with options builds an encoder per call."""
_EMPTY: Final = "[]"


def _row(record: SpanRecord) -> tuple[Any, ...]:
    return (
        record.trace_id,
        record.span_id,
        record.parent_id,
        record.name,
        record.kind,
        record.start_ns,
        record.end_ns,
        record.status,
        record.service,
        record.pid,
        _JSON.encode(record.attributes),
        _JSON.encode(list(record.links)) if record.links else _EMPTY,
        _JSON.encode(list(record.events)) if record.events else _EMPTY,
    )


def _log_row(record: LogRecord) -> tuple[Any, ...]:
    return (
        record.trace_id,
        record.span_id,
        record.time_ns,
        record.severity,
        record.level,
        record.logger,
        record.body,
        record.service,
        record.pid,
        _JSON.encode(record.attributes),
    )

"""SqliteSpanExporter: writes finished spans to the store, with retention."""

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

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mcp_tracing._core import settings
from mcp_tracing._core.paths import absolute
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
    user_store,
)
from mcp_tracing.store.records import SpanRecord, span_record

__all__ = ["SqliteSpanExporter", "store_for_children"]

_logger = logging.getLogger(__name__)

_RETENTION_EVERY: Final = 5_000

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

    Registered as the ``mcp_tracing`` traces exporter, for ``opentelemetry-instrument --traces_exporter
    mcp_tracing`` (or ``OTEL_TRACES_EXPORTER=mcp_tracing``).
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
            retry(lambda: connection.executescript(SCHEMA))
        except BaseException:
            connection.close()
            raise
        self._apply_retention(connection)
        return connection

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        pid = os.getpid()
        rows = [_row(span_record(span, pid)) for span in spans]
        try:
            with self._lock:
                connection = self._open()
                if connection is None:
                    return SpanExportResult.FAILURE
                retry(lambda: self._insert(connection, rows))
                self._written += len(rows)
                if self._written >= _RETENTION_EVERY:
                    self._written = 0
                    self._apply_retention(connection)
        except Exception as exc:
            reason = _reason(exc)
            if reason not in self._failures:  # once per cause: a full disk would otherwise log every batch
                self._failures.add(reason)
                _logger.warning("mcp_tracing: could not write %d spans to %s (%s)", len(rows), self.path, reason)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    @staticmethod
    def _insert(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _apply_retention(self, connection: sqlite3.Connection) -> None:
        try:
            cutoff = time.time_ns() - int(self._max_age_s * 1e9)
            retry(lambda: connection.execute("DELETE FROM spans WHERE start_ns < ?", (cutoff,)))
            (count,) = connection.execute("SELECT count(*) FROM spans").fetchone()
            excess = count - self._max_spans
            if excess <= 0:
                return
            # Whole traces go, oldest first: a trace with half its spans would draw as broken propagation.
            doomed: list[str] = []
            for trace_id, spans in connection.execute(
                "SELECT trace_id, count(*) FROM spans GROUP BY trace_id ORDER BY min(start_ns)"
            ):
                if excess <= 0:
                    break
                doomed.append(trace_id)
                excess -= spans
            retry(lambda: connection.executemany("DELETE FROM spans WHERE trace_id = ?", [(t,) for t in doomed]))
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


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


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
        json.dumps(record.attributes, default=str),
        json.dumps(list(record.links)),
        json.dumps(list(record.events)),
    )

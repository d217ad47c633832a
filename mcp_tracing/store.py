"""The local trace store: one SQLite file shared by every process of an agent's run.

The agent, the stdio servers it spawns and local HTTP servers all write to the same file (WAL mode, a busy
timeout and retries, one transaction per exported batch), so ``mcp-tracing show`` draws their spans as one
tree. The file is created with mode 0600: spans are for the user who ran the agent.

Location: ``$MCP_TRACING_STORE`` if set (forwarded to spawned stdio servers with every ``MCP_TRACING_*``
variable), else ``$XDG_DATA_HOME/mcp-tracing/traces.db`` (``~/.local/share/...``).

Retention, applied when a writer opens the store and every ``_RETENTION_EVERY`` spans after:

* ``MCP_TRACING_STORE_MAX_AGE``: drop spans older than this (``7d``, ``12h``, ``30m``; default ``7d``);
* ``MCP_TRACING_STORE_MAX_SPANS``: keep at most this many spans, dropping the oldest (default 1,000,000).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import sqlite3
import stat
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import _attributes as attr
from . import agent
from ._paths import absolute, data_dir
from ._records import SpanRecord, span_record

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_SPANS",
    "MAX_AGE_ENV",
    "MAX_SPANS_ENV",
    "STORE_ENV",
    "SqliteSpanExporter",
    "StoreError",
    "TraceStore",
    "TraceSummary",
    "Where",
    "default_store_path",
    "parse_duration",
    "store_for_children",
]

_logger = logging.getLogger(__name__)

STORE_ENV: Final = "MCP_TRACING_STORE"
MAX_AGE_ENV: Final = "MCP_TRACING_STORE_MAX_AGE"
MAX_SPANS_ENV: Final = "MCP_TRACING_STORE_MAX_SPANS"
DEFAULT_MAX_AGE: Final = "7d"
DEFAULT_MAX_SPANS: Final = 1_000_000
_RETENTION_EVERY: Final = 5_000
_BUSY_TIMEOUT_MS: Final = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id   TEXT NOT NULL,
    span_id    TEXT NOT NULL,
    parent_id  TEXT,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    status     TEXT NOT NULL,
    service    TEXT,
    pid        INTEGER,
    attributes TEXT NOT NULL,
    links      TEXT NOT NULL,
    events     TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('format', 'mcp-tracing/1');
"""

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


class StoreError(Exception):
    """The store is missing, empty, corrupt, or a query cannot be answered; the message says which."""


def parse_duration(text: str) -> float:
    """Seconds in ``500ms``, ``2s``, ``1.5m``, ``1h`` or ``7d``.

    Raises:
        ValueError: any other text.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 2s, 5m, 1h, 7d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_TRACING_STORE``, else ``traces.db`` in mcp_tracing's data folder, as an absolute path (as
    ``environ``, by default ``os.environ``, resolves it)."""
    env = os.environ if environ is None else environ
    configured = env.get(STORE_ENV)
    return absolute(configured) if configured else _user_store(env)


def _user_store(environ: Mapping[str, str] | None = None) -> Path:
    """``traces.db`` in mcp_tracing's data folder: the default, and where a store that cannot be opened falls
    back to."""
    return data_dir(environ) / "traces.db"


_writing: list[SqliteSpanExporter] = []
"""The exporters of this process not shut down, oldest first."""


def store_for_children(environ: Mapping[str, str] | None = None) -> Path:
    """The store a process started from this one must write to: the file this process's
    ``SqliteSpanExporter`` writes (the latest made and not shut down), else ``default_store_path(environ)``."""
    if environ is None and _writing:
        return _writing[-1].path
    return default_store_path(environ)


def _env_number(name: str, default: float, parse: Any) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return float(parse(raw))
    except ValueError:
        _logger.warning("ignoring %s=%r: not a valid value; using %s", name, raw, default)
        return default


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _claim(path)
    connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return connection


def _claim(path: Path) -> None:
    """Makes sure the store file a writer opens is a regular file of its own mode, never a link to another.

    Spans can hold tool arguments: a link planted at the store's path (or its ``-wal``/``-shm`` files) would
    have them written elsewhere, and a file left readable by others would show them to others. SQLite opens
    the path itself and follows links, so the file is checked first: a link is refused (``OSError``, and the
    exporter falls back to the user's own store), the file is created ``0600`` if missing (SQLite gives its
    WAL files the same mode) and an existing one of this user's with looser bits is tightened to ``0600``.
    """
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if companion.is_symlink():
            raise OSError(errno.ELOOP, f"{companion.name} is a symbolic link, which the store does not follow")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if os.name == "posix" and info.st_mode & 0o077 and info.st_uid == os.getuid():
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _retry(action: Any, attempts: int = 20) -> Any:
    # busy_timeout covers most contention; a WAL checkpoint or schema change can still report "locked"
    # at once, so retry a bounded number of times rather than let it escape.
    for attempt in range(attempts):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(min(0.01 * 2**attempt, 0.5))
    return None  # pragma: no cover - the loop returns or raises


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
        self._max_age_s = _env_number(MAX_AGE_ENV, parse_duration(DEFAULT_MAX_AGE), parse_duration)
        self._max_spans = int(_env_number(MAX_SPANS_ENV, DEFAULT_MAX_SPANS, int))
        self._failures: set[str] = set()

    def _open(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._unusable:
            try:
                self._connection = self._connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                fallback = _user_store()
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
                    self._connection = self._connect(self.path)
                except (OSError, sqlite3.Error) as again:
                    self._give_up(_reason(again))
        return self._connection

    def _give_up(self, reason: str) -> None:
        self._unusable = True
        _logger.warning(
            "mcp_tracing: cannot open the trace store %s (%s); this process's spans are not stored", self.path, reason
        )

    def _connect(self, path: Path) -> sqlite3.Connection:
        connection = _connect(path, create=True)
        try:
            _retry(lambda: connection.execute("PRAGMA journal_mode = WAL"))
            _retry(lambda: connection.executescript(_SCHEMA))
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
                _retry(lambda: self._insert(connection, rows))
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
            _retry(lambda: connection.execute("DELETE FROM spans WHERE start_ns < ?", (cutoff,)))
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
            _retry(lambda: connection.executemany("DELETE FROM spans WHERE trace_id = ?", [(t,) for t in doomed]))
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


def _record(row: Sequence[Any]) -> SpanRecord:
    return SpanRecord(
        name=row[3],
        trace_id=row[0],
        span_id=row[1],
        parent_id=row[2],
        kind=row[4],
        start_ns=row[5],
        end_ns=row[6],
        status=row[7],
        service=row[8],
        pid=row[9],
        attributes=json.loads(row[10]),
        links=tuple(json.loads(row[11])),
        events=tuple(json.loads(row[12])),
    )


_LESSON_KEYS: Final[dict[str, str]] = {
    "user_id": agent.USER_ID,
    "agent_type": agent.AGENT_TYPE,
    "turn_number": agent.TURN_NUMBER,
    "model_name": agent.MODEL_NAME,
    "tokens_in": agent.TOKENS_IN,
    "tokens_out": agent.TOKENS_OUT,
    "temperature": agent.TEMPERATURE,
    "tool_name": attr.GEN_AI_TOOL_NAME,
    "server_name": attr.SERVER_NAME,
    "args_hash": attr.TOOL_ARGS_HASH,
    "status": attr.TOOL_STATUS,
    "result_size": attr.TOOL_RESULT_SIZE,
}
"""The lesson's attribute names, accepted by ``--where`` for the keys they map to (README.md has the table).
Other lesson names (``total_cost_estimate``, ``request_source``, ...) match as the last part of their key."""

_WHERE = re.compile(r"^\s*([A-Za-z0-9_.\-/:]+)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Where:
    """One ``KEY<op>VALUE`` filter on span attributes. ``KEY`` matches a full attribute key or its last
    dotted part(s) (``total_cost_estimate`` finds ``mcp_tracing.session.total_cost_estimate``), literally. A
    number compares with numeric attributes as a number and, for ``=`` and ``!=``, with text attributes as the
    text given (``jsonrpc.request.id=1`` finds the id ``"1"``); other text takes ``=`` and ``!=`` only."""

    key: str
    op: str
    value: str | float
    raw: str = field(default="", compare=False)
    """The value as given, for text attributes when ``value`` is a number."""

    @classmethod
    def parse(cls, text: str) -> Where:
        """Raises ``ValueError`` with a one-line reason for anything that is not a usable filter."""
        match = _WHERE.match(text)
        if match is None or not match.group(3):
            raise ValueError(f"bad --where {text!r}: use KEY<op>VALUE with op one of = != > >= < <=")
        key, op, raw = match.groups()
        key = _LESSON_KEYS.get(key, key)
        raw = raw.strip("'\"")
        try:
            return cls(key, op, float(raw), raw)
        except ValueError:
            if op not in ("=", "!="):
                raise ValueError(f"bad --where {text!r}: {op} needs a number") from None
            return cls(key, op, raw, raw)

    def sql(self) -> tuple[str, list[Any]]:
        # The key matches whole or as a dotted suffix, compared literally (LIKE would take _ and % as wildcards).
        key_match = "(j.key = ? OR substr(j.key, -?) = ?)"
        key_args: list[Any] = [self.key, len(self.key) + 1, f".{self.key}"]
        numeric = f"(j.type IN ('integer', 'real') AND CAST(j.value AS REAL) {self.op} ?)"
        text = f"(j.type = 'text' AND CAST(j.value AS TEXT) {self.op} ?)"
        if not isinstance(self.value, float):
            condition, values = text, [self.value]
        elif self.op in ("=", "!="):
            condition, values = f"({numeric} OR {text})", [self.value, self.raw or _number_text(self.value)]
        else:
            condition, values = numeric, [self.value]
        return (
            "EXISTS (SELECT 1 FROM spans w, json_each(w.attributes) j WHERE w.trace_id = s.trace_id "
            f"AND {key_match} AND {condition})",
            [*key_args, *values],
        )


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


@dataclass(frozen=True)
class TraceSummary:
    """One line of ``mcp-tracing traces``."""

    trace_id: str
    root: str
    services: tuple[str, ...]
    start_ns: int
    duration_ms: float
    spans: int
    errors: int


class TraceStore:
    """Reads the store: recent traces with filters, and whole traces by id or unique id prefix.

    Raises ``StoreError`` (one-line message) for a missing, empty or corrupt store.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        if not self.path.exists():
            raise StoreError(f"no trace store at {self.path} (run an instrumented agent, or `mcp-tracing demo`)")
        try:
            self._connection = _connect(self.path, create=False)
            self._connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            self._connection.execute("SELECT count(*) FROM spans LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a readable mcp-tracing store ({exc})") from None

    def close(self) -> None:
        self._connection.close()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return _retry(lambda: self._connection.execute(sql, list(args)).fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} could not be read ({exc})") from None

    def traces(
        self,
        *,
        since_s: float | None = None,
        errors_only: bool = False,
        slower_than_s: float | None = None,
        where: Sequence[Where] = (),
        limit: int = 20,
    ) -> list[TraceSummary]:
        """The most recent traces first, each summarised; filters combine with AND."""
        clauses: list[str] = []
        args: list[Any] = []
        if since_s is not None:
            clauses.append("s.start_ns >= ?")
            args.append(time.time_ns() - int(since_s * 1e9))
        for condition in where:
            sql, values = condition.sql()
            clauses.append(sql)
            args.extend(values)
        having: list[str] = []
        if errors_only:
            having.append("sum(s.status = 'ERROR') > 0")
        if slower_than_s is not None:
            having.append("max(s.end_ns) - min(s.start_ns) >= ?")
            args.append(int(slower_than_s * 1e9))
        # The root: the span of the trace whose parent is not in the store (earliest first), over every span of
        # the trace whatever the filters.
        root = (
            "(SELECT r.name FROM spans r WHERE r.trace_id = s.trace_id ORDER BY (r.parent_id IS NOT NULL"
            " AND r.parent_id IN (SELECT p.span_id FROM spans p WHERE p.trace_id = r.trace_id)), r.start_ns LIMIT 1)"
        )
        sql = (
            "SELECT s.trace_id, min(s.start_ns), max(s.end_ns), count(*), sum(s.status = 'ERROR'),"
            f" group_concat(DISTINCT s.service), {root} FROM spans s"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + " GROUP BY s.trace_id"
            + (" HAVING " + " AND ".join(having) if having else "")
            + " ORDER BY min(s.start_ns) DESC LIMIT ?"
        )
        return [
            TraceSummary(
                trace_id,
                root_name or "?",
                tuple(sorted(filter(None, (services or "").split(",")))),
                start,
                (end - start) / 1e6,
                count,
                errors or 0,
            )
            for trace_id, start, end, count, errors, services, root_name in self._query(sql, [*args, limit])
        ]

    def resolve(self, prefix: str) -> str:
        """The one trace id starting with ``prefix``; ``StoreError`` if none or several."""
        prefix = prefix.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{1,32}", prefix):
            raise StoreError(f"not a trace id: {prefix!r} (32 hex digits, or a unique prefix)")
        found = [
            row[0]
            for row in self._query(
                "SELECT DISTINCT trace_id FROM spans WHERE trace_id >= ? AND trace_id < ? LIMIT 6",
                [prefix, prefix + "g"],
            )
        ]
        if not found:
            raise StoreError(f"no trace {prefix} in {self.path}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise StoreError(f"ambiguous trace id prefix {prefix}: {shown}")
        return found[0]

    def spans(self, trace_id: str) -> list[SpanRecord]:
        """Every stored span of one trace, in start order."""
        rows = self._query("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns", [trace_id])
        return [_record(row) for row in rows]

    def trace_ids(self, *, since_s: float | None = None, limit: int = 1000) -> list[str]:
        """The ids of the most recent traces (started within ``since_s`` seconds), newest first."""
        since = time.time_ns() - int(since_s * 1e9) if since_s is not None else 0
        rows = self._query(
            "SELECT trace_id FROM spans GROUP BY trace_id HAVING min(start_ns) >= ?"
            " ORDER BY min(start_ns) DESC LIMIT ?",
            [since, limit],
        )
        return [row[0] for row in rows]

    def roots_between(self, start_ns: int, end_ns: int, other_than: str) -> list[SpanRecord]:
        """SERVER spans that start a trace of their own (no parent) in ``[start_ns, end_ns]``, not in ``other_than``."""
        rows = self._query(
            "SELECT * FROM spans WHERE parent_id IS NULL AND kind = 'SERVER' AND start_ns BETWEEN ? AND ?"
            " AND trace_id != ? ORDER BY start_ns",
            [start_ns, end_ns, other_than],
        )
        return [_record(row) for row in rows]

    def is_empty(self) -> bool:
        return not self._query("SELECT 1 FROM spans LIMIT 1")

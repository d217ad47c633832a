"""TraceStore: reads the store (recent traces with filters, whole traces by id)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from mcp_tracing._core import attributes as attr
from mcp_tracing.store._index import NOT_INDEXED, TEXT_LIMIT
from mcp_tracing.store._migrate import Progress, migrate, needs_migration
from mcp_tracing.store._sqlite import (
    SCHEMA,
    StoreError,
    connect,
    default_store_path,
    retry,
)
from mcp_tracing.store.records import LogRecord, SpanRecord

__all__ = ["TraceStore", "TraceSummary", "Where"]


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


def _log(row: Sequence[Any]) -> LogRecord:
    return LogRecord(
        trace_id=row[0],
        span_id=row[1],
        time_ns=row[2],
        severity=row[3],
        level=row[4],
        logger=row[5],
        body=row[6],
        service=row[7],
        pid=row[8],
        attributes=json.loads(row[9]),
    )


_LESSON_KEYS: Final[dict[str, str]] = {
    "user_id": attr.USER_ID,
    "agent_type": attr.AGENT_TYPE,
    "turn_number": attr.TURN_NUMBER,
    "model_name": attr.MODEL_NAME,
    "tokens_in": attr.TOKENS_IN,
    "tokens_out": attr.TOKENS_OUT,
    "temperature": attr.TEMPERATURE,
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

    def keys_matched(self, known: Iterable[str]) -> list[str]:
        """The keys among ``known`` this filter names: the key itself, or keys ending in ``.KEY``."""
        suffix = f".{self.key}"
        return [key for key in known if key == self.key or key.endswith(suffix)]

    def indexed(self, keys: Iterable[str]) -> bool:
        """Whether the attribute index answers this filter on ``keys`` (else the spans are read)."""
        longest = max(len(str(self.value)), len(self.raw))
        return longest <= TEXT_LIMIT and not any(key in NOT_INDEXED for key in keys)

    def index_sql(self, key_numbers: Sequence[int]) -> tuple[str, list[Any]]:
        """The traces (``t``) with a value of one of ``key_numbers`` that passes, from the attribute index (the
        ranges of those keys). Numbers compare below text, so a numeric range excludes text values."""
        marks = ",".join("?" * len(key_numbers))
        numeric = {
            ">": "a.value > ? AND a.value < ''",
            ">=": "a.value >= ? AND a.value < ''",
            "<": "a.value < ?",
            "<=": "a.value <= ?",
            "=": "a.value = ? AND typeof(a.value) != 'text'",
            "!=": "a.value != ? AND typeof(a.value) != 'text'",
        }[self.op]
        condition, values = self._condition(f"({numeric})", f"(a.value {self.op} ? AND typeof(a.value) = 'text')")
        sql = f"t.trace_no IN (SELECT a.trace_no FROM attributes a WHERE a.key_no IN ({marks}) AND {condition})"
        return sql, [*key_numbers, *values]

    def _condition(self, numeric: str, text: str) -> tuple[str, list[Any]]:
        """Text compares with text values only; a number with numeric ones and, for ``=``/``!=``, with text
        values as written."""
        if not isinstance(self.value, float):
            return text, [self.value]
        if self.op in ("=", "!="):
            return f"({numeric} OR {text})", [self.value, self.raw or _number_text(self.value)]
        return numeric, [self.value]

    def scan_sql(self, table: str = "spans") -> tuple[str, list[Any]]:
        """The same filter answered by reading every span of each trace (``t``), for keys not indexed; with
        ``table="logs"``, by reading the trace's log records (their attributes are not indexed)."""
        # The key matches whole or as a dotted suffix, compared literally (LIKE would take _ and % as wildcards).
        key_match = "(j.key = ? OR substr(j.key, -?) = ?)"
        key_args: list[Any] = [self.key, len(self.key) + 1, f".{self.key}"]
        condition, values = self._condition(
            f"(j.type IN ('integer', 'real') AND CAST(j.value AS REAL) {self.op} ?)",
            f"(j.type = 'text' AND CAST(j.value AS TEXT) {self.op} ?)",
        )
        return (
            f"EXISTS (SELECT 1 FROM {table} w, json_each(w.attributes) j WHERE w.trace_id = t.trace_id "
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

    Args:
        path: the store file (default: ``$MCP_TRACING_STORE``, or ``traces.db`` in the user data dir).
        progress: told how an older store's migration goes.
        read_only: nothing is ever written through this reader (SQLite's ``query_only``): a store in an older
            format is refused instead of migrated. ``mcp-tracing ui`` reads this way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        if not self.path.exists():
            raise StoreError(f"no trace store at {self.path} (run an instrumented agent, or `mcp-tracing demo`)")
        try:
            self._connection = connect(self.path, create=False)
            if read_only:
                self._connection.execute("PRAGMA query_only = ON")
            self._connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            self._connection.execute("SELECT count(*) FROM spans LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a readable mcp-tracing store ({exc})") from None
        if needs_migration(self._connection):
            if read_only:
                self._connection.close()
                raise StoreError(
                    f"{self.path} is in an older format: run `mcp-tracing traces` once to migrate it (read-only here)"
                )
            self._migrate(progress)

    def _migrate(self, progress: Progress | None) -> None:
        try:
            retry(lambda: self._connection.executescript(SCHEMA))
            migrate(self._connection, progress)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is in an older format and could not be migrated ({exc}); open it once with write access"
            ) from None

    def close(self) -> None:
        self._connection.close()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return retry(lambda: self._connection.execute(sql, list(args)).fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} could not be read ({exc})") from None

    def unindexed(self, where: Sequence[Where]) -> list[Where]:
        """The filters the attribute index cannot answer: ``traces`` reads the spans for them (slow on a big
        store; ``mcp-tracing traces`` says so)."""
        known = self._keys()
        return [condition for condition in where if not condition.indexed(condition.keys_matched(known))]

    def version(self) -> int:
        """A number that changes whenever another connection commits to the store (SQLite's ``data_version``):
        what ``mcp-tracing ui`` polls to show new traces without reading them all again."""
        return int(self._query("PRAGMA data_version")[0][0])

    def _keys(self) -> dict[str, int]:
        return {key: number for number, key in self._query("SELECT key_no, key FROM attribute_keys")}

    def traces(
        self,
        *,
        since_s: float | None = None,
        errors_only: bool = False,
        slower_than_s: float | None = None,
        where: Sequence[Where] = (),
        search: str | None = None,
        limit: int = 20,
    ) -> list[TraceSummary]:
        """The most recent traces first (by start), each summarised; filters combine with AND. ``since_s``
        keeps traces that started within that many seconds; ``search`` keeps the traces whose id starts with
        it, or with a span whose request id (an attribute ``request_id``, ``*.request_id`` or
        ``jsonrpc.request.id``) is it."""
        clauses: list[str] = []
        args: list[Any] = []
        if search is not None and search.strip():
            sql, values = self._search(search.strip())
            clauses.append(sql)
            args.extend(values)
        if since_s is not None:
            clauses.append("t.start_ns >= ?")
            args.append(time.time_ns() - int(since_s * 1e9))
        if errors_only:
            clauses.append("t.errors > 0")
        if slower_than_s is not None:
            clauses.append("t.end_ns - t.start_ns >= ?")
            args.append(int(slower_than_s * 1e9))
        known = self._keys() if where else {}
        logs = bool(where) and self._has_logs()
        for condition in where:
            keys = condition.keys_matched(known)
            sql, values = "0", []  # no span has the key: no span passes (as no attribute compares)
            if keys and condition.indexed(keys):
                sql, values = condition.index_sql([known[key] for key in keys])
            elif keys:
                sql, values = condition.scan_sql()
            if logs:  # or a log record of the trace has the attribute
                in_logs, log_values = condition.scan_sql("logs")
                sql, values = f"({sql} OR {in_logs})", [*values, *log_values]
            clauses.append(sql)
            args.extend(values)
        sql = (
            "SELECT t.trace_id, t.start_ns, t.end_ns, t.spans, t.errors, t.services, t.root FROM traces t"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + " ORDER BY t.start_ns DESC LIMIT ?"
        )
        return [
            TraceSummary(
                trace_id,
                root_name or "?",
                tuple(filter(None, (services or "").split(","))),
                start,
                (end - start) / 1e6,
                count,
                int(errors or 0),
            )
            for trace_id, start, end, count, errors, services, root_name in self._query(sql, [*args, limit])
        ]

    def _search(self, text: str) -> tuple[str, list[Any]]:
        """The ``search`` condition on traces ``t``: an id prefix, or a request id, through the index."""
        alternatives: list[str] = []
        args: list[Any] = []
        prefix = text.lower()
        if re.fullmatch(r"[0-9a-f]{1,32}", prefix):
            alternatives.append("(t.trace_id >= ? AND t.trace_id < ?)")
            args += [prefix, prefix + "g"]
        known = self._keys()
        try:  # a number matches numeric ids and the same text (as --where does)
            value: str | float = float(text)
        except ValueError:
            value = text
        for key in ("request_id", attr.JSONRPC_REQUEST_ID):
            condition = Where(key, "=", value, text)
            keys = condition.keys_matched(known)
            if keys:
                sql, values = (
                    condition.index_sql([known[k] for k in keys]) if condition.indexed(keys) else condition.scan_sql()
                )
                alternatives.append(sql)
                args += values
        return "(" + (" OR ".join(alternatives) or "0") + ")", args

    def count_traces(self, *, since_s: float | None = None) -> int:
        """How many traces started within ``since_s`` seconds (all, when ``None``)."""
        since = time.time_ns() - int(since_s * 1e9) if since_s is not None else None
        if since is None:
            return int(self._query("SELECT count(*) FROM traces")[0][0])
        return int(self._query("SELECT count(*) FROM traces WHERE start_ns >= ?", [since])[0][0])

    def resolve(self, prefix: str) -> str:
        """The one trace id starting with ``prefix``; ``StoreError`` if none or several."""
        prefix = prefix.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{1,32}", prefix):
            raise StoreError(f"not a trace id: {prefix!r} (32 hex digits, or a unique prefix)")
        found = [
            row[0]
            for row in self._query(
                "SELECT trace_id FROM traces WHERE trace_id >= ? AND trace_id < ? ORDER BY trace_id LIMIT 6",
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

    def _logs_table(self) -> bool:
        """Whether the store has a ``logs`` table (one written before logs were has none)."""
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'logs'"))

    def _has_logs(self) -> bool:
        return self._logs_table() and bool(self._query("SELECT 1 FROM logs LIMIT 1"))

    def logs(self, trace_id: str) -> list[LogRecord]:
        """Every stored log record of one trace, in time order (none from a store written before logs were)."""
        if not self._logs_table():
            return []
        rows = self._query("SELECT * FROM logs WHERE trace_id = ? ORDER BY time_ns, rowid", [trace_id])
        return [_log(row) for row in rows]

    def trace_ids(self, *, since_s: float | None = None, limit: int = 1000) -> list[str]:
        """The ids of the most recent traces (started within ``since_s`` seconds), newest first."""
        since = time.time_ns() - int(since_s * 1e9) if since_s is not None else 0
        rows = self._query(
            "SELECT trace_id FROM traces WHERE start_ns >= ? ORDER BY start_ns DESC LIMIT ?", [since, limit]
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
        return not self._query("SELECT 1 FROM traces LIMIT 1")

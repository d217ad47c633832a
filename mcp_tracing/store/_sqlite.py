"""The store's file: where it is, how it is opened (mode 0600, never through a link), its schema."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Generator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from mcp_tracing._core.paths import absolute, data_dir

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_SPANS",
    "FORMAT",
    "MAX_AGE_ENV",
    "MAX_SPANS_ENV",
    "SCHEMA",
    "STORE_ENV",
    "StoreError",
    "claim",
    "connect",
    "default_store_path",
    "parse_duration",
    "retry",
    "store_format",
    "transaction",
    "user_store",
]

STORE_ENV: Final = "MCP_TRACING_STORE"
MAX_AGE_ENV: Final = "MCP_TRACING_STORE_MAX_AGE"
MAX_SPANS_ENV: Final = "MCP_TRACING_STORE_MAX_SPANS"
DEFAULT_MAX_AGE: Final = "7d"
DEFAULT_MAX_SPANS: Final = 1_000_000
BUSY_TIMEOUT_MS: Final = 10_000

FORMAT: Final = "mcp-tracing/2"
"""The store's format, in its ``meta`` table. Format 1 (spans only) is migrated in place (``_migrate``)."""

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS traces (
    trace_no INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL UNIQUE,
    start_ns INTEGER NOT NULL,
    end_ns   INTEGER NOT NULL,
    spans    INTEGER NOT NULL,
    errors   INTEGER NOT NULL,
    services TEXT NOT NULL,
    root     TEXT
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_ns);
CREATE TABLE IF NOT EXISTS attribute_keys (key_no INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS attributes (
    key_no   INTEGER NOT NULL,
    value    NOT NULL,
    trace_no INTEGER NOT NULL,
    PRIMARY KEY (key_no, trace_no, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS attributes_by_trace ON attributes (trace_no);
INSERT OR IGNORE INTO meta VALUES ('spans', '0');
CREATE TABLE IF NOT EXISTS logs (
    trace_id   TEXT NOT NULL,
    span_id    TEXT,
    time_ns    INTEGER NOT NULL,
    severity   INTEGER,
    level      TEXT,
    logger     TEXT,
    body       TEXT NOT NULL,
    service    TEXT,
    pid        INTEGER,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_trace ON logs (trace_id, time_ns);
CREATE INDEX IF NOT EXISTS logs_by_time ON logs (time_ns);
"""
"""Format 2: ``spans`` as in format 1; ``traces``, one summary row per trace kept on write; ``attributes``, the
distinct indexed values of each trace (``_index``) under ``attribute_keys``; ``meta.spans``, the stored span
count retention reads. ``attributes`` is ordered by key, then trace: a batch appends at the end of each key's
range (a few pages), where ordering by value wrote a random page per value (770 pages a 512-span batch at 1M
spans, the whole of the write cost at the cap); a filter reads its key's range, tens of milliseconds at 1M
spans. ``logs``: the log records written under a trace's spans, by trace and time (a table added to format 2:
a store without it has no logs). A new file is written as format 1 first and marked 2 at once (nothing to migrate)."""


def store_format(connection: sqlite3.Connection) -> str | None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    return None if row is None else str(row[0])


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
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > _LONGEST_S:  # in nanoseconds, no longer a time SQLite can compare with (and no trace's age)
        raise ValueError(f"not a duration: {text!r} is longer than 100 years")
    return seconds


_LONGEST_S: Final = 100 * 365 * 86400


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$MCP_TRACING_STORE``, else ``traces.db`` in mcp_tracing's data folder, as an absolute path (as
    ``environ``, by default ``os.environ``, resolves it)."""
    env = os.environ if environ is None else environ
    configured = env.get(STORE_ENV)
    return absolute(configured) if configured else user_store(env)


def user_store(environ: Mapping[str, str] | None = None) -> Path:
    """``traces.db`` in mcp_tracing's data folder: the default, and where a store that cannot be opened falls
    back to."""
    return data_dir(environ) / "traces.db"


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if create:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        claim(path)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return connection


def claim(path: Path) -> None:
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


@contextmanager
def transaction(
    connection: sqlite3.Connection, *, undo: Callable[[], None] | None = None
) -> Generator[None, None, None]:
    """One write transaction: ``BEGIN IMMEDIATE`` (the write lock at once, never an upgrade from a read that
    could deadlock with another writer), committed when the block ends, rolled back when it raises (then
    ``undo``, for what the block cached of the rolled-back writes)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        if undo is not None:
            undo()
        raise
    connection.execute("COMMIT")


def retry(action: Any, attempts: int = 20) -> Any:
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

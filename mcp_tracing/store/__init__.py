"""The local trace store: one SQLite file shared by every process of an agent's run.

The agent, the stdio servers it spawns and local HTTP servers all write to the same file (WAL mode, a busy
timeout and retries, one transaction per exported batch), so ``mcp-tracing show`` draws their spans as one
tree. The file is created with mode 0600: spans are for the user who ran the agent.

Location: ``$MCP_TRACING_STORE`` if set (forwarded to spawned stdio servers with every ``MCP_TRACING_*``
variable), else ``$XDG_DATA_HOME/mcp-tracing/traces.db`` (``~/.local/share/...``).

Each batch also keeps a summary row per trace and an index of each trace's attribute values (``_index``), so
the CLI's queries read indexes. Retention, applied when a writer opens the store and every ``_RETENTION_EVERY``
spans after, deletes whole traces (``_retention``):

* ``MCP_TRACING_STORE_MAX_AGE``: drop traces started longer ago (``7d``, ``12h``, ``30m``; default ``7d``);
* ``MCP_TRACING_STORE_MAX_SPANS``: keep at most this many spans, dropping the oldest traces (default 1,000,000).
"""

from mcp_tracing.store._sqlite import (
    DEFAULT_MAX_AGE,
    DEFAULT_MAX_SPANS,
    MAX_AGE_ENV,
    MAX_SPANS_ENV,
    STORE_ENV,
    StoreError,
    default_store_path,
    parse_duration,
)
from mcp_tracing.store.exporter import SqliteLogExporter, SqliteSpanExporter, store_for_children
from mcp_tracing.store.reader import TraceStore, TraceSummary, Where

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_SPANS",
    "MAX_AGE_ENV",
    "MAX_SPANS_ENV",
    "STORE_ENV",
    "SqliteLogExporter",
    "SqliteSpanExporter",
    "StoreError",
    "TraceStore",
    "TraceSummary",
    "Where",
    "default_store_path",
    "parse_duration",
    "store_for_children",
]

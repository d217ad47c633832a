"""``mcp-tracing demo``: a scripted agent (no LLM) over two real MCP servers, traced into the local store.

It spawns the filesystem-style stdio server and starts the SQL-style streamable-HTTP server on 127.0.0.1
(``examples/stdio_server.py``, ``examples/http_server.py``: real files, a real SQLite database), runs two
turns of a scripted agent loop that produce the lesson's taxonomy (``agent.session``, ``agent.turn``,
``model.call`` with token counts, ``tool.call`` over MCP on both servers, ``state.checkpoint``,
``validator.run``), and returns the trace id. The "model" is a script: it always asks for the same tools.

The script is deliberately not optimal, so that ``mcp-tracing analyze`` has something real to find: it
reads the matching files one call at a time (N+1), and runs two independent lookups (a SQL query and a file
search) one after the other.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

from mcp_tracing import agent
from mcp_tracing._core.environment import telemetry_environment
from mcp_tracing._core.shutdown import flush

__all__ = ["examples_dir", "run_demo"]

_FILES = {
    "orders/2026-11.txt": "order 1041: 2 keyboards for ada\norder 1042: 1 monitor for alan\n",
    "orders/2026-10.txt": "order 1007: 3 cables for grace\n",
    "notes/returns.txt": "returns are accepted within 30 days of the order\n",
    "notes/holidays.txt": "the shop is closed on 2026-12-25\n",
}


def examples_dir() -> Path:
    """Where the example servers are: shipped in the wheel, or the repository's ``examples/``."""
    package = Path(__file__).resolve().parents[1]  # mcp_tracing/, this file being mcp_tracing/cli/demo.py
    for candidate in (package / "_examples", package.parent / "examples"):
        if (candidate / "stdio_server.py").exists():
            return candidate
    raise FileNotFoundError("the example servers are not installed (examples/stdio_server.py)")


def _start_http_server(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, str(examples_dir() / "http_server.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "SQL_DB": str(workdir / "shop.db"), "OTEL_SERVICE_NAME": "sql-server"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("URL "):
        process.kill()
        raise RuntimeError("the SQL server did not start")
    return process, line.split()[1]


async def _agent_loop(workdir: Path, sql_url: str) -> str:
    from mcp import ClientSession, StdioServerParameters

    from mcp_tracing.client import trace_session
    from mcp_tracing.http import streamable_http_client
    from mcp_tracing.stdio import stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=[str(examples_dir() / "stdio_server.py")],
        env={"FILES_ROOT": str(workdir / "files"), "OTEL_SERVICE_NAME": "files-server"},
    )
    with agent.session(
        user_id="demo-user", agent_type="shop-assistant", request_source="cli", request_id="demo-1"
    ) as root:
        async with stdio_client(params, server_name="filesystem") as (read, write), ClientSession(read, write) as files:
            async with streamable_http_client(sql_url, server_name="sql") as (r, w, *_), ClientSession(r, w) as sql:
                trace_session(files)
                trace_session(sql)
                await files.initialize()
                await sql.initialize()
                await files.list_tools()
                await sql.list_tools()
                with agent.turn(1, state_at_start="PLANNING"):
                    with agent.model_call("scripted-model", temperature=0.0) as call:
                        call.set_attributes({agent.TOKENS_IN: 1200, agent.TOKENS_OUT: 80, agent.USED_TOOLS: True})
                    async with agent.tool_call("search", server_name="filesystem"):
                        hits = await files.call_tool("search", {"word": "order"})
                with agent.turn(2, state_at_start="ACTING"):
                    with agent.model_call("scripted-model", temperature=0.0) as call:
                        call.set_attributes({agent.TOKENS_IN: 1800, agent.TOKENS_OUT: 130, agent.USED_TOOLS: True})
                    for name in _names(hits):  # N+1: one read per file, where a batch read would do
                        async with agent.tool_call("read_file", server_name="filesystem"):
                            await files.call_tool("read_file", {"path": name})
                    with agent.model_call("scripted-model", temperature=0.0) as call:
                        call.set_attributes({agent.TOKENS_IN: 2400, agent.TOKENS_OUT: 60, agent.USED_TOOLS: True})
                    # Sequential where parallel would do: two independent lookups, one after the other.
                    async with agent.tool_call("query", server_name="sql"):
                        await sql.call_tool("query", {"sql": "SELECT sum(total) FROM orders"})
                    async with agent.tool_call("search", server_name="filesystem"):
                        await files.call_tool("search", {"word": "returns"})
                    _checkpoint(workdir, {"turn": 2, "files": _names(hits)})
                    root.set_attribute(agent.TOTAL_COST_ESTIMATE, 0.0321)  # scripted: (5400 in + 270 out) tokens
                    with agent.validator("answer-check") as check:
                        check.set_attributes({agent.PASSED: True, agent.ISSUES_COUNT: 0})
        return format(root.get_span_context().trace_id, "032x")


def _names(result: object) -> list[str]:
    """The file names a ``search`` result lists (its structured content, on either SDK line)."""
    from mcp_tracing._core import spans as _spans

    names = _spans.field(_spans.field(result, "structuredContent", "structured_content"), "result")
    return [str(n) for n in cast(list[object], names)] if isinstance(names, list) else []


def _checkpoint(workdir: Path, state: dict[str, object]) -> None:
    data = json.dumps(state)
    with agent.checkpoint("sqlite", bytes_written=len(data.encode())):
        with sqlite3.connect(workdir / "checkpoints.db") as db:
            db.execute("CREATE TABLE IF NOT EXISTS checkpoints (state TEXT)")
            db.execute("INSERT INTO checkpoints VALUES (?)", (data,))


def run_demo() -> str:
    """Runs the demo against ``configure()``'s exporter; returns the trace id once every span is flushed."""
    import anyio

    with tempfile.TemporaryDirectory(prefix="mcp-tracing-demo-") as tmp:
        workdir = Path(tmp)
        for name, text in _FILES.items():
            (workdir / "files" / name).parent.mkdir(parents=True, exist_ok=True)
            (workdir / "files" / name).write_text(text)
        # The SQL server gets this process's whole environment, and, as a stdio child would, the store this
        # process resolved: its own HOME or XDG_DATA_HOME cannot send its spans elsewhere.
        server, url = _start_http_server(workdir, {**os.environ, **telemetry_environment()})
        try:
            trace_id = anyio.run(_agent_loop, workdir, url)
        finally:
            server.terminate()
            server.wait(timeout=20)
    flush()
    return trace_id

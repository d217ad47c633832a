"""A scripted agent (no LLM) that spawns a traced stdio MCP server, calls tools, and prints one trace.

    python examples/stdio_agent.py

The tree it prints spans two processes: the agent's ``agent.session``/``agent.turn``/``tools/call``
spans and, under each call, the server's ``tools/call`` span and the spans its tool opened.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import anyio
from _setup import SPANS_FILE_ENV, print_trace, setup_tracing
from mcp import ClientSession, StdioServerParameters
from opentelemetry import trace

import mcp_tracing

HERE = Path(__file__).resolve().parent


async def run_agent(workdir: Path) -> str:
    """Runs two scripted turns against the files server; returns the trace id."""
    tracer = trace.get_tracer("examples.agent")
    params = StdioServerParameters(
        command=sys.executable,
        args=[str(HERE / "stdio_server.py")],
        env={"FILES_ROOT": str(workdir), "OTEL_SERVICE_NAME": "files-server"},
    )
    with tracer.start_as_current_span("agent.session", attributes={"user_id": "demo"}) as session_span:
        async with mcp_tracing.stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                mcp_tracing.trace_session(session)
                await session.initialize()
                with tracer.start_as_current_span("agent.turn", attributes={"turn_number": 1}):
                    hits = await session.call_tool("search", {"word": "trace"})
                with tracer.start_as_current_span("agent.turn", attributes={"turn_number": 2}):
                    for name in _names(hits):
                        await session.call_tool("read_file", {"path": name})
        return format(session_span.get_span_context().trace_id, "032x")


def _names(result: object) -> list[str]:
    structured = getattr(result, "structuredContent", None) or getattr(result, "structured_content", None) or {}
    names = structured.get("result", []) if isinstance(structured, dict) else []
    return [str(n) for n in names]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        spans_file = Path(tmp) / "spans.jsonl"
        os.environ[SPANS_FILE_ENV] = str(spans_file)
        workdir = Path(tmp) / "files"
        workdir.mkdir()
        (workdir / "notes.txt").write_text("how to trace an agent\n")
        (workdir / "todo.txt").write_text("trace the stdio server too\n")
        (workdir / "other.txt").write_text("nothing here\n")
        provider = setup_tracing("agent")
        trace_id = anyio.run(run_agent, workdir)
        provider.force_flush()
        print_trace(spans_file, trace_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The paths people use beside mcp_tracing (issue 14): a FastAPI app (its own telemetry) mounting an MCP server,
and pydantic-ai's agent (its own GenAI spans, fastmcp's Client underneath) with its ``TestModel``.

Runs in ``.venv-agents`` (``scripts/test`` pins fastapi and pydantic-ai there); skipped where they are missing,
except under ``MCP_TRACING_FRAMEWORKS=1``, where a missing package fails the run instead.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import PROBE, all_spans, by_name, one, read_until, stored_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing.testing import span_record

if os.environ.get("MCP_TRACING_FRAMEWORKS") != "1":
    pytest.importorskip("fastapi")
    pytest.importorskip("pydantic_ai")

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]

SERVERS = Path(__file__).parent / "servers"


# ------------------------------------------------------------------ FastAPI mount (item 4)


@asynccontextmanager
async def billing(store: Path, *, wrap: bool) -> AsyncIterator[str]:
    """The FastAPI app of ``servers/fastapi_server.py``; yields its base URL; stops it with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    env.update(MCP_TRACING_STORE=str(store), BILLING_WRAP="1" if wrap else "0")
    process = await anyio.open_process([sys.executable, str(SERVERS / "fastapi_server.py")], env=env, stderr=None)
    try:
        assert process.stdout is not None
        line = await read_until(process.stdout, b"\n")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            await process.wait()
        await process.aclose()


@pytest.mark.parametrize("wrap", [False, True], ids=["instrument_server", "wrapped-by-hand-too"])
async def test_mcp_mounted_in_fastapi_gets_one_http_span_per_request_with_the_full_route(
    capture: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path, wrap: bool
) -> None:
    """FastAPI's own SERVER span is adopted (before: a second one per request, ``http.route=/mcp``), the MCP
    span links to it, and a REST request without ``traceparent`` is one span in one trace."""
    import httpx2
    from mcp import Client

    provider, exporter = capture
    store = tmp_path / "billing.db"
    async with billing(store, wrap=wrap) as base:
        with provider.get_tracer("tests").start_as_current_span("agent.root"):
            client = mcp_tracing.trace_session(Client(f"{base}/billing/mcp", mode="legacy"), tracer_provider=provider)
            with anyio.fail_after(20):
                async with client:
                    await client.call_tool("work", {"n": 2})
        async with httpx2.AsyncClient() as http:
            assert (await http.get(f"{base}/health")).json() == {"ok": True}
    ours = [span_record(s) for s in exporter.get_finished_spans()]
    theirs = stored_spans(store)
    http_spans = [s for s in theirs if "url.path" in s.attributes]
    mcp_posts = [s for s in http_spans if s.attributes["url.path"] == "/billing/mcp"]
    # One SERVER span per HTTP request: POSTs (initialize, initialized, tools/list, tools/call), GET, DELETE.
    assert sorted(s.name for s in mcp_posts) == sorted(
        ["POST /billing/mcp"] * 4 + ["GET /billing/mcp", "DELETE /billing/mcp"]
    ), [(s.name, s.parent_id) for s in http_spans]
    assert all(s.kind == "SERVER" and s.attributes["http.route"] == "/billing/mcp" for s in mcp_posts)
    client_call = one(ours, "tools/call work", "CLIENT")
    server_call = one(theirs, "tools/call work", "SERVER")
    (link,) = server_call.links
    (post,) = [s for s in mcp_posts if s.span_id == link]
    assert post.parent_id == server_call.parent_id == client_call.span_id
    assert one(theirs, "billing.work").parent_id == server_call.span_id
    (health,) = [s for s in http_spans if s.attributes["url.path"] == "/health"]
    assert health.name == "GET /health" and health.parent_id is None
    rest = [s for s in theirs if s.trace_id == health.trace_id]  # FastAPI's operation spans under its own
    assert [s for s in rest if s.kind == "SERVER"] == [health] and [s for s in rest if s.parent_id is None] == [health]


# ------------------------------------------------------------------ pydantic-ai (item 6)


async def test_pydantic_ai_execute_tool_span_is_the_mcp_client_span(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """pydantic-ai's ``execute_tool work`` span (GenAI conventions) is enriched as the MCP CLIENT span: the server's
    span is its child (before: a ``tools/call work`` CLIENT span nested in between)."""
    from pydantic_ai import Agent
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.instrumented import InstrumentationSettings
    from pydantic_ai.models.test import TestModel

    provider, exporter = capture
    toolset: Any = MCPToolset(PROBE)
    mcp_tracing.trace_session(toolset.client, tracer_provider=provider)
    agent: Any = Agent(TestModel(call_tools=["work"]), toolsets=[toolset])
    before = Agent._instrument_default  # pyright: ignore[reportPrivateUsage]
    Agent.instrument_all(InstrumentationSettings(tracer_provider=provider))
    try:
        with anyio.fail_after(30):
            async with agent:
                await agent.run("do the work")
            await toolset.client.close()
    finally:
        Agent.instrument_all(before)
    provider.force_flush()
    spans = all_spans(exporter, spans_file)
    (execute,) = by_name(spans, "execute_tool work")
    assert not [s for s in spans if s.name == "tools/call work" and s.kind == "CLIENT"]
    assert execute.attributes[attr.MCP_METHOD_NAME] == "tools/call"
    assert execute.attributes[attr.GEN_AI_OPERATION_NAME] == "execute_tool"  # pydantic-ai's, kept
    server = one(spans, "tools/call work", "SERVER")
    assert server.parent_id == execute.span_id and server.trace_id == execute.trace_id
    assert one(spans, "probe.work").parent_id == server.span_id
    roots = [s for s in spans if s.parent_id is None and s.trace_id == execute.trace_id]
    assert [r.name for r in roots] == ["invoke_agent agent"], [r.name for r in roots]

"""Frameworks pinned to mcp 1.x (issue 14): LangGraph + langchain-mcp-adapters + OpenInference's LangChain
instrumentation (item 7), and the SDK's runner under ``opentelemetry-instrument`` with the Starlette
instrumentation installed (item 3).

OpenInference keeps its spans out of the OpenTelemetry context, so MCP calls made from a LangChain tool formed
traces of their own beside the graph's. Its ``get_current_span()`` names the span of the LangChain run in
progress; given as the instrumentor's ``parent_span``, the MCP calls nest under the tool's span.

Runs in ``.venv-frameworks-mcp1`` (``scripts/test`` pins langchain-mcp-adapters, which pins mcp 1.x, LangGraph,
OpenInference and the Starlette instrumentation there); skipped where they are missing, except under
``MCP_TRACING_FRAMEWORKS=1``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import PROBE, all_spans, by_name, free_port, one, read_until, stored_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing.instrumentor import McpInstrumentor
from mcp_tracing.testing import span_record

if os.environ.get("MCP_TRACING_FRAMEWORKS") != "1":
    pytest.importorskip("langchain_mcp_adapters")
    pytest.importorskip("openinference.instrumentation.langchain")
    pytest.importorskip("opentelemetry.instrumentation.starlette")

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


def scripted_model() -> Any:
    """A chat model that asks for ``work(n=5)``, then answers: no LLM."""
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import AIMessage

    class Scripted(FakeMessagesListChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    return Scripted(
        responses=[
            AIMessage(content="", tool_calls=[{"name": "work", "args": {"n": 5}, "id": "call-1"}]),
            AIMessage(content="done"),
        ]
    )


async def test_mcp_calls_from_a_langgraph_tool_nest_under_openinference_tool_span(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    from langchain_mcp_adapters.client import MultiServerMCPClient
    from langgraph.prebuilt import create_react_agent
    from openinference.instrumentation.langchain import LangChainInstrumentor, get_current_span

    provider, exporter = capture
    langchain = LangChainInstrumentor()
    langchain.instrument(tracer_provider=provider)
    mcp = McpInstrumentor()
    mcp.instrument(tracer_provider=provider, parent_span=get_current_span)
    try:
        client = MultiServerMCPClient(
            {"probe": {"command": sys.executable, "args": [str(PROBE)], "transport": "stdio", "env": {}}}
        )
        with anyio.fail_after(60):
            tools = await client.get_tools()
            graph: Any = create_react_agent(scripted_model(), tools)
            result = await graph.ainvoke({"messages": [("user", "do the work")]})
    finally:
        mcp.uninstrument()
        langchain.uninstrument()
    assert result["messages"][-1].content == "done"
    provider.force_flush()
    spans = all_spans(exporter, spans_file)
    (tool,) = [s for s in by_name(spans, "work") if s.attributes.get("openinference.span.kind") == "TOOL"]
    (graph_root,) = [s for s in spans if s.parent_id is None and s.trace_id == tool.trace_id]
    assert graph_root.name == "LangGraph"
    client_call = one(spans, "tools/call work", "CLIENT")
    server_call = one(spans, "tools/call work", "SERVER")
    assert client_call.parent_id == tool.span_id  # before: a trace of its own
    assert server_call.parent_id == client_call.span_id and server_call.trace_id == tool.trace_id
    assert one(spans, "probe.work").parent_id == server_call.span_id
    # The call's own session (langchain-mcp-adapters opens one per call) is under the tool too, not a new trace.
    in_tool = {s.span_id for s in spans if s.parent_id == tool.span_id}
    assert {s.name for s in spans if s.span_id in in_tool} >= {"tools/call work", "initialize"}


async def test_the_sdks_runner_keeps_starlettes_spans_under_opentelemetry_instrument(
    capture: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    """``opentelemetry-instrument`` loads mcp_tracing's instrumentor before Starlette's; the first imported mcp,
    which bound the class Starlette's instrumentor replaces afterwards: no HTTP span at all. Now mcp_tracing
    patches when mcp is imported, and every POST has Starlette's SERVER span, under the client's span."""
    from mcp import ClientSession

    provider, exporter = capture
    store = tmp_path / "server.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MCP_TRACING_"))}
    env.update(MCP_TRACING_STORE=str(store), OTEL_SERVICE_NAME="zero-code", OTEL_METRICS_EXPORTER="none")
    env.update(OTEL_TRACES_EXPORTER="mcp_tracing", OTEL_LOGS_EXPORTER="none")
    instrument = str(Path(sys.executable).with_name("opentelemetry-instrument"))
    process = await anyio.open_process(
        [instrument, sys.executable, str(PROBE.with_name("zero_code_runner.py")), str(port)], env=env, stdout=None
    )
    try:
        assert process.stderr is not None
        await read_until(process.stderr, b"Uvicorn running on")
        with provider.get_tracer("tests").start_as_current_span("agent.root"):
            url = f"http://127.0.0.1:{port}/mcp"
            async with mcp_tracing.streamable_http_client(url, tracer_provider=provider) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    mcp_tracing.trace_session(session, tracer_provider=provider)
                    with anyio.fail_after(20):
                        await session.initialize()
                        await session.call_tool("work", {"n": 3})
    finally:
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            await process.wait()
        await process.aclose()
    ours = {s.span_id: s for s in map(span_record, exporter.get_finished_spans())}
    theirs = stored_spans(store)
    # initialize, notifications/initialized, tools/list (mcp 1.x reads the tool's output schema), tools/call:
    # one SERVER span each (the ASGI middleware's, which also opens INTERNAL spans per send and receive)
    posts = [s for s in theirs if s.name == "POST /mcp" and s.kind == "SERVER"]
    assert len(posts) == 4 and all(p.parent_id in ours for p in posts), theirs
    client_call = one(list(ours.values()), "tools/call work", "CLIENT")
    assert one(theirs, "tools/call work", "SERVER").parent_id == client_call.span_id

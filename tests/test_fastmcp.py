"""fastmcp (4.x) coexists: its own spans give way to mcp_tracing's, one CLIENT and one SERVER span per request.

Runs where fastmcp is installed (``scripts/test`` makes a venv for it); skipped elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PROBE, all_spans, by_name, http_probe
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._sdk import fastmcp as _sdk_fastmcp
from mcp_tracing.instrumentor import McpInstrumentor
from mcp_tracing.testing import SpanRecord

fastmcp = pytest.importorskip("fastmcp")

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def default_mode() -> Iterator[None]:
    """Each test starts from fastmcp's default mode, as an application that never set it."""
    settings: Any = fastmcp.settings
    saved = settings.telemetry_mode
    settings.__pydantic_fields_set__.discard("telemetry_mode")
    settings.telemetry_mode = "native"
    settings.__pydantic_fields_set__.discard("telemetry_mode")
    _sdk_fastmcp._fastmcp_quieted = False  # pyright: ignore[reportPrivateUsage]
    try:
        yield
    finally:
        settings.telemetry_mode = saved
        _sdk_fastmcp._fastmcp_quieted = False  # pyright: ignore[reportPrivateUsage]


def adder() -> Any:
    server = fastmcp.FastMCP("adder")

    @server.tool
    def add(a: int, b: int) -> int:
        with trace.get_tracer("tests").start_as_current_span("add.inner"):
            return a + b

    return server


async def call_add(server: Any) -> Any:
    async with fastmcp.Client(server) as client:
        return await client.call_tool("add", {"a": 1, "b": 2})


def spans_of(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def assert_one_span_each_and_the_tool_inside(exporter: InMemorySpanExporter) -> None:
    calls = spans_of(exporter, "tools/call add")
    assert sorted((s.instrumentation_scope.name, s.kind.name) for s in calls if s.instrumentation_scope) == [
        (attr.INSTRUMENTATION_NAME, "CLIENT"),
        (attr.INSTRUMENTATION_NAME, "SERVER"),
    ]
    client, server = sorted(calls, key=lambda s: s.kind.name)
    (inner,) = spans_of(exporter, "add.inner")
    assert server.parent is not None and server.parent.span_id == client.get_span_context().span_id
    assert inner.parent is not None and inner.parent.span_id == server.get_span_context().span_id
    assert not [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "fastmcp"]  # type: ignore[union-attr]


async def test_instrumentor_keeps_one_span_per_side_and_gives_fastmcp_its_mode_back(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    instrumentor = McpInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        result = await call_add(adder())
        assert fastmcp.settings.telemetry_mode == "off"
    finally:
        instrumentor.uninstrument()
    assert result.data == 3
    assert_one_span_each_and_the_tool_inside(exporter)
    assert fastmcp.settings.telemetry_mode == "native"  # as if never instrumented


async def test_trace_by_hand_a_fastmcp_server_and_client_session(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """``instrument_server`` takes fastmcp's server; ``trace_session`` the session inside fastmcp's client."""
    provider, exporter = capture
    server = mcp_tracing.instrument_server(adder(), tracer_provider=provider)
    async with fastmcp.Client(server) as client:
        mcp_tracing.trace_session(client.session, tracer_provider=provider)
        await client.call_tool("add", {"a": 1, "b": 2})
    assert_one_span_each_and_the_tool_inside(exporter)


async def test_an_explicit_native_mode_is_kept_with_a_warning(
    capture: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, exporter = capture
    fastmcp.settings.telemetry_mode = "native"  # the application's own choice
    with caplog.at_level(logging.WARNING, logger="mcp_tracing"):
        mcp_tracing.instrument_server(adder(), tracer_provider=provider)
        mcp_tracing.instrument_server(adder(), tracer_provider=provider)
    assert fastmcp.settings.telemetry_mode == "native"
    warnings = [r.getMessage() for r in caplog.records if "FASTMCP_TELEMETRY_MODE=off" in r.getMessage()]
    assert len(warnings) == 1  # once per process, not per server


# ------------------------------------------------------------------ fastmcp's Client (issue 14, item 5)


def _whole_session(spans: list[SpanRecord], method: str = "tools/call work") -> tuple[SpanRecord, SpanRecord]:
    """Asserts one trace: ``mcp.client.session`` → CLIENT ``method`` → the server's SERVER span → ``probe.work``,
    one span per side per message; returns the root and the client span."""
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.name == attr.CLIENT_SESSION_SPAN and {s.trace_id for s in spans} == {root.trace_id}
    (client,) = [s for s in spans if s.name == method and s.kind == "CLIENT"]
    (server,) = [s for s in spans if s.name == method and s.kind == "SERVER"]
    (work,) = by_name(spans, "probe.work")
    assert (client.parent_id, server.parent_id, work.parent_id) == (root.span_id, client.span_id, server.span_id)
    assert server.service in ("probe-server", "http-probe") and client.service != server.service
    for name in ("initialize", "tools/list"):  # fastmcp lists tools itself on call_tool
        assert len([s for s in spans if s.name == name and s.kind == "CLIENT"]) <= 1
    return root, client


@pytest.mark.subprocess
async def test_trace_session_takes_fastmcp_client_and_its_stdio_server_joins_the_trace(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """Before: ``TypeError``; and fastmcp's spawn (the SDK's, HOME/PATH/... only) lost the spans file."""
    provider, exporter = capture
    client = mcp_tracing.trace_session(fastmcp.Client(PROBE), tracer_provider=provider)
    async with client:
        result = await client.call_tool("work", {"n": 1})
    await client.close()  # fastmcp keeps a stdio server alive between connections until closed
    assert result.content[0].text == "done 1"
    provider.force_flush()
    _, span = _whole_session(all_spans(exporter, spans_file))
    assert span.attributes[attr.NETWORK_TRANSPORT] == attr.TRANSPORT_PIPE


@pytest.mark.subprocess
async def test_trace_session_takes_fastmcp_http_client_and_every_post_carries_traceparent(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    async with http_probe(spans_file) as url:
        client = mcp_tracing.trace_session(fastmcp.Client(url), tracer_provider=provider)
        async with client:
            await client.call_tool("work", {"n": 2})
    provider.force_flush()
    spans = all_spans(exporter, spans_file)
    posts = [s for s in spans if s.name == "POST /mcp"]
    client_spans = {s.span_id for s in spans if s.kind == "CLIENT"} | {s.span_id for s in spans if s.parent_id is None}
    assert posts and all(p.parent_id in client_spans for p in posts)  # no stray one-span traces
    _, span = _whole_session([s for s in spans if "url.path" not in s.attributes])
    assert span.attributes[attr.SERVER_ADDRESS] == "127.0.0.1"


@pytest.mark.subprocess
async def test_zero_code_fastmcp_client_gives_one_trace_per_session(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """Before: one trace per message (no span current in an app without tracing code)."""
    from mcp_tracing._sdk import fastmcp as _fastmcp

    provider, exporter = capture
    users, init = _fastmcp.users(), fastmcp.Client.__init__
    instrumentor = McpInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    assert _fastmcp.users() == users + 1 and fastmcp.Client.__init__ is not init
    try:
        async with fastmcp.Client(PROBE) as client:
            await client.call_tool("work", {"n": 3})
            await client.call_tool("work", {"n": 4})
        await client.close()
    finally:
        instrumentor.uninstrument()
    assert _fastmcp.users() == users and fastmcp.Client.__init__ is init
    provider.force_flush()
    spans = all_spans(exporter, spans_file)
    (root,) = [s for s in spans if s.parent_id is None]
    assert root.name == attr.CLIENT_SESSION_SPAN and {s.trace_id for s in spans} == {root.trace_id}
    calls = [s for s in spans if s.name == "tools/call work"]
    assert sorted(s.kind for s in calls) == ["CLIENT", "CLIENT", "SERVER", "SERVER"]
    assert len(by_name(spans, "probe.work")) == 2

"""fastmcp (4.x) coexists: its own spans give way to mcp_tracing's, one CLIENT and one SERVER span per request.

Runs where fastmcp is installed (``scripts/test`` makes a venv for it); skipped elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing import _attributes as attr
from mcp_tracing import _compat
from mcp_tracing.instrumentor import McpInstrumentor

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
    _compat._fastmcp_quieted = False  # pyright: ignore[reportPrivateUsage]
    try:
        yield
    finally:
        settings.telemetry_mode = saved
        _compat._fastmcp_quieted = False  # pyright: ignore[reportPrivateUsage]


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

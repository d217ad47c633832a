"""Noise control: no spans for keep-alives and housekeeping by default, list calls on request, any method
by pattern; the trace context still travels with the messages that get no span."""

from __future__ import annotations

import pytest
from helpers.inprocess import connected, make_server, names, traced
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing.sampling import HOUSEKEEPING, LIST_CALLS, MethodFilter

pytestmark = pytest.mark.anyio


def test_the_filter_comes_from_arguments_else_the_environment_else_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MCP_TRACING_EXCLUDE_METHODS", raising=False)
    monkeypatch.delenv("MCP_TRACING_DROP_LIST_CALLS", raising=False)
    default = MethodFilter.resolve()
    assert default.excluded == HOUSEKEEPING
    assert [default.traces(m) for m in ("ping", "notifications/tools/list_changed", "tools/list", "tools/call")] == [
        False,
        False,
        True,
        True,
    ]
    assert MethodFilter.resolve(drop_list_calls=True).excluded == HOUSEKEEPING + LIST_CALLS
    assert MethodFilter.resolve(["resources/*"]).traces("ping") is True
    assert MethodFilter.resolve(["resources/*"]).traces("resources/read") is False
    assert MethodFilter.resolve(()).excluded == ()
    monkeypatch.setenv("MCP_TRACING_EXCLUDE_METHODS", "tools/call, prompts/get")
    monkeypatch.setenv("MCP_TRACING_DROP_LIST_CALLS", "true")
    assert MethodFilter.resolve().excluded == ("tools/call", "prompts/get", *LIST_CALLS)
    monkeypatch.setenv("MCP_TRACING_EXCLUDE_METHODS", "")
    assert MethodFilter.resolve(drop_list_calls=False).excluded == ()
    with pytest.raises(TypeError, match="list of patterns"):
        MethodFilter.resolve("ping")


async def test_pings_and_housekeeping_get_no_spans_by_default(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    async with traced(provider) as session:
        await session.send_ping()
        await session.list_tools()
    spans = names(exporter.get_finished_spans())
    assert ("ping", "CLIENT") not in spans and ("ping", "SERVER") not in spans
    assert not [s for s in spans if s[0] == "notifications/initialized"]
    assert spans.count(("tools/list", "CLIENT")) == 1 and spans.count(("tools/list", "SERVER")) == 1


async def test_excluded_calls_get_no_span_but_their_context_still_travels(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    server = mcp_tracing.instrument_server(
        make_server(), exclude_methods=["tools/call"], drop_list_calls=True, tracer_provider=provider
    )
    async with connected(server) as session:
        mcp_tracing.trace_session(
            session, exclude_methods=["tools/call"], drop_list_calls=True, tracer_provider=provider
        )
        await session.initialize()
        with provider.get_tracer("t").start_as_current_span("agent.turn") as turn:
            await session.call_tool("echo", {"text": "x"})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert "tools/call echo" not in spans and "tools/list" not in spans
    assert not [name for name in spans if name.startswith("MCP send")]  # nor mcp 2.x's own span
    inner = spans["echo.inner"]  # the tool's own span still nests under the caller, through _meta
    assert inner.parent is not None and inner.parent.span_id == turn.get_span_context().span_id


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [(True, {"tenant": "acme", "user.id": "42"}), (["tenant"], {"tenant": "acme"}), (False, {})],
)
async def test_each_server_gets_only_the_baggage_it_may_see(
    capture: tuple[TracerProvider, InMemorySpanExporter], allowed: object, expected: dict[str, str]
) -> None:
    from helpers import structured
    from opentelemetry import baggage, context as otel_context

    provider, _ = capture
    server = mcp_tracing.instrument_server(make_server(), tracer_provider=provider)
    token = otel_context.attach(baggage.set_baggage("tenant", "acme", baggage.set_baggage("user.id", "42")))
    try:
        async with connected(server) as session:
            mcp_tracing.trace_session(session, baggage=allowed, tracer_provider=provider)  # type: ignore[arg-type]
            await session.initialize()
            result = await session.call_tool("baggage_report", {})
    finally:
        otel_context.detach(token)
    assert structured(result) == expected
    assert baggage.get_all() == {}  # the caller's own context is untouched


async def test_an_untrusted_server_starts_new_traces_links_the_caller_and_ignores_baggage(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """The trust policy off HTTP too (stdio, in-process): nothing inbound is acted on, all is linked."""
    from helpers import structured
    from opentelemetry import baggage, context as otel_context

    provider, exporter = capture
    server = mcp_tracing.instrument_server(make_server(), policy="untrusted", tracer_provider=provider)
    token = otel_context.attach(baggage.set_baggage("user.id", "42"))
    try:
        async with connected(server) as session:
            mcp_tracing.trace_session(session, tracer_provider=provider)
            await session.initialize()
            result = await session.call_tool("baggage_report", {})
    finally:
        otel_context.detach(token)
    assert structured(result) == {}
    spans = {(s.name, s.kind.name): s for s in exporter.get_finished_spans()}
    client, served = spans[("tools/call baggage_report", "CLIENT")], spans[("tools/call baggage_report", "SERVER")]
    assert served.parent is None and served.context.trace_id != client.context.trace_id
    assert [link.context.span_id for link in served.links] == [client.context.span_id]

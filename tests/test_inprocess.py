"""Client and server shims in one process, over memory streams: API contracts and failure paths."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from helpers import outcome
from helpers.inprocess import McpServer, connected, lowlevel, make_server, names
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2

pytestmark = pytest.mark.anyio


async def exchange(server: Any, provider: TracerProvider | None, *, trace_twice: bool = False) -> list[Any]:
    results: list[Any] = []
    async with connected(server) as session:
        if provider is not None:
            mcp_tracing.trace_session(session, tracer_provider=provider)
            if trace_twice:
                mcp_tracing.trace_session(session, tracer_provider=provider)
        await session.initialize()
        for call in (
            lambda: session.call_tool("echo", {"text": "hi"}),
            lambda: session.get_prompt("broken_prompt"),
            lambda: session.get_prompt("no_such_prompt"),
            lambda: session.read_resource("notes://today"),  # type: ignore[arg-type]
        ):
            try:
                results.append(await call())
            except Exception as exc:
                results.append(exc)
    return results


async def test_in_process_calls_nest_and_return_what_the_untraced_sdk_returns(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    untraced = await exchange(make_server(), None)
    exporter.clear()
    server = mcp_tracing.instrument_server(make_server(), tracer_provider=provider)
    traced = await exchange(server, provider)
    assert [outcome(r) for r in traced] == [outcome(r) for r in untraced]
    spans = [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name != "mcp-python-sdk"]
    by_key = {(s.name, s.kind.name): s for s in spans}
    client, server_span = by_key[("tools/call echo", "CLIENT")], by_key[("tools/call echo", "SERVER")]
    inner = by_key[("echo.inner", "INTERNAL")]
    assert server_span.parent is not None and server_span.parent.span_id == client.context.span_id
    assert inner.parent is not None and inner.parent.span_id == server_span.context.span_id
    # A prompt that raises and an unknown prompt: errors on both sides, no exception text anywhere.
    for name in ("prompts/get broken_prompt", "prompts/get no_such_prompt"):
        for kind in ("CLIENT", "SERVER"):
            span = by_key[(name, kind)]
            assert span.status.status_code is trace.StatusCode.ERROR, (name, kind)
            assert span.attributes is not None and attr.ERROR_TYPE in span.attributes
    assert not any("s3cr3t" in str(s.to_json()) for s in spans)
    for kind in ("CLIENT", "SERVER"):
        read = by_key[("resources/read", kind)]
        assert read.attributes is not None and read.attributes[attr.MCP_RESOURCE_URI] == "notes://today"


async def test_a_low_level_server_is_instrumented_directly(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """instrument_server on the low-level Server (mcp 1.x and 2.x), not the high-level wrapper."""
    provider, exporter = capture
    server = make_server()
    assert mcp_tracing.instrument_server(lowlevel(server), tracer_provider=provider) is lowlevel(server)
    await exchange(server, provider)
    spans = names(exporter.get_finished_spans())
    for name in ("initialize", "tools/call echo", "prompts/get broken_prompt"):
        assert spans.count((name, "CLIENT")) == 1 and spans.count((name, "SERVER")) == 1, name


async def test_tracing_the_same_session_or_server_twice_changes_nothing(
    capture: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, exporter = capture
    server = make_server()
    mcp_tracing.instrument_server(server, tracer_provider=provider)
    with caplog.at_level(logging.WARNING, logger="mcp_tracing"):
        assert mcp_tracing.instrument_server(server, tracer_provider=provider) is server
        await exchange(server, provider, trace_twice=True)
    assert sum("already traced" in r.message for r in caplog.records) == 2
    spans = names(exporter.get_finished_spans())
    assert spans.count(("tools/call echo", "CLIENT")) == 1
    assert spans.count(("tools/call echo", "SERVER")) == 1


async def test_suppressed_instrumentation_records_nothing_and_calls_still_work(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    server = mcp_tracing.instrument_server(make_server(), tracer_provider=provider)
    with suppress_instrumentation():
        results = await exchange(server, provider)
    assert outcome(results[0])["content"][0]["text"] == "hi"
    assert names(exporter.get_finished_spans()) == []


class _BrokenTracer(trace.Tracer):
    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        raise RuntimeError("exporter misconfigured")

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("exporter misconfigured")


class _BrokenProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _BrokenTracer()


async def test_a_broken_tracer_never_breaks_the_call(caplog: pytest.LogCaptureFixture) -> None:
    """Telemetry failures are logged and the message goes through untraced."""
    untraced = await exchange(make_server(), None)
    server = mcp_tracing.instrument_server(make_server(), tracer_provider=_BrokenProvider())
    with caplog.at_level(logging.ERROR, logger="mcp_tracing"):
        traced = await exchange(server, _BrokenProvider())  # type: ignore[arg-type]
    assert [outcome(r) for r in traced] == [outcome(r) for r in untraced]
    assert any("could not start a client span" in r.message for r in caplog.records)
    assert any("could not start a server span" in r.message for r in caplog.records)


def test_unknown_objects_are_rejected_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="ClientSession"):
        mcp_tracing.trace_session(object())
    with pytest.raises(TypeError, match="instrument_server"):
        mcp_tracing.instrument_server(object())


def test_the_sdk_server_span_middleware_is_replaced_in_place() -> None:
    if not IS_V2:
        pytest.skip("mcp 1.x has no server middleware")
    from mcp.server._otel import OpenTelemetryMiddleware

    server = McpServer("x")
    before = list(server.middleware)
    mcp_tracing.instrument_server(server)
    after = list(server.middleware)
    assert isinstance(before[0], OpenTelemetryMiddleware)
    assert isinstance(after[0], mcp_tracing.TracingServerMiddleware)
    assert after[1:] == before[1:]
    assert not any(isinstance(m, OpenTelemetryMiddleware) for m in after)


async def test_the_server_middleware_is_buildable_from_public_arguments(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """``TracingServerMiddleware(build_server_tracer(...))``, added by hand in place of the SDK's, traces as
    ``instrument_server`` does: one SERVER span per message, no SDK span beside it."""
    if not IS_V2:
        pytest.skip("mcp 1.x has no server middleware")
    from mcp.server._otel import OpenTelemetryMiddleware

    from mcp_tracing.server import build_server_tracer

    provider, exporter = capture
    server = make_server()
    chain = lowlevel(server).middleware
    chain[:] = [m for m in chain if not isinstance(m, OpenTelemetryMiddleware)]
    chain.insert(0, mcp_tracing.TracingServerMiddleware(build_server_tracer(tracer_provider=provider)))
    async with connected(server) as session:
        await session.initialize()
        await session.call_tool("echo", {"text": "hi"})
    servers = [(s.name, s.kind.name) for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert sorted(servers) == [("initialize", "SERVER"), ("tools/call echo", "SERVER"), ("tools/list", "SERVER")]


def test_public_api_is_exactly_all() -> None:
    public = sorted(name for name in vars(mcp_tracing) if not name.startswith("_") and name not in _SUBMODULES)
    assert sorted(n for n in mcp_tracing.__all__ if n != "__version__") == public
    assert mcp_tracing.__all__ == sorted(mcp_tracing.__all__)


# Submodules become attributes of the package once imported; "annotations" comes from ``from __future__``.
# ``agent`` is exported as a module (``from mcp_tracing import agent``).
_SUBMODULES = {path.stem for path in Path(mcp_tracing.__file__).parent.iterdir()} - {"agent"} | {"annotations"}


@pytest.mark.parametrize(
    ("method", "code", "refused"),
    [
        ("server/discover", -32602, True),
        ("server/discover", -32601, True),
        ("server/discover", -32603, False),
        ("tools/list", -32601, False),
    ],
)
def test_only_a_refused_discover_probe_is_not_an_error(method: str, code: int, refused: bool) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mcp_tracing._core import spans as _spans

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span(method)
    _spans.record_error_code(span, method, code, "unknown method")
    span.end()
    (done,) = exporter.get_finished_spans()
    expected: dict[str, object] = {"rpc.response.status_code": str(code)}
    expected.update({attr.DISCOVER_REFUSED: True} if refused else {"error.type": str(code)})
    assert dict(done.attributes or {}) == expected
    assert done.status.status_code.name == ("UNSET" if refused else "ERROR")

"""Fast tier for the paths of issue 14, in one process: the HTTP middleware beside other instrumentation (adopted,
nested, full route), GenAI ``execute_tool`` spans claimed as the MCP client span, ``parent_span``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.client_tracer import chosen_parent
from mcp_tracing._core.tool_spans import claim_tool_span
from mcp_tracing.asgi import SCOPE_KEY, full_route

pytestmark = pytest.mark.anyio

# ------------------------------------------------------------------ http.route from the application's root


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({}, None),
        ({"route": Route("/mcp", PlainTextResponse)}, "/mcp"),
        ({"route": Route("/mcp", PlainTextResponse), "root_path": "/billing"}, "/billing/mcp"),
        ({"route": Route("/mcp", PlainTextResponse), "root_path": "/billing/"}, "/billing/mcp"),
        ({"route": Mount("/messages", routes=[]), "root_path": "/messages"}, "/messages"),
        ({"route": Mount("/messages", routes=[]), "root_path": "/api/messages"}, "/api/messages"),
        ({"route": object(), "root_path": "/x"}, None),
    ],
)
def test_the_full_route(scope: dict[str, Any], expected: str | None) -> None:
    assert full_route(scope) == expected


# ------------------------------------------------------------------ another instrumentation's HTTP span


def asgi_instrumentation(app: Any, provider: TracerProvider) -> Any:
    """Stands for the ASGI/Starlette instrumentations: a current HTTP SERVER span around the app."""
    tracer = provider.get_tracer("tests.asgi")

    async def instrumented(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        attributes = {"http.request.method": scope["method"], "url.path": scope["path"]}
        with tracer.start_as_current_span(scope["method"], kind=SpanKind.SERVER, attributes=attributes):
            await app(scope, receive, send)

    return instrumented


def mcp_like_app(seen: list[Any]) -> Starlette:
    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append(request.scope.get(SCOPE_KEY))
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/mcp", endpoint, methods=["POST"])])
    return inner


async def post(app: Any, path: str) -> None:
    """One POST through ``app`` as a server would call it (httpx2 on mcp 2.x, httpx on 1.x)."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post(path)).text == "ok"


@pytest.mark.parametrize("policy", ["default", "gateway", "untrusted"])
async def test_the_span_of_another_instrumentation_is_adopted_and_named_by_the_full_route(
    capture: tuple[TracerProvider, InMemorySpanExporter], policy: Any
) -> None:
    provider, exporter = capture
    seen: list[Any] = []
    inner = mcp_tracing.TraceContextMiddleware(mcp_like_app(seen), policy=policy, tracer_provider=provider)
    app = asgi_instrumentation(Starlette(routes=[Mount("/billing", app=inner)]), provider)
    await post(app, "/billing/mcp")
    servers = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    (info,) = seen
    if policy == "untrusted":  # that policy starts every trace anew: its own root span, the other left alone
        assert len(servers) == 2
        ours = next(
            s for s in servers if s.instrumentation_scope and s.instrumentation_scope.name == attr.INSTRUMENTATION_NAME
        )
        assert ours.parent is None and info.span.get_span_context() == ours.get_span_context()
        return
    (span,) = servers
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "tests.asgi"
    assert span.name == "POST /billing/mcp" and (span.attributes or {})["http.route"] == "/billing/mcp"
    assert info.span.get_span_context() == span.get_span_context() and info.policy == policy


async def test_the_server_span_of_another_request_is_not_adopted(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """An MCP app called in process from another request's handler: that request's span is not this one's."""
    provider, exporter = capture
    seen: list[Any] = []
    app = mcp_tracing.TraceContextMiddleware(mcp_like_app(seen), tracer_provider=provider)
    outer = {"http.request.method": "GET", "url.path": "/dashboard"}
    with provider.get_tracer("tests.asgi").start_as_current_span("GET", kind=SpanKind.SERVER, attributes=outer):
        await post(app, "/mcp")
    ours = [s for s in exporter.get_finished_spans() if s.name == "POST /mcp"]
    assert len(ours) == 1 and ours[0].kind == SpanKind.SERVER


async def test_a_second_middleware_on_the_same_request_passes_it_through(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = capture
    seen: list[Any] = []
    inner = mcp_tracing.TraceContextMiddleware(mcp_like_app(seen), policy="gateway", tracer_provider=provider)
    app = mcp_tracing.TraceContextMiddleware(inner, tracer_provider=provider)  # the outer one's policy holds
    await post(app, "/mcp")
    (span,) = exporter.get_finished_spans()
    assert (span.name, span.kind, (span.attributes or {})["http.route"]) == ("POST /mcp", SpanKind.SERVER, "/mcp")
    (info,) = seen
    assert info.policy == "default" and info.span.get_span_context() == span.get_span_context()


async def test_an_instrumented_servers_app_serves_through_the_middleware_once(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    from mcp_tracing._core.registry import IS_V2

    if IS_V2:
        from mcp.server.mcpserver import MCPServer as McpServer
    else:
        from mcp.server.fastmcp import FastMCP as McpServer  # type: ignore[no-redef]
    provider, _ = capture
    server: Any = mcp_tracing.instrument_server(McpServer("apps"), tracer_provider=provider)
    app = server.streamable_http_app()
    assert [m.cls for m in app.user_middleware].count(mcp_tracing.TraceContextMiddleware) == 1
    sse = server.sse_app()
    assert [m.cls for m in sse.user_middleware].count(mcp_tracing.TraceContextMiddleware) == 1


# ------------------------------------------------------------------ GenAI execute_tool spans


def test_an_execute_tool_span_is_claimed_once_and_only_for_its_tool(
    capture: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = capture
    tracer = provider.get_tracer("tests.framework")
    genai = {attr.GEN_AI_OPERATION_NAME: "execute_tool", attr.GEN_AI_TOOL_NAME: "files_search"}
    with tracer.start_as_current_span("execute_tool files_search", attributes=genai) as span:
        assert claim_tool_span("tools/call", {"name": "read"}) is None  # another tool
        assert claim_tool_span("tools/list", None) is None
        assert claim_tool_span("tools/call", {"name": "search"}) is span  # the prefixed name ends with it
        span.set_attribute(attr.MCP_METHOD_NAME, "tools/call")  # what the client does with a claimed span
        assert claim_tool_span("tools/call", {"name": "search"}) is None  # a retry nests instead
    with tracer.start_as_current_span("chat model", attributes={attr.GEN_AI_OPERATION_NAME: "chat"}):
        assert claim_tool_span("tools/call", {"name": "search"}) is None
    assert claim_tool_span("tools/call", {"name": "search"}) is None  # nothing current


def test_parent_span_is_asked_first_and_never_breaks_a_call(
    capture: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    provider, _ = capture
    with provider.get_tracer("tests").start_as_current_span("framework.tool") as span:
        pass
    ctx = chosen_parent(lambda: span)
    assert ctx is not None and trace.get_current_span(ctx) is span
    assert chosen_parent(None) is None
    assert chosen_parent(lambda: None) is None
    assert chosen_parent(lambda: trace.INVALID_SPAN) is None

    def broken() -> None:
        raise RuntimeError("framework changed")

    with caplog.at_level(logging.ERROR, logger="mcp_tracing"):
        assert chosen_parent(broken) is None
    assert "parent_span raised" in caplog.text

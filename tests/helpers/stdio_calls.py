"""Tool calls to a spawned probe server over stdio, and the one-span-each-side check."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import stdio_client as sdk_stdio_client
from opentelemetry import context as otel_context, trace
from opentelemetry.sdk.trace import TracerProvider

import mcp_tracing
import mcp_tracing.stdio
from mcp_tracing._core import attributes as attr
from mcp_tracing.testing import SpanRecord

Call = tuple[str, dict[str, Any], dict[str, Any]]


async def run_calls(
    params: Any,
    calls: list[Call],
    provider: TracerProvider,
    *,
    traced_client: bool = True,
    traced_spawn: bool = True,
    calls_in_span: bool = True,
    session_options: dict[str, Any] | None = None,
    trace_options: dict[str, Any] | None = None,
) -> tuple[SpanRecord, list[Any]]:
    """Spawns the server inside span ``agent.root``, makes the calls, returns the root and the outcomes.

    With ``calls_in_span=False`` the root is current only while the server is spawned, so the calls carry
    no context at all (not even the one mcp 2.x's own client would inject).
    """
    tracer = provider.get_tracer("tests.agent")
    results: list[Any] = []
    root = tracer.start_span("agent.root")
    token = otel_context.attach(trace.set_span_in_context(root))
    try:
        async with AsyncExitStack() as stack:
            transport = mcp_tracing.stdio_client(params) if traced_spawn else sdk_stdio_client(params)
            read, write = await stack.enter_async_context(transport)
            session = await stack.enter_async_context(ClientSession(read, write, **(session_options or {})))
            if not calls_in_span:
                otel_context.detach(token)
                token = None
            if traced_client:
                mcp_tracing.trace_session(session, tracer_provider=provider, **(trace_options or {}))
            with anyio.fail_after(20):
                await session.initialize()
                for name, arguments, kwargs in calls:
                    try:
                        results.append(await session.call_tool(name, arguments, **kwargs))
                    except Exception as exc:  # the SDK's own errors are part of what we compare
                        results.append(exc)
    finally:
        if token is not None:
            otel_context.detach(token)
        root.end()
    ctx = root.get_span_context()
    record = SpanRecord(
        "agent.root", format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), None, "", 0, 0, "", None, None
    )
    return record, results


def assert_one_client_and_one_server_span_per_request(spans: list[SpanRecord]) -> None:
    """No duplicates: every request has exactly one CLIENT and one SERVER span (SDK 2.x spans replaced).

    A request is its method and id: each side numbers the requests it sends from its own counter.
    """
    assert not [s.name for s in spans if s.name.startswith("MCP send")]
    ids: dict[tuple[tuple[str, str], str], int] = {}
    for s in spans:
        if attr.JSONRPC_REQUEST_ID in s.attributes:
            request = (str(s.attributes[attr.MCP_METHOD_NAME]), str(s.attributes[attr.JSONRPC_REQUEST_ID]))
            key = (request, s.kind)
            ids[key] = ids.get(key, 0) + 1
    request_ids = {rid for rid, _ in ids}
    assert request_ids, "no request spans at all"
    for rid in request_ids:
        assert ids.get((rid, "CLIENT")) == 1, (rid, ids)
        assert ids.get((rid, "SERVER")) == 1, (rid, ids)

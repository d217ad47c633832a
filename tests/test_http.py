"""Streamable HTTP end to end, over a real uvicorn server on 127.0.0.1 in another process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import all_spans, http_probe, one, read_requests, structured
from mcp import ClientSession
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing import _attributes as attr
from mcp_tracing.privacy import args_hash
from mcp_tracing.testing import SpanRecord

pytestmark = pytest.mark.anyio

MODES = {
    "stateful-sse": {"stateless": False, "json_response": False},
    "stateful-json": {"stateless": False, "json_response": True},
    "stateless-sse": {"stateless": True, "json_response": False},
    "stateless-json": {"stateless": True, "json_response": True},
}


async def call_tools(
    url: str, provider: TracerProvider, calls: list[tuple[str, dict[str, Any]]], *, concurrent: bool = False
) -> tuple[SpanRecord, list[Any]]:
    """Connects inside span ``agent.root`` and calls the tools (one after another, or all at once)."""
    tracer = provider.get_tracer("tests.agent")
    results: list[Any] = [None] * len(calls)
    with tracer.start_as_current_span("agent.root") as root:
        async with mcp_tracing.streamable_http_client(url) as (read, write, *_):
            async with ClientSession(read, write) as session:
                mcp_tracing.trace_session(session, tracer_provider=provider)
                with anyio.fail_after(30):
                    await session.initialize()

                    async def call(index: int) -> None:
                        name, arguments = calls[index]
                        results[index] = await session.call_tool(name, arguments)

                    if concurrent:
                        async with anyio.create_task_group() as tg:
                            for index in range(len(calls)):
                                tg.start_soon(call, index)
                    else:
                        for index in range(len(calls)):
                            await call(index)
    ctx = root.get_span_context()
    record = SpanRecord("agent.root", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", None, "", 0, 0, "", None, None)
    return record, results


def traceparent_ids(value: str) -> tuple[str, str]:
    _, trace_id, span_id, _ = value.split("-")
    return trace_id, span_id


def header(request: dict[str, Any], name: str) -> str | None:
    values = [v for k, v in request["headers"] if k == name]
    assert len(values) <= 1
    return values[0] if values else None


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
async def test_every_request_carries_its_messages_context_and_server_spans_nest(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, tmp_path: Path, mode: dict[str, bool]
) -> None:
    provider, exporter = capture
    requests_file = tmp_path / "requests.jsonl"
    async with http_probe(spans_file, requests_file, **mode) as url:
        root, results = await call_tools(url, provider, [("work", {"n": 1}), ("work", {"n": 2})])
        port = int(url.split(":")[2].split("/")[0])
    assert [structured(r) for r in results] == ["done 1", "done 2"]
    spans = all_spans(exporter, spans_file)
    client_spans = {s.span_id: s for s in spans if s.kind == "CLIENT"}

    # Every POST carrying a message: header == _meta == the CLIENT span of that message.
    posts = [r for r in read_requests(requests_file) if r["method"] == "POST"]
    assert len(posts) >= 5  # initialize, initialized, 2 x tools/call, tools/list
    for post in posts:
        body = post["body"]
        traceparent = header(post, "traceparent")
        assert traceparent is not None, post
        assert traceparent == body["params"]["_meta"]["traceparent"], post
        span = client_spans[traceparent_ids(traceparent)[1]]
        assert span.trace_id == root.trace_id
        assert span.attributes[attr.MCP_METHOD_NAME] == body["method"]
        if "id" in body:
            assert span.attributes[attr.JSONRPC_REQUEST_ID] == str(body["id"])
    # The standalone GET stream and the DELETE carry the session's context: the span current at connect.
    for other in (r for r in read_requests(requests_file) if r["method"] in ("GET", "DELETE")):
        assert traceparent_ids(header(other, "traceparent") or "") == (root.trace_id, root.span_id), other

    http_spans = {s.span_id: s for s in spans if s.kind == "SERVER" and s.attributes.get("http.request.method")}
    for n in (1, 2):
        digest = args_hash({"n": n})
        client = next(s for s in spans if s.kind == "CLIENT" and s.attributes.get(attr.TOOL_ARGS_HASH) == digest)
        server = next(s for s in spans if s.kind == "SERVER" and s.parent_id == client.span_id)
        inner = one([s for s in spans if s.attributes.get("n") == n], "probe.work")
        assert (server.name, server.trace_id, inner.parent_id) == ("tools/call work", root.trace_id, server.span_id)
        assert client.parent_id == root.span_id
        # The server span links to the HTTP span of the POST that carried it; that span is the header's child.
        (link,) = server.links
        http_span = http_spans[link]
        assert (http_span.name, http_span.parent_id) == ("POST /mcp", client.span_id)
        assert http_span.attributes["http.response.status_code"] == 200
        session_id = client.attributes.pop(attr.MCP_SESSION_ID, None)
        assert (session_id is None) == mode["stateless"]
        assert server.attributes.get(attr.MCP_SESSION_ID) == session_id
        assert isinstance(client.attributes.pop(attr.TOOL_RESULT_SIZE), int)
        assert client.attributes == {
            attr.MCP_METHOD_NAME: "tools/call",
            attr.GEN_AI_OPERATION_NAME: "execute_tool",
            attr.GEN_AI_TOOL_NAME: "work",
            attr.JSONRPC_REQUEST_ID: client.attributes[attr.JSONRPC_REQUEST_ID],
            attr.MCP_PROTOCOL_VERSION: client.attributes[attr.MCP_PROTOCOL_VERSION],
            attr.NETWORK_TRANSPORT: "tcp",
            attr.NETWORK_PROTOCOL_NAME: "http",
            attr.SERVER_ADDRESS: "127.0.0.1",
            attr.SERVER_PORT: port,
            attr.SERVER_NAME: "http-probe",
            attr.TOOL_ARGS_HASH: args_hash({"n": n}),
            attr.TOOL_STATUS: "ok",
        }
        assert server.attributes[attr.NETWORK_TRANSPORT] == "tcp"
        assert server.attributes[attr.CLIENT_ADDRESS] == "127.0.0.1"

"""Streamable HTTP end to end, over a real uvicorn server on 127.0.0.1 in another process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import all_spans, http_probe, one, read_requests, structured
from helpers.requests import header
from mcp import ClientSession
from opentelemetry import baggage, context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing.privacy import args_hash
from mcp_tracing.testing import SpanRecord, read_spans

pytestmark = pytest.mark.anyio

MODES: dict[str, dict[str, Any]] = {
    "stateful-sse": {"stateless": False, "json_response": False},
    "stateful-json": {"stateless": False, "json_response": True},
    "stateless-sse": {"stateless": True, "json_response": False},
    "stateless-json": {"stateless": True, "json_response": True},
}


async def call_tools(
    url: str,
    provider: TracerProvider,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    concurrent: bool = False,
    server_name: str | None = None,
) -> tuple[SpanRecord, list[Any]]:
    """Connects inside span ``agent.root`` and calls the tools (one after another, or all at once)."""
    tracer = provider.get_tracer("tests.agent")
    results: list[Any] = [None] * len(calls)
    with tracer.start_as_current_span("agent.root") as root:
        async with mcp_tracing.streamable_http_client(url, server_name=server_name) as (read, write, *_):
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


@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
async def test_every_request_carries_its_messages_context_and_server_spans_nest(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, tmp_path: Path, mode: dict[str, Any]
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
        if body["method"] == "notifications/initialized":  # housekeeping: no span, the session's context
            assert traceparent_ids(traceparent) == (root.trace_id, root.span_id)
            continue
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
            attr.TOOL_ARGS_SHAPE: "n",
            attr.TOOL_STATUS: "ok",
        }
        assert server.attributes[attr.NETWORK_TRANSPORT] == "tcp"
        assert server.attributes[attr.CLIENT_ADDRESS] == "127.0.0.1"


def new_http_client() -> Any:
    """The SDK's own default HTTP client (httpx2 on mcp 2.x, httpx on 1.x)."""
    from mcp.shared._httpx_utils import create_mcp_http_client

    return create_mcp_http_client()


MCP_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-06-18",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "plain", "version": "1"}},
}
WORK = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "work", "arguments": {"n": 3}}}
HEADER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def post_all(url: str, messages: list[dict[str, Any]], headers: Any) -> list[tuple[int, Any]]:
    """Plain HTTP POSTs of JSON-RPC messages (no MCP client, no _meta): status and JSON body of each."""
    out: list[tuple[int, Any]] = []
    async with new_http_client() as client:
        for message in messages:
            response = await client.post(url, json=message, headers=headers)
            out.append((response.status_code, response.json() if response.content else None))
    return out


async def test_a_header_only_client_gets_server_spans_under_its_header_context(
    spans_file: Path,
) -> None:
    """No _meta at all (a plain HTTP client, a gateway): the traceparent header is the parent."""
    async with http_probe(spans_file, stateless=True, json_response=True) as url:
        replies = await post_all(url, [INITIALIZE, WORK], {**MCP_HEADERS, "traceparent": HEADER_TRACEPARENT})
    assert [status for status, _ in replies] == [200, 200]
    assert replies[1][1]["result"]["content"][0]["text"] == "done 3"
    spans = read_spans(spans_file)
    for name in ("initialize", "tools/call work"):
        server = one(spans, name, "SERVER")
        assert (server.trace_id, server.parent_id) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
        (link,) = server.links
        http_span = next(s for s in spans if s.span_id == link)
        assert http_span.name == "POST /mcp" and http_span.parent_id == "b7ad6b7169203331"
    assert one(spans, "probe.work").parent_id == one(spans, "tools/call work", "SERVER").span_id


@pytest.mark.parametrize("stateless", [False, True], ids=["stateful", "stateless"])
async def test_fifty_concurrent_calls_on_one_session_are_never_mis_parented(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, stateless: bool
) -> None:
    provider, exporter = capture
    calls = [("work", {"n": n}) for n in range(50)]
    async with http_probe(spans_file, stateless=stateless) as url:
        _, results = await call_tools(url, provider, calls, concurrent=True)
    assert [structured(r) for r in results] == [f"done {n}" for n in range(50)]
    spans = all_spans(exporter, spans_file)
    by_id = {s.span_id: s for s in spans}
    mis_parented = 0
    for n in range(50):
        inner = one([s for s in spans if s.attributes.get("n") == n], "probe.work")
        server = by_id[inner.parent_id or ""]
        client = by_id.get(server.parent_id or "")
        if client is None or client.attributes.get(attr.TOOL_ARGS_HASH) != args_hash({"n": n}):
            mis_parented += 1
    assert mis_parented == 0


MALFORMED_HEADERS: dict[str, list[tuple[bytes, bytes]]] = {
    "bad-traceparent": [(b"traceparent", b"00-zzzz-b7ad6b7169203331-01")],
    "10kb-tracestate": [(b"traceparent", HEADER_TRACEPARENT.encode()), (b"tracestate", b"a=" + b"b" * 10_240)],
    "repeated": [(b"traceparent", HEADER_TRACEPARENT.encode()), (b"traceparent", HEADER_TRACEPARENT.encode())],
    "non-ascii": [(b"traceparent", b"00-\xff\xfe-\xc3\xa9-01"), (b"baggage", b"k=\xe2\x82\xac")],
}


@pytest.mark.parametrize("bad", MALFORMED_HEADERS.values(), ids=MALFORMED_HEADERS.keys())
async def test_malformed_trace_headers_are_served_exactly_as_without_the_middleware(
    spans_file: Path, bad: list[tuple[bytes, bytes]]
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in MCP_HEADERS.items()] + bad
    replies = {}
    for traced in (False, True):
        async with http_probe(spans_file, stateless=True, json_response=True, traced=traced) as url:
            replies[traced] = await post_all(url, [INITIALIZE, WORK], headers)
    assert replies[True] == replies[False]
    assert [status for status, _ in replies[True]] == [200, 200]
    spans = read_spans(spans_file)
    server = one(spans, "tools/call work", "SERVER")
    if bad == MALFORMED_HEADERS["10kb-tracestate"]:
        # A valid traceparent next to an oversized tracestate: the traceparent still counts.
        assert server.parent_id == "b7ad6b7169203331"
    else:
        # Nothing valid arrived: the HTTP span is a new root and the MCP span its child.
        http_span = next(s for s in spans if s.span_id == server.parent_id)
        assert http_span.name == "POST /mcp" and http_span.parent_id is None
        assert server.trace_id != "0af7651916cd43dd8448eb211c80319c"


async def test_gateway_policy_parents_on_the_http_span_and_links_the_message_context(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    async with http_probe(spans_file, policy="gateway") as url:
        await call_tools(url, provider, [("work", {"n": 1})])
    spans = all_spans(exporter, spans_file)
    client = one(spans, "tools/call work", "CLIENT")
    server = one(spans, "tools/call work", "SERVER")
    http_span = next(s for s in spans if s.span_id == server.parent_id)
    assert http_span.name == "POST /mcp" and http_span.parent_id == client.span_id  # the header's span
    assert server.links == (client.span_id,)
    assert one(spans, "probe.work").parent_id == server.span_id


async def test_untrusted_policy_starts_new_traces_links_what_arrived_and_ignores_baggage(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    provider, exporter = capture
    token = otel_context.attach(baggage.set_baggage("user.id", "42"))
    try:
        for policy in ("default", "untrusted"):
            async with http_probe(spans_file, policy=policy) as url:
                _, results = await call_tools(url, provider, [("context_report", {})])
            report = structured(results[0])
            assert report["baggage"] == ({"user.id": "42"} if policy == "default" else {}), policy
    finally:
        otel_context.detach(token)
    spans = all_spans(exporter, spans_file)
    client = [s for s in spans if s.name == "tools/call context_report" and s.kind == "CLIENT"][-1]
    server = [s for s in spans if s.name == "tools/call context_report" and s.kind == "SERVER"][-1]
    assert server.parent_id is None and server.trace_id != client.trace_id
    http_span = next(s for s in spans if s.span_id in server.links and s.name == "POST /mcp")
    assert http_span.parent_id is None and http_span.links == (client.span_id,)
    assert set(server.links) == {client.span_id, http_span.span_id}


@pytest.mark.parametrize(("server", "middleware"), [("untrusted", "default"), ("default", "untrusted")])
async def test_the_stricter_of_the_servers_and_the_middlewares_policies_holds(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, server: str, middleware: str
) -> None:
    """``instrument_server(policy=...)`` and ``TraceContextMiddleware(policy=...)`` disagreeing, either way round
    (the README's own snippet gave the middleware's ``default`` the last word): ``untrusted`` holds, a new trace
    and no baggage from the caller."""
    provider, exporter = capture
    token = otel_context.attach(baggage.set_baggage("user.id", "42"))
    try:
        async with http_probe(spans_file, policy=server, middleware_policy=middleware) as url:
            _, results = await call_tools(url, provider, [("context_report", {})])
    finally:
        otel_context.detach(token)
    assert structured(results[0])["baggage"] == {}
    spans = all_spans(exporter, spans_file)
    client = one(spans, "tools/call context_report", "CLIENT")
    served = one(spans, "tools/call context_report", "SERVER")
    assert served.parent_id is None and served.trace_id != client.trace_id and client.span_id in served.links


async def test_http_spans_nest_under_the_mcp_span_and_the_header_carries_them(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, tmp_path: Path
) -> None:
    """http_spans=True: OpenTelemetry's httpx instrumentation, parented right on mcp 1.x as on 2.x."""
    provider, exporter = capture
    requests_file = tmp_path / "requests.jsonl"
    async with http_probe(spans_file, requests_file) as url:
        with provider.get_tracer("tests").start_as_current_span("agent.root"):
            client = mcp_tracing.instrument_http_client(new_http_client(), http_spans=True, tracer_provider=provider)
            async with client, mcp_tracing.streamable_http_client(url, http_client=client) as (read, write, *_):
                async with ClientSession(read, write) as session:
                    mcp_tracing.trace_session(session, tracer_provider=provider)
                    await session.initialize()
                    await session.call_tool("work", {"n": 5})
    spans = all_spans(exporter, spans_file)
    mcp_client = one(spans, "tools/call work", "CLIENT")
    http_client_span = next(s for s in spans if s.kind == "CLIENT" and s.parent_id == mcp_client.span_id)
    assert http_client_span.name == "POST"
    post = next(r for r in read_requests(requests_file) if (r["body"] or {}).get("method") == "tools/call")
    assert traceparent_ids(header(post, "traceparent") or "")[1] == http_client_span.span_id
    assert one(spans, "tools/call work", "SERVER").parent_id == mcp_client.span_id  # _meta still wins


def test_unknown_policies_are_rejected() -> None:
    with pytest.raises(ValueError, match="policy must be one of default, gateway, untrusted"):
        mcp_tracing.TraceContextMiddleware(lambda *_: None, policy="trusting")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="policy must be one of"):
        mcp_tracing.instrument_server(object(), policy="nope")  # type: ignore[arg-type]


async def test_client_and_server_on_different_mcp_major_versions_give_one_trace_over_http(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    from helpers.processes import other_python

    python = other_python()
    provider, exporter = capture
    async with http_probe(spans_file, python=python) as url:
        root, _ = await call_tools(url, provider, [("work", {"n": 8})], server_name="probe-v-other")
    spans = all_spans(exporter, spans_file)
    client = one(spans, "tools/call work", "CLIENT")
    server = one(spans, "tools/call work", "SERVER")
    assert (client.trace_id, server.trace_id) == (root.trace_id, root.trace_id)
    assert (client.parent_id, server.parent_id) == (root.span_id, client.span_id)
    assert one(spans, "probe.work").parent_id == server.span_id
    assert client.attributes[attr.SERVER_NAME] == "probe-v-other"  # named at the transport
    assert server.attributes[attr.SERVER_NAME] == "http-probe"  # the server's own name
    assert len(server.links) == 1 and next(s for s in spans if s.span_id == server.links[0]).name == "POST /mcp"

"""mcp 2.x's high-level ``Client``: traced before or after it is entered, every round trip one span pair."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from helpers import all_spans, one, probe_params, structured
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing._core import attributes as attr
from mcp_tracing._core.registry import IS_V2

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not IS_V2, reason="mcp.Client exists only in mcp 2.x"),
]


@pytest.mark.parametrize("when", ["before-enter", "after-enter"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_traced_client_gives_one_trace_with_one_span_pair_per_request(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, when: str, mode: str
) -> None:
    from mcp import Client

    provider, exporter = capture
    with provider.get_tracer("tests").start_as_current_span("agent.root") as root:
        client = Client(mcp_tracing.stdio_client(probe_params()), mode=mode)  # type: ignore[arg-type]
        if when == "before-enter":
            mcp_tracing.trace_session(client, tracer_provider=provider)
        with anyio.fail_after(20):
            async with client:
                if when == "after-enter":
                    mcp_tracing.trace_session(client, tracer_provider=provider)
                assert structured(await client.call_tool("work", {"n": 9})) == "done 9"
    root_id = format(root.get_span_context().span_id, "016x")
    spans = all_spans(exporter, spans_file)
    handshake = "server/discover" if mode == "auto" else "initialize"
    sdk_spans = [s.name for s in spans if s.name.startswith("MCP send")]
    client_span = one(spans, "tools/call work", "CLIENT")
    server_span = one(spans, "tools/call work", "SERVER")
    assert (client_span.parent_id, server_span.parent_id) == (root_id, client_span.span_id)
    # Learnt from the handshake whichever way it went (initialize result, or server/discover's _meta stamp).
    assert client_span.attributes[attr.SERVER_NAME] == "probe"
    assert client_span.attributes[attr.MCP_PROTOCOL_VERSION] == server_span.attributes[attr.MCP_PROTOCOL_VERSION]
    assert one(spans, "probe.work").parent_id == server_span.span_id
    if when == "before-enter":
        assert sdk_spans == []
        assert one(spans, handshake, "SERVER").parent_id == one(spans, handshake, "CLIENT").span_id
    else:  # the handshake went out before tracing began: the SDK's own span is the only client span
        assert sdk_spans == [f"MCP send {handshake}"]
        assert one(spans, handshake, "SERVER").parent_id == one(spans, f"MCP send {handshake}").span_id


async def test_the_auto_mode_probe_refused_by_an_older_server_is_not_an_error(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path
) -> None:
    """A 2.x ``Client`` in auto mode asks an mcp 1.x server ``server/discover`` first, is refused, and falls back to
    ``initialize``: the refusal is recorded (code, ``mcp_tracing.discover.refused``) on both sides, never as an
    error, so the session does not show up among failing traces."""
    from helpers.processes import other_python
    from mcp import Client

    provider, exporter = capture
    with provider.get_tracer("tests").start_as_current_span("agent.root"):
        client = Client(mcp_tracing.stdio_client(probe_params(python=other_python())), mode="auto")
        mcp_tracing.trace_session(client, tracer_provider=provider)
        with anyio.fail_after(30):
            async with client:
                assert structured(await client.call_tool("work", {"n": 2})) == "done 2"
    spans = all_spans(exporter, spans_file)
    probe = one(spans, "server/discover", "CLIENT")
    assert probe.status == "UNSET" and attr.ERROR_TYPE not in probe.attributes
    assert {k: v for k, v in probe.attributes.items() if k in (attr.DISCOVER_REFUSED, "rpc.response.status_code")} == {
        attr.DISCOVER_REFUSED: True,
        "rpc.response.status_code": "-32602",
    }
    assert one(spans, "initialize", "SERVER").parent_id == one(spans, "initialize", "CLIENT").span_id
    assert [s.name for s in spans if s.status == "ERROR"] == []


async def test_a_traced_client_given_stdio_parameters_spawns_with_the_context_and_this_processs_store(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, tmp_path: Path
) -> None:
    """``Client(StdioServerParameters(...))`` + ``trace_session``: the SDK's own spawn would pass the child only
    HOME, LOGNAME, PATH, SHELL, TERM and USER. Traced, the child gets the context (its session span is a child
    of the span current at spawn) and this process's resolved store, and client spans say ``pipe``."""
    from mcp import Client

    provider, exporter = capture
    with provider.get_tracer("tests").start_as_current_span("agent.root") as root:
        client = mcp_tracing.trace_session(Client(probe_params()), tracer_provider=provider)
        with anyio.fail_after(20):
            async with client:
                report = structured(await client.call_tool("env_report", {}))
    spans = all_spans(exporter, spans_file)
    root_id = format(root.get_span_context().span_id, "016x")
    assert one(spans, attr.SERVER_SESSION_SPAN).parent_id == root_id
    served = one(spans, "tools/call env_report", "SERVER")
    call = one(spans, "tools/call env_report", "CLIENT")
    assert (call.parent_id, served.parent_id) == (root_id, call.span_id)
    assert call.attributes[attr.NETWORK_TRANSPORT] == attr.TRANSPORT_PIPE
    assert report["env"]["MCP_TRACING_STORE"] == str(tmp_path / "xdg" / "mcp-tracing" / "traces.db")
    assert report["env"]["TRACEPARENT"].split("-")[2] == root_id


async def test_a_traced_client_given_a_url_sends_traceparent_on_every_request(
    capture: tuple[TracerProvider, InMemorySpanExporter], spans_file: Path, tmp_path: Path
) -> None:
    """``Client("http://.../mcp")`` + ``trace_session``: every HTTP request carries a ``traceparent``, so the
    server's ``POST /mcp`` spans join the agent's trace instead of starting stray traces of their own."""
    from helpers import http_probe, read_requests
    from mcp import Client

    provider, exporter = capture
    requests_file = tmp_path / "requests.jsonl"
    async with http_probe(spans_file, requests_file) as url:
        with provider.get_tracer("tests").start_as_current_span("agent.root") as root:
            client = mcp_tracing.trace_session(Client(url, mode="legacy"), tracer_provider=provider)
            with anyio.fail_after(20):
                async with client:
                    assert structured(await client.call_tool("work", {"n": 3})) == "done 3"
    trace_id = format(root.get_span_context().trace_id, "032x")
    posts = [r for r in read_requests(requests_file) if r["method"] == "POST"]
    assert posts and all(
        any(k == "traceparent" and v.split("-")[1] == trace_id for k, v in post["headers"]) for post in posts
    ), posts
    spans = all_spans(exporter, spans_file)
    http_spans = [s for s in spans if s.name == "POST /mcp"]
    assert len(http_spans) == len(posts) and {s.trace_id for s in http_spans} == {trace_id}
    assert one(spans, "tools/call work", "SERVER").parent_id == one(spans, "tools/call work", "CLIENT").span_id

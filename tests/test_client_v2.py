"""mcp 2.x's high-level ``Client``: traced before or after it is entered, every round trip one span pair."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from helpers import all_spans, one, probe_params, structured
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mcp_tracing
from mcp_tracing import _attributes as attr
from mcp_tracing._compat import IS_V2

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
    from conftest import other_python
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

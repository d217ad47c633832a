"""Hostile peers (issue 15) on the SDK's own paths: what a peer chooses is bounded before it becomes a span,
over stdio and HTTP, on both SDK lines, and a server whose backend is down stays small. Hostile input to the
tools (the proxy, the store, the CLI and views, the key, the sampler): ``test_hostile_tools.py``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import HANDSHAKE, HUGE, PROBE, free_port, http_probe, read_until, rss, tool_call as call, wrap_env

from mcp_tracing._core import attributes as attr, spans as _spans
from mcp_tracing._core.bounds import CUT_MARK, NAME_LIMIT, URI_LIMIT
from mcp_tracing.testing import read_spans

# ------------------------------------------------------------------ row 1: peer-given strings are bounded


def test_every_peer_given_string_is_cut_to_its_limit() -> None:
    params = {"name": HUGE, "uri": HUGE, "arguments": {f"k{i}": i for i in range(100_000)}}
    name = _spans.span_name("tools/call", params)
    assert name == "tools/call " + HUGE[: NAME_LIMIT - 1] + CUT_MARK
    assert _spans.span_name(HUGE, None) == HUGE[: NAME_LIMIT - 1] + CUT_MARK
    tool = _spans.message_attributes(
        "tools/call", params, request_id=HUGE, protocol_version=HUGE, server_name=HUGE, transport="pipe"
    )
    assert tool[attr.GEN_AI_TOOL_NAME] == HUGE[: NAME_LIMIT - 1] + CUT_MARK
    for key in (attr.JSONRPC_REQUEST_ID, attr.MCP_PROTOCOL_VERSION, attr.SERVER_NAME):
        assert len(str(tool[key])) == NAME_LIMIT
    resource = _spans.message_attributes("resources/read", params)
    assert len(str(resource[attr.MCP_RESOURCE_URI])) == URI_LIMIT
    assert len(_spans.message_attributes(HUGE, None)[attr.MCP_METHOD_NAME]) == NAME_LIMIT  # type: ignore[arg-type]
    assert _spans.span_name("tools/call", {"name": "ok"}) == "tools/call ok"  # short values are left alone


def assert_small_spans(spans_file: Path, calls: int) -> None:
    """Every span of the server's is small: names and values cut, never the 2 MB the peer sent."""
    assert spans_file.stat().st_size < 10_000 * calls, spans_file.stat().st_size  # 4 MB per call before
    served = [s for s in read_spans(spans_file) if s.kind == "SERVER" and s.name.startswith("tools/call")]
    assert len(served) == calls
    for span in served:
        assert len(span.name) == len("tools/call ") + NAME_LIMIT and span.name.endswith(CUT_MARK)
        assert all(len(str(v)) <= URI_LIMIT for v in span.attributes.values())


@pytest.mark.subprocess
@pytest.mark.anyio
async def test_a_2mb_tool_name_over_stdio_makes_a_small_span(spans_file: Path) -> None:
    env = {**os.environ, "PROBE_TRACED": "1"}
    process = await anyio.open_process([sys.executable, str(PROBE)], env=env, stderr=None)
    lines = [*HANDSHAKE, *(call(i, HUGE) for i in range(1, 6))]
    assert process.stdin is not None and process.stdout is not None
    async with process:
        with anyio.fail_after(60):
            for message in lines:
                await process.stdin.send(json.dumps(message).encode() + b"\n")
            answered, buffer = 0, b""
            while answered < 6:  # initialize and the 5 calls (unknown tool: an error result each)
                buffer += await process.stdout.receive()
                answered = buffer.count(b"\n")
            await process.stdin.aclose()
            await process.wait()
    assert_small_spans(spans_file, 5)


@asynccontextmanager
async def raw_http_session(url: str) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[int]]]:
    """A raw streamable-HTTP client past the handshake: yields ``post(message)``, which returns the status."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx  # type: ignore[no-redef]
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as client:
        first = await client.post(url, json=HANDSHAKE[0], headers=headers)
        headers |= {"mcp-session-id": first.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
        await client.post(url, json=HANDSHAKE[1], headers=headers)

        async def post(message: dict[str, Any]) -> int:
            return (await client.post(url, json=message, headers=headers)).status_code

        yield post


@pytest.mark.subprocess
@pytest.mark.anyio
async def test_a_2mb_tool_name_over_http_makes_a_small_span(spans_file: Path) -> None:
    async with http_probe(spans_file) as url, raw_http_session(url) as post:
        for i in range(1, 21):
            assert await post(call(i, HUGE)) == 200
    assert_small_spans(spans_file, 20)


RUNNER = Path(__file__).parent / "servers" / "runner_server.py"


async def calls_with_huge_names(transport: str, process: Any, port: int, calls: int) -> tuple[int, int]:
    """Makes ``calls`` calls whose tool name is 2 MB; returns the server's RSS before and after them."""
    if transport == "stdio":
        assert process.stdin is not None and process.stdout is not None
        await process.stdin.send(json.dumps(HANDSHAKE[0]).encode() + b"\n")
        await read_until(process.stdout, b"\n")
        await process.stdin.send(json.dumps(HANDSHAKE[1]).encode() + b"\n")
        before = rss(process.pid)
        for i in range(1, calls + 1):
            await process.stdin.send(json.dumps(call(i, HUGE)).encode() + b"\n")
            while not (await process.stdout.receive()).endswith(b"\n"):  # one answer per line, each its own
                pass
        return before, rss(process.pid)
    async with raw_http_session(f"http://127.0.0.1:{port}/mcp") as post:
        before = rss(process.pid)
        for i in range(1, calls + 1):
            assert await post(call(i, HUGE)) == 200
    return before, rss(process.pid)


@pytest.mark.subprocess
@pytest.mark.anyio
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
@pytest.mark.parametrize("transport", ["stdio", "streamable-http"])
async def test_a_server_whose_backend_is_down_stays_small_under_2mb_tool_names(tmp_path: Path, transport: str) -> None:
    """The SDK's runner with ``configure()`` exporting OTLP to a closed port, as in the report: before, each
    call's 4 MB span waited in the export queue (80 -> 1247 MB for 300 calls; 150 to 190 MB more for these 30)."""
    calls, port = 30, free_port()
    env = wrap_env(tmp_path) | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    process = await anyio.open_process([sys.executable, str(RUNNER), transport, str(port)], env=env)
    before = after = 0
    async with process, anyio.create_task_group() as tasks:
        listening = anyio.Event()

        async def drain_stderr() -> None:  # the exporter's retries log there: never let that pipe fill
            assert process.stderr is not None
            async for chunk in process.stderr:
                if b"Uvicorn running on" in chunk:
                    listening.set()

        tasks.start_soon(drain_stderr)
        with anyio.fail_after(120):
            if transport != "stdio":
                await listening.wait()
            before, after = await calls_with_huge_names(transport, process, port, calls)
        process.terminate()
    print(f"{transport}: server grew by {(after - before) / 1e6:.1f} MB over {calls} calls")
    assert after - before < 100_000_000, after - before  # about 160 MB of spans before
